"""``python -m lrmilp`` runs the command-line interface."""

from .cli import main

main()

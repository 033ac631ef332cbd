"""The ``lrmilp`` command line: a thin layer over the library (CONTRACT.md §3).

Every command takes ``--json`` and then prints exactly one JSON object on stdout (strict JSON: a
non-finite number is null, and the result says why); logs and progress go to stderr.  Bad input exits
with status 2 and one line naming the problem: the library checks every option once and names its
parameter, which the command line prints as its flag.  SIGTERM stops a command as Ctrl-C does.
"""

from . import analysis, bounding, regions  # noqa: F401  (their commands join the group)
from .app import main
from .examples import add_examples

add_examples(main)

__all__ = ["main"]

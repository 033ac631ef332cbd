"""Errors that name a user's mistake (bad file, bad domain, unsupported layer).

The CLI turns every :class:`InputError` into exit status 2 and one line on stderr;
library callers catch it as a ``ValueError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


class InputError(ValueError):
    """Bad input from the user: a file, an option or a network lrmilp cannot take."""


class SolverUnavailable(RuntimeError):
    """An optional solver (SCIP, Gurobi) is missing or unlicensed for the model size."""


def parse_file(path: str | Path, what: str, parse: Callable[[str], Any]) -> Any:
    """``parse`` of the text of ``path``; InputError naming ``what`` when the file is missing, unreadable
    or ``parse`` raises ValueError (which json and tomllib decode errors are)."""
    path = Path(path)
    try:
        return parse(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no such {what}: {path}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None

"""Errors that name a user's mistake (bad file, bad domain, unsupported layer).

The CLI turns every :class:`InputError` into exit status 2 and one line on stderr;
library callers catch it as a ``ValueError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Sequence


class InputError(ValueError):
    """Bad input from the user: a file, an option or a network lrmilp cannot take.

    ``param`` names the library parameter(s) at fault, spelled as the library calls them (``tol``,
    ``time_limit``); the message uses those names, and :meth:`cli_message` rewrites each of them as
    the command-line flag (``--tol``, ``--time-limit``).  Names that are not identifiers ("dense
    weight") describe a value rather than a parameter and are not kept.
    """

    def __init__(self, message: str, *, param: str | Sequence[str] | None = None) -> None:
        super().__init__(message)
        names = () if param is None else (param,) if isinstance(param, str) else tuple(param)
        self.param: tuple[str, ...] = tuple(p for p in names if p.isidentifier())

    def cli_message(self, flags: dict[str, str] | None = None) -> str:
        """The message with every named parameter written as its flag: ``flags`` maps a parameter
        to its flag where the rule ``--`` + name with ``_`` -> ``-`` does not hold."""
        text = str(self)
        for name in self.param:
            flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
            # Whole words only, and never inside a path or a quoted value: "tol" must not match in
            # "tolerance", "max_tol", "/runs/tol/x.npz" or "tol.json", nor "data" in "'data'".
            text = re.sub(rf"(?<![\w\-/\\.'\"]){re.escape(name)}(?![\w\-/\\.'\"])", flag, text)
        return text


class SolverUnavailable(RuntimeError):
    """An optional solver (SCIP, Gurobi) is missing or unlicensed for the model size."""


def parse_file(path: str | Path, what: str, parse: Callable[[str], Any]) -> Any:
    """``parse`` of the text of ``path``; InputError naming ``what`` when the file is missing, unreadable,
    not UTF-8 text or ``parse`` raises ValueError (which json and tomllib decode errors are)."""
    path = Path(path)
    try:
        return parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such {what}: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"cannot read {what} {path}: not UTF-8 text") from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {what} {path}: {e}") from None

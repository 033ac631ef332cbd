"""Errors that name a user's mistake (bad file, bad domain, unsupported layer).

The CLI turns every :class:`InputError` into exit status 2 and one line on stderr;
library callers catch it as a ``ValueError``.
"""


class InputError(ValueError):
    """Bad input from the user: a file, an option or a network lrmilp cannot take."""


class SolverUnavailable(RuntimeError):
    """An optional solver (SCIP, Gurobi) is missing or unlicensed for the model size."""

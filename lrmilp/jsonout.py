"""Strict JSON for everything lrmilp prints or records (CONTRACT.md §3).

JSON has no NaN or Infinity; Python's ``json`` writes them anyway (``NaN``, ``-Infinity``) and strict
parsers reject the document.  :func:`jsonable` turns every non-finite float into ``null`` and lists
where it did so; :func:`dumps` then serialises with ``allow_nan=False``, so a value that slipped past
the conversion fails loudly instead of producing invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

NULLS_KEY = "nulls"
"""Result key saying why some values are null (an unbounded bound, an undefined mean)."""
MAX_NULL_PATHS = 5
"""How many of the nulled values' paths the generic explanation lists."""


def jsonable(obj: Any, nulls: list[str] | None = None, path: str = "") -> Any:
    """``obj`` with numpy values as Python values and every non-finite float as None.

    Parameters
    ----------
    obj : Any
        Dicts, lists, tuples, numpy arrays and scalars, Python values.
    nulls : list of str, optional
        Receives the path (``key.sub[3]``) of each value turned into None.
    path : str
        The path of ``obj`` itself (for the recursion).

    Returns
    -------
    Any
        Something ``json.dumps(..., allow_nan=False)`` accepts.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v, nulls, f"{path}.{k}" if path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nulls, f"{path}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), nulls, path)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isfinite(value):
            return value
        if nulls is not None:
            nulls.append(path)
        return None
    return obj


def explain_nulls(result: dict, nulls: list[str]) -> dict:
    """``result`` with a :data:`NULLS_KEY` entry when values were nulled and it has none of its own.

    Parameters
    ----------
    result : dict
        A result already passed through :func:`jsonable`.
    nulls : list of str
        The paths :func:`jsonable` nulled.

    Returns
    -------
    dict
    """
    if not nulls or NULLS_KEY in result:
        return result
    shown = ", ".join(nulls[:MAX_NULL_PATHS]) + (", ..." if len(nulls) > MAX_NULL_PATHS else "")
    return {**result, NULLS_KEY: f"{len(nulls)} values are null because they are not finite numbers "
                                 f"(infinite or undefined): {shown}"}


def dumps(obj: Any, **kwargs) -> str:
    """Strict JSON text of ``obj`` (non-finite floats as null; never NaN or Infinity).

    Parameters
    ----------
    obj : Any
        As for :func:`jsonable`.
    **kwargs
        Passed to :func:`json.dumps`.

    Returns
    -------
    str
    """
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)

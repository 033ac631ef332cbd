"""Checks of user-supplied values, shared by the library's public functions.

Every check raises :class:`~lrmilp.errors.InputError` naming the parameter as the library spells it
(``"tol must be a positive finite number, got nan"``) with ``param`` set, so the CLI can print the
flag instead (``--tol``).  Checks run before any work starts: sizes are checked before anything is
allocated, against the named limits below (documented in README.md, "Reliability").
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError

MAX_LAYER_ENTRIES = 10**8
"""Most parameters one layer may have: a dense layer's out x in weights, or the nonzeros of a conv
layer's lowered matrix (out_ch * in_ch * kh * kw * out_h * out_w).  10^8 float64 values are 800 MB."""
MAX_NETWORK_ENTRIES = 3 * 10**8
"""Most values all arrays of one network file may declare together (checked before reading them)."""
MAX_ARRAY_ENTRIES = 10**8
"""Most values an input array file (points, data rows) may hold (checked before reading it)."""
MAX_SAMPLES = 10**9
"""Most inputs a sampling run may draw (10^9 samples of a 64-input net take about half an hour)."""
MAX_ARCH_NEURONS = 20_000
"""Most ReLU neurons (sum of widths) of an architecture given by its widths alone (``bounds --arch``):
the exact bounds' dynamic programme grows with the cube of the widths (20,000 neurons: about 1 s,
6,000-digit integers; 100,000: over a minute)."""

_REAL_KINDS = "biuf"  # numpy dtype kinds that are real numbers: bool, signed, unsigned, float
DASK_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")
_DASK_ADDRESS = re.compile(rf"^({'|'.join(DASK_SCHEMES)})://[^\s/:]+(:\d{{1,5}})?/?$")


def _number(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number (not a bool, a string or a complex)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number, got {value!r}", param=name)
    return float(value)


def finite(name: str, value: Any) -> float:
    """``value`` as a float; InputError unless it is a finite real number.

    Parameters
    ----------
    name : str
        The parameter's name as the library spells it (``tol``); the message and ``param`` use it.
    value : Any
        The value given.

    Returns
    -------
    float

    Raises
    ------
    InputError
        For a bool, a string, a complex number, NaN or an infinity.
    """
    v = _number(name, value)
    if not math.isfinite(v):
        raise InputError(f"{name} must be a finite number, got {v}", param=name)
    return v


def positive_finite(name: str, value: Any) -> float:
    """``value`` as a float; InputError unless it is a finite number > 0.

    Parameters
    ----------
    name : str
        The parameter's name (``tol``, ``time_limit``).
    value : Any
        The value given.

    Returns
    -------
    float

    Raises
    ------
    InputError
        "``name`` must be a positive finite number, got ``value``" (``param`` = ``name``).
    """
    v = _number(name, value)
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"{name} must be a positive finite number, got {v}", param=name)
    return v


def optional_positive_finite(name: str, value: Any) -> float | None:
    """None stays None; anything else as :func:`positive_finite`."""
    return None if value is None else positive_finite(name, value)


def nonnegative_finite(name: str, value: Any) -> float:
    """``value`` as a float; InputError unless it is a finite number >= 0."""
    v = _number(name, value)
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"{name} must be a finite number >= 0, got {v}", param=name)
    return v


def in_open_interval(name: str, value: Any, lo: float, hi: float, *, hi_closed: bool = False) -> float:
    """``value`` as a float; InputError unless lo < value < hi (or <= hi with ``hi_closed``)."""
    v = _number(name, value)
    if not (lo < v and (v <= hi if hi_closed else v < hi)):
        raise InputError(f"{name} must be in ({lo:g}, {hi:g}{']' if hi_closed else ')'}, got {v}", param=name)
    return v


def int_at_least(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` as an int; InputError unless it is an integer (not a bool or a float) in [lo, hi].

    Parameters
    ----------
    name : str
        The parameter's name (``samples``).
    value : Any
        The value given.
    lo : int
        Smallest value allowed.
    hi : int, optional
        Largest value allowed (a documented limit such as :data:`MAX_SAMPLES`); none by default.

    Returns
    -------
    int

    Raises
    ------
    InputError
        For a non-integer or a value outside [lo, hi] (``param`` = ``name``).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name} must be an integer, got {value!r}", param=name)
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        bound = f"at least {lo:,}" if hi is None else f"between {lo:,} and {hi:,}"
        raise InputError(f"{name} must be {bound}, got {v:,}", param=name)
    return v


def optional_int_at_least(name: str, value: Any, lo: int, hi: int | None = None) -> int | None:
    """None stays None; anything else as :func:`int_at_least`."""
    return None if value is None else int_at_least(name, value, lo, hi)


def one_of(name: str, value: Any, options: Sequence[str], *, what: str | None = None) -> str:
    """``value`` if it is one of ``options``; InputError naming the parameter otherwise.

    Parameters
    ----------
    name : str
        The parameter's name (``method``, ``geometry``).
    value : Any
        The value given.
    options : sequence of str
        The accepted values.
    what : str, optional
        How the message calls the value (default: ``name``), e.g. ``"count method"``.

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    InputError
        ``unknown {what} 'value' (expected one of ...)``, with ``param=name``.

    Examples
    --------
    >>> one_of("method", "lp", ("interval", "lp", "milp"))
    'lp'
    """
    if not isinstance(value, str) or value not in options:
        raise InputError(f"unknown {what or name} {value!r} (expected one of {', '.join(options)})", param=name)
    return value


def dask_address(name: str, value: str | None) -> str | None:
    """None, ``"local"`` or a scheduler address ``scheme://host[:port]``; InputError otherwise.

    Parameters
    ----------
    name : str
        The parameter's name (``dask``).
    value : str or None
        The address given.

    Returns
    -------
    str or None
        ``value`` unchanged.

    Raises
    ------
    InputError
        When ``value`` is neither "local" nor an address of a scheme in :data:`DASK_SCHEMES`.
    """
    if value is None or value == "local":
        return value
    if not isinstance(value, str) or not _DASK_ADDRESS.match(value):
        raise InputError(f"{name} must be 'local' or a scheduler address like tcp://HOST:8786, got {value!r}",
                         param=name)
    return value


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array; InputError unless its entries are real numbers (bool, int or float
    dtype: no strings, objects or complex numbers, which numpy would convert or truncate silently).

    Parameters
    ----------
    name : str
        What the array is (a parameter or a file key: ``W0``, ``lo``).
    value : array_like
        The array.

    Returns
    -------
    numpy.ndarray
        float64, same shape.

    Raises
    ------
    InputError
        For any dtype other than bool, integer or float.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in _REAL_KINDS:
        raise InputError(f"{name} must hold real numbers, got dtype {arr.dtype}", param=name)
    return arr.astype(float, copy=False)


def integer_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an int64 array; InputError unless every entry is an integer (integral floats pass).

    Parameters
    ----------
    name : str
        What the array is (``input_shape``, ``stride1``).
    value : array_like
        The array.

    Returns
    -------
    numpy.ndarray
        int64, same shape.

    Raises
    ------
    InputError
        For non-real entries, NaN, infinities or fractions (2.5 never becomes 2).
    """
    arr = real_array(name, value)
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise InputError(f"{name} must hold integers, got {np.asarray(value).reshape(-1).tolist()[:8]}",
                         param=name)
    return arr.astype(np.int64)


def npy_header(fp) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of the ``.npy`` stream ``fp``, without reading the data.

    Parameters
    ----------
    fp : binary file object
        Positioned at the start of the ``.npy`` data; left after the header.

    Returns
    -------
    tuple
        (shape, dtype).

    Raises
    ------
    ValueError
        When the stream is not an ``.npy`` array.
    """
    from numpy.lib import format as npf
    version = npf.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = npf.read_array_header_1_0(fp)
    else:
        shape, _, dtype = npf.read_array_header_2_0(fp)
    return tuple(int(s) for s in shape), dtype


def load_array(path: str | Path, name: str, *, max_entries: int = MAX_ARRAY_ENTRIES) -> np.ndarray:
    """The numeric ``.npy`` array in ``path`` as float64.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file.
    name : str
        The parameter that named it (``points``, ``data``), for messages.
    max_entries : int
        Most values allowed, checked from the header before the data is read.

    Returns
    -------
    numpy.ndarray
        float64, every entry finite.

    Raises
    ------
    InputError
        For a missing file, an ``.npz`` archive or any other non-``.npy`` file, non-real entries
        (strings, complex), NaN or infinity, or more than ``max_entries`` values.
    """
    path = Path(path)
    try:
        with path.open("rb") as fp:
            if fp.read(4) == b"PK\x03\x04":
                raise InputError(f"{name}: {path} is an .npz archive; give a .npy array (numpy.save)", param=name)
            fp.seek(0)
            try:
                shape, dtype = npy_header(fp)
            except ValueError:
                raise InputError(f"{name}: {path} is not a .npy array", param=name) from None
        if dtype.kind not in _REAL_KINDS:
            raise InputError(f"{name}: {path} must hold real numbers, got dtype {dtype}", param=name)
        if math.prod(shape) > max_entries:
            raise InputError(f"{name}: {path} declares shape {shape}, more than the limit of {max_entries:,} "
                             "values", param=name)
        arr = np.load(path, allow_pickle=False)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{name}: no such file: {path}", param=name) from None
    except IsADirectoryError:
        raise InputError(f"{name}: {path} is a folder, not a .npy file", param=name) from None
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{name}: cannot read {path} as a .npy array ({e})", param=name) from None
    arr = np.asarray(arr, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: {path} contains NaN or infinite values", param=name)
    return arr


def npz_headers(path: str | Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{key: (shape, dtype)} of every array of an ``.npz`` file, read from the headers only.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.

    Returns
    -------
    dict
        Array key (without ``.npy``) -> (shape, dtype).

    Raises
    ------
    zipfile.BadZipFile, ValueError, OSError
        When the file is not a readable ``.npz`` archive.
    """
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as fp:
                out[info.filename[:-4]] = npy_header(fp)
    return out

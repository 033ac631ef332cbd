"""One BLAS thread while the enumerator runs.

The enumerator's products are small and many.  OpenBLAS (numpy's BLAS on Linux wheels) splits the
larger of them over threads that then spin between calls, so a search competes with its own idle BLAS
threads, and with ``--jobs`` the workers' threads oversubscribe the cores.  Measured on 16-11-11
(2 cores): 85.1 s serial and 58.4 s with two workers at OpenBLAS's default, 68.1 s and 39.0 s with one
BLAS thread.  :func:`single_blas_thread` sets one thread for the duration of a search and restores the
previous count; where numpy's BLAS is not an OpenBLAS found in ``/proc/self/maps`` it does nothing.
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Iterator

_SETTERS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")
_api: tuple | None = None  # (get, set) of the loaded OpenBLAS, or () when there is none


def _openblas() -> tuple:
    global _api
    if _api is None:
        _api = ()
        import numpy  # noqa: F401  (load numpy's BLAS first)
        try:
            with open("/proc/self/maps") as fh:
                libs = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and ".so" in line})
        except OSError:
            libs = []
        for path in libs:
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for name in _SETTERS:
                setter = getattr(lib, name, None)
                getter = getattr(lib, name.replace("set_num_threads", "get_num_threads"), None)
                if setter is not None and getter is not None:
                    setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                    _api = (getter, setter)
                    return _api
    return _api


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """OpenBLAS uses one thread inside the block (if numpy's BLAS is an OpenBLAS we can reach)."""
    api = _openblas()
    if not api:
        yield
        return
    get, set_ = api
    before = get()
    set_(1)
    try:
        yield
    finally:
        set_(before)

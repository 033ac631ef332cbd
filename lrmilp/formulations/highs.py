"""Raw highspy back end: a :class:`LinearModel` as a ``highspy.Highs`` object, and LP/MPS export."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import highspy
import numpy as np

from ..errors import InputError
from ..outputs import atomic_path, check_writable
from .bigm import LinearModel

INF = highspy.kHighsInf
_BANNER_DONE = False


def new_highs() -> highspy.Highs:
    """A new Highs instance whose creation prints nothing on stdout.

    HiGHS >= 1.16 prints a banner on the process's first instance, straight to file descriptor 1,
    before any option can be set; that would break the CLI's "one JSON object on stdout" (and its
    one-line errors on stderr).  The first instance is therefore created with fd 1 on /dev/null.
    """
    global _BANNER_DONE
    if _BANNER_DONE:
        return highspy.Highs()
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
        _BANNER_DONE = True
    return h


def _finite(a: np.ndarray) -> np.ndarray:
    return np.where(np.isposinf(a), INF, np.where(np.isneginf(a), -INF, a))


def quiet_highs(*, presolve: bool = True, threads: int = 1) -> highspy.Highs:
    """A Highs instance with output off (and presolve off when asked, for repeated small LPs)."""
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    h.setOptionValue("threads", threads)
    if not presolve:
        h.setOptionValue("presolve", "off")
    return h


def to_highspy(model: LinearModel, *, relax: bool = False, presolve: bool = True,
               h: highspy.Highs | None = None) -> highspy.Highs:
    """Load ``model`` into a (new or given) Highs instance; ``relax`` drops integrality."""
    h = h or quiet_highs(presolve=presolve)
    lp = highspy.HighsLp()
    n = model.num_vars
    lp.num_col_ = n
    lp.num_row_ = model.A.shape[0]
    lp.col_cost_ = model.obj.astype(float)
    lp.col_lower_ = _finite(model.lb.astype(float))
    lp.col_upper_ = _finite(model.ub.astype(float))
    lp.row_lower_ = _finite(model.row_lo.astype(float))
    lp.row_upper_ = _finite(model.row_hi.astype(float))
    lp.offset_ = float(model.obj_const)
    lp.sense_ = highspy.ObjSense.kMaximize if model.sense == "max" else highspy.ObjSense.kMinimize
    csc = model.A.tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data.astype(float)
    lp.col_names_ = list(model.names)
    lp.row_names_ = list(model.row_names)
    if not relax and model.integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
                           for i in model.integer]
    h.passModel(lp)
    return h


END_MARKERS = {".mps": b"ENDATA", ".lp": b"end"}
"""The last keyword of a whole file of each format: HiGHS ignores write errors (a full disk), so a
file not ending with it was cut short."""
_TAIL_BYTES = 64


def check_model_path(path: str | Path, param: str = "out") -> Path:
    """The path as a Path if a model file can be written there: .lp or .mps, in an existing folder, not a
    link or a special file (:func:`lrmilp.outputs.check_writable`)."""
    path = Path(path)
    if path.suffix.lower() not in END_MARKERS:
        raise InputError(f"{param}: model file must end in .lp or .mps, got {path.name}", param=param)
    return check_writable(path, param)


def _is_whole(path: Path, suffix: str) -> bool:
    """Is the file's last line its format's end keyword, which appears nowhere else (so no write was cut
    short)?"""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(fh.tell() - _TAIL_BYTES, 0))
        lines = fh.read().rstrip().splitlines()
    return bool(lines) and lines[-1].strip().lower() == END_MARKERS[suffix].lower()


def write_model(model: LinearModel, path: str | Path, param: str = "out") -> None:
    """Write ``model`` as .lp or .mps (by ending) through HiGHS's writers; the file appears whole or not
    at all (written beside it, checked to end with its format's end keyword, fsynced, then renamed).
    InputError naming ``param`` and the path when it cannot be written (a full disk included)."""
    path = check_model_path(path, param)
    suffix = path.suffix.lower()
    h = to_highspy(model)
    with atomic_path(path, param, suffix=suffix) as tmp:
        status = h.writeModel(str(tmp))
        if status != highspy.HighsStatus.kOk or not _is_whole(tmp, suffix):
            raise InputError(f"{param}: cannot write {path}: the file was cut short (is the disk full?)",
                             param=param)

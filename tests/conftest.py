"""Suite-wide set-up: the tests' helper modules on the path, and numba's compile moved off the critical path.

The ``dual`` geometry is compiled by numba on first use (minutes on a loaded 2-core machine, then cached
beside the package).  A fresh checkout would pay that inside whichever test first counts over a box of
dimension >= 7, and a subprocess test (a CLI run that gets a signal) could pay it again in its own
process.  So the session starts one background process that compiles and caches everything a count
and a lower bound use, while the tests that need no numba run; the tests that need it most run last,
and any compile in this process (or a test that asks for the ``numba_cache`` fixture) first waits for
that process, then loads its cache.  Set ``LRMILP_NO_WARMUP=1`` to compile in place instead.

Under pytest-xdist (the README's ``-n auto``) the controller starts that one process before its workers
exist; the workers wait for the flag file it writes when it ends (``LRMILP_WARM_UP_FLAG`` in their
environment), so the engine is compiled once, not once per worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # lets tests import the shared oracles module

WARM_UP = """
import numpy as np
from lrmilp import random_mlp
from lrmilp.counting import count_regions
from lrmilp.domains import Box
from lrmilp.lowerbound import lower_bound
from lrmilp.lp.bvdual import solve_margin_lp
count_regions(random_mlp([8, 6, 6, 5], seed=0), Box(-1, 1, 8), jobs=1)             # fused last layers, bulk
count_regions(random_mlp([8, 5, 5, 5, 4], seed=0), Box(-1, 1, 8), jobs=1, max_regions=50)  # one by one
lower_bound(random_mlp([8, 6, 6], seed=0), Box(-1, 1, 8), seed=0, trials=2)         # XOR parity
solve_margin_lp(np.eye(2), np.ones(2), np.ones(2), -np.ones(2), np.ones(2), -10.0, 1.0)
"""
LATE = ("test_reliability.py", "test_parallel.py", "test_enumeration.py", "test_geometries.py", "test_tolerance.py",
        "test_fuzz.py", "test_lowerbound.py", "test_bvdual.py", "test_dual.py")
"""Test files that use the compiled engine (boxes of dimension >= 7, or the kernel itself), in the order
they run after all others, when the background compile has most likely finished."""

_warm: subprocess.Popen | None = None
FLAG = "LRMILP_WARM_UP_FLAG"
WARM_UP_WAIT_SECONDS = 1800.0
"""How long an xdist worker waits for the controller's compile before compiling itself (it never
waits in vain: the flag is written however the compile ends)."""


def _wait_for_warm_up() -> None:
    if _warm is not None:  # this process started it
        if _warm.poll() is None:
            _warm.wait()
        return
    flag = os.environ.get(FLAG)
    if flag:  # an xdist worker: the controller's process writes the flag when it ends
        until = time.monotonic() + WARM_UP_WAIT_SECONDS
        while not os.path.exists(flag) and time.monotonic() < until:
            time.sleep(0.2)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _warm
    if os.environ.get("LRMILP_NO_WARMUP"):
        return
    try:
        from numba.core import dispatcher
    except ImportError:  # no numba: nothing to compile
        return
    if not hasattr(session.config, "workerinput") and not os.environ.get(FLAG):  # not an xdist worker
        flag = Path(tempfile.mkdtemp(prefix="lrmilp-warm-")) / "done"
        script = f"try:\n{textwrap.indent(WARM_UP, '    ')}\nfinally:\n    open({str(flag)!r}, 'w').close()\n"
        _warm = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ[FLAG] = str(flag)  # inherited by the xdist workers, started after this hook
    compile_for_args = dispatcher.Dispatcher._compile_for_args  # numba's one path to a new compile

    def after_warm_up(self, *args, **kwargs):
        _wait_for_warm_up()
        return compile_for_args(self, *args, **kwargs)

    dispatcher.Dispatcher._compile_for_args = after_warm_up


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _warm is not None:
        if _warm.poll() is None:
            _warm.kill()
            _warm.wait()
        shutil.rmtree(Path(os.environ.pop(FLAG)).parent, ignore_errors=True)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    order = {name: i + 1 for i, name in enumerate(LATE)}
    items.sort(key=lambda item: order.get(item.path.name, 0))  # stable: the order within a file stays


@pytest.fixture
def numba_cache() -> None:
    """Wait until the background compile has cached the compiled engine (for tests whose subprocesses
    use it: they should load the cache, not compile)."""
    _wait_for_warm_up()

"""lrmilp.blas: one OpenBLAS thread inside a search, the previous count restored after."""

import pytest


def test_single_blas_thread_sets_one_and_restores():
    from lrmilp.blas import _openblas, single_blas_thread
    api = _openblas()
    if not api:
        pytest.skip("numpy's BLAS is not an OpenBLAS found in /proc/self/maps")
    get, _ = api
    before = get()
    with single_blas_thread():
        assert get() == 1
    assert get() == before

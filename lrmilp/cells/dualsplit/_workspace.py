"""The statuses, statistics indices and parameters of :mod:`lrmilp.cells.dualsplit`, and its
:class:`Workspace` (the search state of one node)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit
from numba.typed import List

from ...lp import bvdual as lp


DONE, PAUSED, FAILED = 0, 1, 2
"""Statuses of :func:`split`: the node is finished; the output is full or the LP budget spent (call
again); an LP failed twice (the caller redoes the node with another geometry, skipping the children
already emitted)."""

# stats indices
S_LPS, S_EMPTY, S_THIN, S_BANK, S_STEP, S_SKIP, S_FALLBACK, S_PIVOTS, S_RETRY, S_IMPLY = range(10)
N_STATS = 10
IMPLY_MIN_COS = 0.5
"""Implications between two of a layer's hyperplanes are looked for only when their unit normals'
|cosine| exceeds this (nearly parallel hyperplanes, as trained nets have; others rarely imply)."""
IMPLY_STEPS = 24
"""Golden-section steps of the search for an implication's multiplier."""
BANK_SIZE = 64
"""Witnesses kept per node (a ring): checking one against a sub-cell costs O(n)."""
T_LO_FACTOR = 1e3
"""The LPs' t is bounded below by -T_LO_FACTOR * (box diameter + largest |offset|): never binding."""


class Workspace(NamedTuple):
    """The search state of one node (frames on the stack, the plan, the bank, the output)."""

    pos: np.ndarray  # (F,) int64: next position in ``order`` of each frame
    alive: np.ndarray  # (F,) bool
    nrow: np.ndarray  # (F,) int64: layer rows in the frame's LP
    w: np.ndarray  # (F, d) witnesses
    t: np.ndarray  # (F,) certified margins of the witnesses to every row of their frame
    st: np.ndarray  # (F, n) int8 states decided
    sig: np.ndarray  # (F, n) int8: +1 active row, -1 inactive row, 0 no row
    rows: np.ndarray  # (F, n) int64: the layer rows of the frame's LP, in the order added
    top: np.ndarray  # (1,) int64: index of the top frame; -1 when the node is done; -2 before the plan
    fixed: np.ndarray  # (n,) int8: 1/0 settled for the whole node, -1 not
    keep: np.ndarray  # (n,) bool: a settled neuron whose other side may hold a sliver keeps its row
    order: np.ndarray  # (n,) int64
    bank_u: np.ndarray  # (BANK_SIZE, d)
    bank_tn: np.ndarray  # (BANK_SIZE,) margins to the node's own rows
    bank_D: np.ndarray  # (BANK_SIZE, n) signed distances to the layer's hyperplanes
    bank_n: np.ndarray  # (1,) int64: entries written so far (ring)
    out_st: np.ndarray  # (C, n) int8
    out_sig: np.ndarray  # (C, n) int8
    out_rows: np.ndarray  # (C, n) int64
    out_nrow: np.ndarray  # (C,) int64
    out_w: np.ndarray  # (C, d) certified ball centres (last layer) or witnesses
    out_t: np.ndarray  # (C,) ball radii (last layer) or margins
    out_check: np.ndarray  # (C,) bool: the ball is not above tol: the caller decides exactly
    out_basis: np.ndarray  # (C, M) int64 (not last layer)
    out_status: np.ndarray  # (C, d + 1 + M) int8 (not last layer)
    out_n: np.ndarray  # (1,) int64
    out_frame: np.ndarray  # (C,) int64: the frame each child came from (its LP state is still there)
    stats: np.ndarray  # (N_STATS,) int64
    imp: np.ndarray  # (n, 2, n) int8: imp[j, s, k] = the state neuron k must take when j takes s, or -1
    forced: np.ndarray  # (F, n) int8: states implied in each frame by the neurons decided there, or -1
    # XOR constraints on the pattern (lrmilp.parity), per frame: rows of a fully reduced GF(2) system
    # over all neurons (bit i of prow[f, r] = neuron i; each row's pivot, its highest bit, occurs in
    # no other row), their parities, and how many rows are in use.  pk[f] = -1: no XORs.
    prow: np.ndarray  # (F, K, W) uint64
    ppar: np.ndarray  # (F, K) uint8
    pk: np.ndarray  # (F,) int64
    poff: np.ndarray  # (1,) int64: pattern index of this layer's neuron 0
    out_prow: np.ndarray  # (C, K, W) uint64 (not last layer)
    out_ppar: np.ndarray  # (C, K) uint8
    out_pk: np.ndarray  # (C,) int64


def new_workspace(d: int, n: int, capacity_rows: int, out: int, xors: int = 0, neurons: int = 1
                  ) -> tuple[Workspace, List]:
    """A workspace for layers of n neurons in dimension d whose LPs hold at most ``capacity_rows`` rows,
    with room for ``out`` children per call and ``xors`` XOR rows over ``neurons`` neurons, and its
    frames (LP states)."""
    F = n + 2
    M = capacity_rows
    K, W = max(xors, 1), max(1, (neurons + 63) // 64)
    ws = Workspace(np.zeros(F, np.int64), np.zeros(F, np.bool_), np.zeros(F, np.int64), np.zeros((F, d)),
                   np.zeros(F), np.zeros((F, n), np.int8), np.zeros((F, n), np.int8), np.zeros((F, n), np.int64),
                   np.full(1, -1, np.int64), np.zeros(n, np.int8), np.zeros(n, np.bool_), np.arange(n),
                   np.zeros((BANK_SIZE, d)), np.zeros(BANK_SIZE), np.zeros((BANK_SIZE, n)), np.zeros(1, np.int64),
                   np.zeros((out, n), np.int8), np.zeros((out, n), np.int8), np.zeros((out, n), np.int64),
                   np.zeros(out, np.int64), np.zeros((out, d)), np.zeros(out), np.zeros(out, np.bool_),
                   np.zeros((out, M), np.int64), np.zeros((out, d + 1 + M), np.int8), np.zeros(1, np.int64),
                   np.zeros(out, np.int64), np.zeros(N_STATS, np.int64), np.full((n, 2, n), -1, np.int8), np.full((F, n), -1, np.int8),
                   np.zeros((F, K, W), np.uint64), np.zeros((F, K), np.uint8), np.full(F, -1, np.int64),
                   np.zeros(1, np.int64), np.zeros((out, K, W), np.uint64), np.zeros((out, K), np.uint8),
                   np.full(out, -1, np.int64))
    return ws, new_frames(F, M, d)


@njit(cache=True)
def new_frames(count: int, capacity_rows: int, d: int) -> List:
    """``count`` LP states in a typed list, built in compiled code: from Python a typed list's methods
    would be compiled anew in every process (about 1.5 s), as numba caches none of them."""
    frames = List()
    for _ in range(count):
        frames.append(lp.new_state(capacity_rows, d))
    return frames

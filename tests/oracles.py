"""Oracles that share no code with lrmilp's enumerator: brute force over patterns, closed forms, nets
with known counts.  Deliberately written from scratch with plain numpy + scipy.linprog."""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
from scipy.optimize import linprog

from lrmilp.network import Dense, Network


def brute_force_count(layers: list[tuple[np.ndarray, np.ndarray, bool]], *, origin: np.ndarray, basis: np.ndarray,
                      A_dom: np.ndarray, b_dom: np.ndarray, tol: float = 1e-6, cap: float = 1.0) -> set:
    """Patterns (as tuples) whose region {u : A_dom u <= b_dom, pattern holds} holds a ball of radius > tol.

    ``layers`` are (W, b, relu); x = origin + basis u.  One LP per pattern of the ReLU neurons.
    """
    relu_sizes = [W.shape[0] for W, _, r in layers if r]
    # only layers up to the last ReLU matter
    last = max(i for i, (_, _, r) in enumerate(layers) if r)
    layers = layers[:last + 1]
    n_total = sum(relu_sizes)
    found = set()
    d = basis.shape[1]
    for bits in itertools.product([False, True], repeat=n_total):
        M, m = basis.copy(), origin.copy()
        rows, rhs = [], []
        pos = 0
        ok = True
        for W, b, relu in layers:
            A = W @ M
            c = W @ m + b
            if relu:
                s = np.array(bits[pos:pos + W.shape[0]])
                pos += W.shape[0]
                for i in range(W.shape[0]):
                    nrm = np.linalg.norm(A[i])
                    if nrm < 1e-12:
                        if (c[i] > 0) != s[i]:
                            ok = False
                        continue
                    sign = 1.0 if s[i] else -1.0
                    # sign (A u + c) >= nrm t
                    rows.append(np.append(-sign * A[i], nrm))
                    rhs.append(sign * c[i])
                M, m = A * s[:, None], c * s
            else:
                M, m = A, c
            if not ok:
                break
        if not ok:
            continue
        for a, bb in zip(A_dom, b_dom):
            rows.append(np.append(a, np.linalg.norm(a)))
            rhs.append(bb)
        obj = np.zeros(d + 1)
        obj[-1] = -1
        res = linprog(obj, A_ub=np.array(rows), b_ub=np.array(rhs), bounds=[(None, None)] * d + [(None, cap)],
                      method="highs")
        if res.status == 0 and -res.fun > tol:
            found.add(tuple(bits))
    return found


def box_rows(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = lo.size
    return np.vstack([np.eye(d), -np.eye(d)]), np.concatenate([hi, -lo])


def zaslavsky_general(n0: int, n1: int) -> int:
    return sum(comb(n1, i) for i in range(n0 + 1))


def sawtooth(depth: int) -> Network:
    """The tent map t(x) = 2 relu(x) - 4 relu(x - 1/2) composed ``depth`` times; 2^depth pieces on [0, 1]."""
    layers = [Dense(np.array([[1.0], [1.0]]), np.array([0.0, -0.5]))]
    fold = np.array([[2.0, -4.0], [2.0, -4.0]])  # next layer reads y = 2 h1 - 4 h2 twice
    for _ in range(depth - 1):
        layers.append(Dense(fold, np.array([0.0, -0.5])))
    layers.append(Dense(np.array([[2.0, -4.0]]), np.array([0.0]), relu=False))
    return Network(layers, (1,), lo=np.array([0.0]), hi=np.array([1.0]))

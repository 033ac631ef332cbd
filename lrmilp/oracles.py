"""Feasibility oracles of XOR trials: does some full-dimensional region satisfy k XOR constraints?

A trial of :func:`lrmilp.lowerbound.lower_bound` asks one of them: the one-tree enumerator with parity
propagation (:class:`TreeOracle`, stopped at the first region), HiGHS on the XORs' linear form
(:class:`HighsOracle`) or SCIP with native XORs (:class:`ScipOracle`).  :class:`Witnesses` answers
many trials before any of them: the distinct patterns of uniform samples, each used only once the
counting rule certifies it (a ball of radius > tol around its sample, or one Chebyshev LP).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .counting import tree_bounds
from .counting.model import pattern_ball
from .domains import Domain, domain_rows
from .errors import SolverUnavailable
from .network import Network
from .parity import ParityState, XorSystem
from .search import TreeSearch
from .tolerance import Tolerance, resolve_tolerance
from .validation import one_of

METHODS = ("tree", "milp", "scip")
FEASIBLE, INFEASIBLE, UNKNOWN = "feasible", "infeasible", "unknown"
DEFAULT_WITNESS_SAMPLES = 100_000
"""Uniform samples :class:`Witnesses` draws (over a bounded domain): at a level below log2 of their
distinct patterns, most trials are answered without a search."""
WITNESS_TRIES = 8
"""Satisfying witnesses a trial checks by the counting rule before it falls back to its oracle."""


class TreeOracle:
    """The one-tree enumerator with parity propagation, stopped at the first region."""

    def __init__(self, net: Network, domain: Domain, *, tol: float | None = None, bounds=None,
                 bound_method: str = "lp", geometry: str = "auto") -> None:
        self.net, self.domain, self.geometry = net, domain, geometry
        self.tolerance = resolve_tolerance(net, domain, tol)
        self.tol, self.tol_meaning = self.tolerance.tol, self.tolerance.meaning
        self.bounds = bounds if bounds is not None else tree_bounds(net, domain, bound_method=bound_method)
        self.lps = 0

    def __call__(self, system: XorSystem, *, time_limit: float | None = None) -> tuple[str, np.ndarray | None]:
        """(status, pattern of a region satisfying ``system`` or None)."""
        status, patterns = self.cell(system, at_least=1, time_limit=time_limit)
        return status, (patterns[0] if patterns else None)

    def cell(self, system: XorSystem, *, at_least: int, time_limit: float | None = None
             ) -> tuple[str, list[np.ndarray]]:
        """Does the cell of ``system`` (the regions satisfying it) hold ``at_least`` regions?  FEASIBLE
        with that many of their patterns, INFEASIBLE with the fewer it holds, UNKNOWN at the time limit."""
        state = ParityState.of(system)
        if state is None:
            return INFEASIBLE, []  # the XORs contradict each other: no pattern at all
        found: list[np.ndarray] = []
        enum = TreeSearch(self.net, self.domain, tol=self.tolerance, bounds=self.bounds, parity=state,
                          max_regions=at_least, time_limit=time_limit, on_region=lambda p, u, r: found.append(p),
                          geometry=self.geometry)
        enum.run()
        self.lps += enum.stats.lps
        if len(found) >= at_least:
            return FEASIBLE, found
        if enum.stopped == "interrupted":  # not an infeasible trial: the whole search is being stopped
            raise KeyboardInterrupt
        return (UNKNOWN if enum.stopped == "time_limit" else INFEASIBLE), found


class _SolverOracle:
    """Shared set-up of the MILP oracles: the two-sided big-M model of :mod:`lrmilp.counting.solvers`
    (LP bounds), searched for patterns with margin >= search_tol, each decided by the counting rule."""

    def __init__(self, net: Network, domain: Domain, *, tol: float | None = None) -> None:
        from .counting.model import default_search_tol, solver_model
        self.net, self.domain = net, domain
        self.tolerance = resolve_tolerance(net, domain, tol)
        self.tol, self.tol_meaning = self.tolerance.tol, self.tolerance.meaning
        self.search_tol = default_search_tol(self.tolerance)
        self.model, self.info = solver_model(net, domain, search_tol=self.search_tol)
        self.lps = 0

    def _setup(self, model, deadline: float | None, found: list):
        from .counting.model import PatternCheck, SolverSetup
        z = model.groups["z"]
        check = PatternCheck(self.net, self.domain, self.tolerance, lambda p, u, r: found.append(p))
        return SolverSetup(model, z, np.flatnonzero(model.lb[z] < model.ub[z]), int(model.groups["f"][0]),
                      model.groups["u"], self.search_tol, check, deadline, 1, False, {})


class HighsOracle(_SolverOracle):
    """HiGHS on the model plus sum z - 2 w = b per XOR (:func:`lrmilp.formulations.parity.with_parity`),
    with the no-good loop of the ``milp`` counter cut short at the first confirmed region."""

    def __call__(self, system: XorSystem, *, time_limit: float | None = None) -> tuple[str, np.ndarray | None]:
        from .counting.solvers import count_milp
        from .formulations.parity import with_parity
        if ParityState.of(system) is None:
            return INFEASIBLE, None
        found: list = []
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        out = count_milp(self._setup(with_parity(self.model, system), deadline, found))
        self.lps += out.solves
        if found:
            return FEASIBLE, found[0]
        return (UNKNOWN, None) if out.stopped else (INFEASIBLE, None)


class ScipOracle(_SolverOracle):
    """SCIP on the model (f >= tol) plus its native XOR constraints; a pattern SCIP returns is
    confirmed by the exact pattern LP, and cut off by a no-good if its margin is not above tol."""

    def __init__(self, net: Network, domain: Domain, *, tol: float | None = None) -> None:
        try:
            import pyscipopt  # noqa: F401
        except ImportError:
            raise SolverUnavailable("method 'scip' needs PySCIPOpt, which is not installed (pip install pyscipopt)"
                                    ) from None
        super().__init__(net, domain, tol=tol)

    def __call__(self, system: XorSystem, *, time_limit: float | None = None) -> tuple[str, np.ndarray | None]:
        from pyscipopt import quicksum

        from .counting.model import SOLVER_FEASTOL
        from .formulations.backends import to_scip
        from .formulations.parity import add_scip_xors
        if ParityState.of(system) is None:
            return INFEASIBLE, None
        t0 = time.perf_counter()
        found: list = []
        s = self._setup(self.model, None, found)
        m, xs = to_scip(s.feasibility_model())
        add_scip_xors(m, xs, self.model, system)
        m.setParam("numerics/feastol", SOLVER_FEASTOL)
        m.setParam("limits/solutions", 1)  # any region will do
        # SCIP 10's presolving of XOR constraints is unsound here: on small random systems it returned
        # solutions violating an XOR (7 of 120, checkSol still accepting them) and, with pairwise
        # presolving off, still declared a feasible system infeasible (1 of 180).  With no XOR
        # presolving rounds: 0 of 480 and 0 of 180 (other presolvers stay on).
        m.setParam("constraints/xor/maxprerounds", 0)
        lp = s.check
        zs = [xs[int(j)] for j in s.z[s.unstable]]
        while True:
            if time_limit is not None:
                rem = time_limit - (time.perf_counter() - t0)
                if rem <= 0:
                    return UNKNOWN, None
                m.setParam("limits/time", rem)
            m.optimize()
            self.lps += int(m.getNLPs())
            status = m.getStatus()
            if status == "infeasible":
                return INFEASIBLE, None
            if m.getNSols() == 0:
                if status in ("timelimit", "userinterrupt"):
                    return UNKNOWN, None
                raise RuntimeError(f"SCIP stopped with status '{status}' and no solution")
            pattern = np.array([m.getVal(xs[int(j)]) for j in s.z]) > 0.5
            if lp.confirm(pattern):
                return FEASIBLE, pattern
            on = pattern[s.unstable]  # a margin of tol only through solver tolerances: cut it off
            m.freeTransform()
            m.addCons(quicksum((1 - v) if b else v for v, b in zip(zs, on)) >= 1)


def make_oracle(net: Network, domain: Domain, *, method: str = "tree", tol: float | None = None, bounds=None,
                geometry: str = "auto"):
    """A feasibility oracle ``oracle(system, time_limit=...) -> (status, pattern)`` for ``method``.

    Parameters
    ----------
    net, domain
        The (balanced) network and its domain.
    method : {"tree", "milp", "scip"}
        The one-tree search with parity propagation, HiGHS on the XORs' linear form, or SCIP's native XORs.
    tol : float, optional
        The region tolerance.
    bounds : Bounds, optional
        The tree's bounds (default :func:`lrmilp.counting.tree_bounds`).
    geometry : str
        The tree's cell geometry (:data:`lrmilp.cells.NAMES`; ``method="tree"`` only).

    Returns
    -------
    callable
        A :class:`TreeOracle`, :class:`HighsOracle` or :class:`ScipOracle`.

    Raises
    ------
    InputError
        An unknown ``method``.
    SolverUnavailable
        ``scip`` without PySCIPOpt.

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> from lrmilp.domains import Box
    >>> from lrmilp.parity import XorSystem
    >>> oracle = make_oracle(random_mlp([2, 4], seed=0), Box(-1, 1, 2))
    >>> oracle(XorSystem((), ()))[0]  # no XOR: any region will do
    'feasible'
    """
    one_of("method", method, METHODS, what="lower-bound method")
    if method == "tree":
        return TreeOracle(net, domain, tol=tol, bounds=bounds, geometry=geometry)
    if method == "milp":
        return HighsOracle(net, domain, tol=tol)
    return ScipOracle(net, domain, tol=tol)


class Witnesses:
    """Distinct activation patterns of uniform samples of a bounded domain, with one sample each.

    :meth:`find` returns a pattern that satisfies an XOR system and is a region by the counting rule:
    the sample's margin t to its region's hyperplanes and to the domain's rows (exact slacks) gives a
    ball of radius t around it, so t > tol certifies it; otherwise one Chebyshev LP
    (:func:`lrmilp.counting.model.pattern_ball`) decides.  Patterns are bit-packed in 64-bit words, so
    a system is checked against all of them with a few vector operations per XOR.
    """

    def __init__(self, net: Network, domain: Domain, tolerance: Tolerance, *, samples: int, seed: int,
                 batch: int = 65536) -> None:
        self.net, self.domain, self.tolerance = net, domain, tolerance
        self.neurons = net.neurons
        self.words = max(1, math.ceil(self.neurons / 64))
        rng = np.random.default_rng([seed, 0x5EED])  # not the XORs' stream
        keys: dict[bytes, np.ndarray] = {}
        done = 0
        while done < samples:
            U = domain.sample(min(batch, samples - done), rng)
            X = U if domain.basis is None else domain.origin + U @ domain.basis.T
            P = net.patterns(X)
            packed = np.ascontiguousarray(np.packbits(P, axis=1, bitorder="little"))
            # unique rows through a bytes view: a plain sort, several times faster than unique(axis=0)
            _, first = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(), return_index=True)
            for i in first:
                keys.setdefault(packed[i].tobytes(), U[i])
            done += len(U)
        self.points = np.array(list(keys.values())).reshape(len(keys), domain.dim)
        raw = np.zeros((len(keys), self.words * 8), np.uint8)
        for i, key in enumerate(keys):
            raw[i, :len(key)] = np.frombuffer(key, np.uint8)
        self.bits = raw.view("<u8")  # (S, words): bit j of the pattern is bit j % 64 of word j // 64
        self.status = np.zeros(len(keys), np.int8)  # 0 not yet checked, 1 a region, -1 not certified
        self.rows, self.rhs = domain_rows(domain)
        self.hits = 0

    def __len__(self) -> int:
        return len(self.points)

    def pattern(self, i: int) -> np.ndarray:
        bits = np.unpackbits(self.bits[i].view(np.uint8), bitorder="little")
        return bits[:self.neurons].astype(bool)

    def find(self, system: XorSystem) -> np.ndarray | None:
        """A certified region's pattern that satisfies ``system``, or None."""
        found = self.find_many(system, 1)
        return None if found is None else found[0]

    def find_many(self, system: XorSystem, at_least: int) -> list[np.ndarray] | None:
        """``at_least`` certified regions' patterns that satisfy ``system``, or None.  Patterns not yet
        decided get the counting rule, at most WITNESS_TRIES more than are needed."""
        alive = np.arange(len(self))
        for mask, parity in zip(system.masks, system.parities):
            odd = np.zeros(alive.size, np.uint64)
            for w in range(self.words):
                word = np.uint64((mask >> (64 * w)) & 0xFFFFFFFFFFFFFFFF)
                odd ^= np.bitwise_count(self.bits[alive, w] & word).astype(np.uint64)
            alive = alive[(odd & np.uint64(1)) == parity]
            if alive.size < at_least:
                return None
        status = self.status[alive]
        got = [int(i) for i in alive[status == 1][:at_least]]
        for i in alive[status == 0][:WITNESS_TRIES + at_least - 1]:
            if len(got) == at_least:
                break
            self.status[i] = 1 if self._certified(int(i)) else -1
            if self.status[i] == 1:
                got.append(int(i))
        if len(got) < at_least:
            return None
        self.hits += 1
        return [self.pattern(j) for j in got]

    def certify_all(self, deadline: float | None = None, *, chunk: int = 4096) -> int:
        """Decide every distinct sampled pattern by the counting rule and return how many are regions.

        Margins are computed for all samples at once (the sample's distance to each of its region's
        hyperplanes and to the domain's rows, from the input gradients of every pre-activation); a
        pattern whose margin is not above tol gets one Chebyshev LP, as in :meth:`find`.  Every
        pattern counted is a region, so the number is a certain lower bound on the count.  Stops
        deciding (leaving the rest uncounted) at ``deadline``, a time.perf_counter() value.
        """
        todo = np.flatnonzero(self.status == 0)
        # the input gradients of a chunk hold samples x widest layer x dim numbers: keep them ~16 MB
        widest = max(layer.out_size for layer in self.net.layers)
        chunk = max(1, min(chunk, 2_000_000 // max(1, widest * self.domain.dim)))
        for start in range(0, todo.size, chunk):
            idx = todo[start:start + chunk]
            ok = self._margins(self.points[idx]) > self.tolerance.tol
            self.status[idx[ok]] = 1
            for i in idx[~ok]:
                if deadline is not None and time.perf_counter() > deadline:
                    return int((self.status == 1).sum())
                self.status[i] = 1 if self._lp_certified(int(i)) else -1  # its margin is known: <= tol
        return int((self.status == 1).sum())

    def undecided(self) -> int:
        """How many distinct sampled patterns neither :meth:`certify_all` nor :meth:`find` has decided."""
        return int((self.status == 0).sum())

    def certified_patterns(self) -> list[bytes]:
        """The patterns :meth:`certify_all` or :meth:`find` certified, as bytes of bool arrays."""
        rows = self.bits[self.status == 1]  # all at once: per pattern unpacking cost 40 ms at 16k patterns
        bits = np.unpackbits(np.ascontiguousarray(rows).view(np.uint8).reshape(rows.shape[0], -1), axis=1,
                             bitorder="little")[:, :self.neurons].astype(bool)
        return [row.tobytes() for row in bits]

    def _margins(self, U: np.ndarray) -> np.ndarray:
        """Per sample: the radius of the largest ball around it inside its pattern's region and the
        domain, by the same rule as :meth:`_certified` (constant neurons impose nothing)."""
        dom, S = self.domain, U.shape[0]
        X = U if dom.basis is None else dom.origin + U @ dom.basis.T
        basis = np.eye(dom.dim) if dom.basis is None else np.asarray(dom.basis, dtype=float)
        J = None  # (S, inputs, dim): d(layer input)/du per sample; None while it is the basis for all
        t = np.min(self.rhs - U @ self.rows.T, axis=1) if self.rows.shape[0] else np.full(S, np.inf)
        for layer in self.net.layers:
            M = layer.matrix
            H = np.asarray(M @ X.T).T + layer.bias  # (S, out): pre-activations
            if J is None:
                G = np.asarray(M @ basis)
                Jn = np.broadcast_to(G, (S,) + G.shape)
            else:
                n_in, d = J.shape[1], J.shape[2]
                Jn = np.asarray(M @ J.transpose(1, 0, 2).reshape(n_in, S * d)).reshape(-1, S, d).transpose(1, 0, 2)
            if layer.relu:
                norms = np.sqrt(np.einsum("sjd,sjd->sj", Jn, Jn))
                live = norms > 1e-10 * (np.abs(Jn).sum(axis=2) + 1e-300)
                dist = np.where(live, np.abs(H) / np.where(live, norms, 1.0), np.inf)
                t = np.minimum(t, dist.min(axis=1, initial=np.inf))
                on = H > 0
                X, J = H * on, Jn * on[:, :, None]
            else:
                X, J = H, Jn
        return t

    def _certified(self, i: int) -> bool:
        """Sample i's margin (:meth:`_margins`) above tol, else one Chebyshev LP decides."""
        return self._margins(self.points[i:i + 1])[0] > self.tolerance.tol or self._lp_certified(i)

    def _lp_certified(self, i: int) -> bool:
        radius, _ = pattern_ball(self.net, self.domain, self.pattern(i), cap=self.tolerance.cap)
        return radius > self.tolerance.tol

"""Every bound that applies to a given network, gathered in one dict."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..network import Conv2d, Network
from ..network import Dense
from .cnn import theorem5_parts, xiong2020, xiong2020_deep_bounds, xiong2020_lower
from .exact import one_layer_exact
from .mlp import activation_patterns, mlp_bounds

__all__ = ["RANK_MAX_ENTRIES", "SCOPE", "bounds_for_network", "cnn_bounds", "xiong2020_lower_exact"]

#: What the xiong2020_* values of a deep CNN bound, and which lower bound is proved.
SCOPE = ("xiong2020_lower, xiong2020_lower_exact and xiong2020_upper bound the MAXIMUM number of regions over "
         "all weights of this architecture on R^n0, not this network's count; xiong2020_lower_exact is proved "
         "(Theorem 5's construction with a random N' whose regions are counted exactly), xiong2020_lower "
         "takes R_N' from Theorem 2, which overlapping 2-D filters with two or more filters do not attain")


def _one_layer_cnn(net: Network) -> Conv2d | None:
    """The conv layer of a one-layer CNN (first layer Conv2d with ReLU, the rest linear), else None."""
    first = net.layers[0]
    return first if isinstance(first, Conv2d) and net.relu_layers == [0] else None


def _xiong_args(conv: Conv2d) -> dict:
    return {"input_shape": conv.in_shape, "kernel": tuple(conv.W.shape[2:]), "filters": conv.W.shape[0],
            "stride": conv.stride, "padding": conv.padding}


def _attempt(out: dict, key: str, fn, *args, **kwargs) -> None:
    """``out[key] = fn(...)``; where ``fn`` refuses the input (InputError), None and the reason in
    ``out[key + "_note"]``."""
    try:
        out[key] = fn(*args, **kwargs)
    except InputError as exc:
        out[key] = None
        out[f"{key}_note"] = str(exc)


def cnn_bounds(net: Network, *, time_limit: float | None = None) -> dict:
    """For a one-layer CNN: activation_patterns, xiong2020 and one_layer_exact.

    Each of the last two is None where it cannot be computed (or xiong2020's search outlasts
    ``time_limit`` seconds), with the reason under ``<key>_note``.
    """
    conv = _one_layer_cnn(net)
    if conv is None:
        raise InputError("cnn_bounds needs a one-layer CNN: a first Conv2d layer with ReLU, the rest linear")
    out = {"activation_patterns": activation_patterns(net.widths)}
    _attempt(out, "xiong2020", xiong2020, **_xiong_args(conv), time_limit=time_limit)
    _attempt(out, "one_layer_exact", one_layer_exact, net)
    return out


def _conv_stack(net: Network) -> list[dict]:
    """The layers of ``net`` as Theorem 5 sees them, if it is an L-layer ReLU CNN: its first L layers
    are convolutions each followed by a ReLU and the rest are linear (no ReLU).  InputError otherwise."""
    relu = net.relu_layers
    if relu != list(range(len(relu))) or not all(isinstance(net.layers[i], Conv2d) for i in relu):
        raise InputError("theorem 5 needs an L-layer ReLU CNN: convolutions with ReLU first, then only "
                         "linear layers")
    return [{"kernel": tuple(int(k) for k in net.layers[i].W.shape[2:]), "filters": int(net.layers[i].W.shape[0]),
             "stride": net.layers[i].stride, "padding": net.layers[i].padding} for i in relu]


def xiong2020_lower_exact(*, input_shape: tuple[int, int, int], layers: list[dict], seed: int = 0,
                          max_subsets: int = 2 ** 20) -> int:
    """Theorem 5 of Xiong et al. 2020 with R_N' replaced by the exact region count of a random N'.

    N' (see :func:`~lrmilp.theory.cnn.theorem5_parts`) is drawn with standard normal filters and biases
    (``seed``) and counted by :func:`~lrmilp.theory.exact.one_layer_exact`.  The count of any one draw is
    at most N''s maximum, and Theorem 5's construction places any N' after the folding layers, so the
    result is a proved lower bound on the maximal number of regions of the architecture over all
    weights on R^n0 (it does not rely on Theorem 2's value being attained).  Raises InputError where
    N' has too many independent sets to enumerate.

    Examples
    --------
    >>> two = [{"kernel": (2, 2), "filters": 2, "stride": 1}] * 2
    >>> xiong2020_lower_exact(input_shape=(1, 4, 4), layers=two)  # 2^(3*3*1) folds * 255 (N' drawn, counted)
    130560
    """
    factor, nprime = theorem5_parts(input_shape, layers)
    rng = np.random.default_rng(seed)
    d, c = nprime["filters"], nprime["input_shape"][0]
    conv = Conv2d(rng.standard_normal((d, c) + nprime["kernel"]), rng.standard_normal(d), nprime["input_shape"],
                  nprime["stride"], nprime["padding"])
    net = Network([conv, Dense(np.ones((1, conv.out_size)), np.zeros(1), relu=False)], nprime["input_shape"])
    return factor * one_layer_exact(net, max_subsets=max_subsets)


#: Largest matrix (in entries) whose rank :func:`bounds_for_network` computes; a bigger one is given
#: rank min(rows, columns), which keeps the rank-aware bound valid (a rank only needs to be an upper bound).
RANK_MAX_ENTRIES = 4_000_000


def _effective_ranks(net: Network) -> list[int]:
    """Rank of the linear map from the previous ReLU layer (or the input) to each ReLU layer.

    Linear layers in between are multiplied in: their product has rank <= the ReLU layer's own
    matrix, so the rank-aware Serra bound is at least as tight and still valid.
    """
    ranks, M = [], None
    for layer in net.layers:
        M = layer.matrix if M is None else layer.matrix @ M
        if layer.relu:
            if M.shape[0] * M.shape[1] <= RANK_MAX_ENTRIES:
                ranks.append(int(np.linalg.matrix_rank(M.toarray() if sp.issparse(M) else M)))
            else:
                ranks.append(min(M.shape))
            M = None
    return ranks


def bounds_for_network(net: Network, *, time_limit: float | None = None) -> dict:
    """All bounds that apply to ``net``.

    Always the :func:`mlp_bounds` keys, with serra2018_rank from the ranks of the actual weights
    and the lower bounds (on the maximum over parameters) set to None for conv nets;
    for a one-layer CNN also xiong2020; for a net with one ReLU layer, the first, also
    one_layer_exact; for a deeper net whose first layer is a convolution with ReLU, xiong2020_upper
    (:func:`xiong2020_deep_bounds`), xiong2020_lower (Theorem 5 with Theorem 2's R_N', not proved),
    xiong2020_lower_exact (Theorem 5 with an exactly counted random N', proved) and xiong2020_scope (the
    text :data:`SCOPE`: these bound the maximum over all weights, not this network's count).  A value
    that cannot be computed is None, with the reason under ``<key>_note``.

    Parameters
    ----------
    net : Network
        The network.
    time_limit : float, optional
        Seconds for each bound computed by a search (Xiong et al.'s Theorem 2 sum); one that runs
        out of time is None, with the reason.

    Returns
    -------
    dict
        Exact integers (or None).

    Examples
    --------
    >>> from lrmilp import random_mlp
    >>> bounds_for_network(random_mlp([2, 3], seed=0))["one_layer_exact"]
    7
    """
    widths = net.widths
    if not widths:
        raise InputError("the network has no ReLU layer, hence a single linear region")
    out = mlp_bounds(net.input_dim, widths, ranks=_effective_ranks(net))
    if net.is_cnn:
        # The lower bounds are reached by some fully connected net of these widths; weight sharing
        # may forbid that (the 1x1x4 CNN with three 1x2 filters has at most 217 < 256 regions).
        out["montufar2014_lower"] = out["serra2018_lower"] = None
        out["montufar2014_lower_note"] = out["serra2018_lower_note"] = (
            "the construction needs fully connected layers; weight sharing may forbid it")
    first = net.layers[0]
    if net.relu_layers == [0]:
        if isinstance(first, Conv2d):
            _attempt(out, "xiong2020", xiong2020, **_xiong_args(first), time_limit=time_limit)
        _attempt(out, "one_layer_exact", one_layer_exact, net)
    elif isinstance(first, Conv2d) and first.relu:
        _attempt(out, "xiong2020_upper",
                 lambda: xiong2020_deep_bounds(**_xiong_args(first), later_widths=widths[1:],
                                               time_limit=time_limit)["upper"])
        _attempt(out, "xiong2020_lower", lambda: xiong2020_lower(input_shape=net.input_shape, layers=_conv_stack(net),
                                                                 time_limit=time_limit))
        _attempt(out, "xiong2020_lower_exact",
                 lambda: xiong2020_lower_exact(input_shape=net.input_shape, layers=_conv_stack(net)))
        out["xiong2020_scope"] = SCOPE
    return out

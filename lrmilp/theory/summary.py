"""Every bound that applies to a given network, gathered in one dict."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..network import Conv2d, Network
from .cnn import xiong2020, xiong2020_deep_bounds
from .exact import one_layer_exact
from .mlp import activation_patterns, mlp_bounds

__all__ = ["RANK_MAX_ENTRIES", "bounds_for_network", "cnn_bounds"]


def _one_layer_cnn(net: Network) -> Conv2d | None:
    """The conv layer of a one-layer CNN (first layer Conv2d with ReLU, the rest linear), else None."""
    first = net.layers[0]
    return first if isinstance(first, Conv2d) and net.relu_layers == [0] else None


def _xiong_args(conv: Conv2d) -> dict:
    return {"input_shape": conv.in_shape, "kernel": tuple(conv.W.shape[2:]), "filters": conv.W.shape[0],
            "stride": conv.stride, "padding": conv.padding}


def _or_none(fn, *args, **kwargs) -> int | None:
    """``fn(...)``, or None where it refuses an input as too large to enumerate."""
    try:
        return fn(*args, **kwargs)
    except InputError:
        return None


def cnn_bounds(net: Network) -> dict:
    """For a one-layer CNN: activation_patterns, xiong2020 and one_layer_exact (each None if too large)."""
    conv = _one_layer_cnn(net)
    if conv is None:
        raise InputError("cnn_bounds needs a one-layer CNN: a first Conv2d layer with ReLU, the rest linear")
    return {"activation_patterns": activation_patterns(net.widths),
            "xiong2020": _or_none(xiong2020, **_xiong_args(conv)),
            "one_layer_exact": _or_none(one_layer_exact, net)}


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


def bounds_for_network(net: Network) -> dict:
    """All bounds that apply to ``net``.

    Always the :func:`mlp_bounds` keys, with serra2018_rank from the ranks of the actual weights
    and the lower bounds (on the maximum over parameters) set to None for conv nets;
    for a one-layer CNN also xiong2020; for a net with one ReLU layer, the first, also
    one_layer_exact; for a deeper net whose first layer is a convolution with ReLU, xiong2020_upper
    (:func:`xiong2020_deep_bounds`).  The enumerated ones are None when too large to compute.

    Parameters
    ----------
    net : Network
        The network.

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
    first = net.layers[0]
    if net.relu_layers == [0]:
        if isinstance(first, Conv2d):
            out["xiong2020"] = _or_none(xiong2020, **_xiong_args(first))
        out["one_layer_exact"] = _or_none(one_layer_exact, net)
    elif isinstance(first, Conv2d) and first.relu:
        deep = _or_none(xiong2020_deep_bounds, **_xiong_args(first), later_widths=widths[1:])
        out["xiong2020_upper"] = None if deep is None else deep["upper"]
    return out

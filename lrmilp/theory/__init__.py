"""Closed-form bounds on the number of linear regions of ReLU networks.

Every count is an exact Python ``int`` (the numbers routinely exceed 2^60, so floats are never used).
Notation: an MLP has input size ``n0`` and ReLU layer widths ``widths = (n1, ..., nL)``.

Sources:

* Zaslavsky (1975) / Pascanu et al. (2014): ``n1`` hyperplanes in general position cut R^n0 into
  sum_{i<=n0} C(n1, i) regions.
* Raghu et al. (ICML 2017), Montufar (SampTA 2017), Serra, Tjandraatmadja & Ramalingam (ICML 2018):
  upper bounds for deep MLPs; Montufar et al. (NeurIPS 2014) and Serra et al. (2018): lower bounds on
  the *maximal* number of regions over all parameters of an architecture.
* Xiong et al., "On the number of linear regions of convolutional neural networks" (ICML 2020):
  the maximal number of regions of a one-layer ReLU CNN (their Theorem 2).

Modules: :mod:`.mlp` (closed forms for MLPs), :mod:`.cnn` (Xiong et al. 2020), :mod:`.exact` (exact count of
one ReLU layer), :mod:`.summary` (every bound that applies to a network), :mod:`.binomial` (shared sums).
"""

from __future__ import annotations

from .cnn import xiong2020, xiong2020_deep_bounds
from .exact import one_layer_exact
from .mlp import (activation_patterns, bounds_for_arch, mlp_bounds, montufar2014_lower, montufar2017, one_layer_max,
                  raghu2017, serra2018, serra2018_lower)
from .summary import RANK_MAX_ENTRIES, bounds_for_network, cnn_bounds

__all__ = [
    "RANK_MAX_ENTRIES", "activation_patterns", "bounds_for_arch", "bounds_for_network", "cnn_bounds",
    "montufar2014_lower", "montufar2017", "mlp_bounds", "one_layer_exact", "one_layer_max", "raghu2017", "serra2018",
    "serra2018_lower", "xiong2020", "xiong2020_deep_bounds",
]

"""The one-tree search: the core that walks the network's layers (:mod:`lrmilp.search.core`) over the
cell geometries of :mod:`lrmilp.cells`, and the result of a count (:mod:`lrmilp.search.result`)."""

from ..cells import TreeStats
from .core import ParityPath, Stop, TreeSearch
from .result import CountResult, tree_result

__all__ = ["CountResult", "ParityPath", "Stop", "TreeSearch", "TreeStats", "tree_result"]

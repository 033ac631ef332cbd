"""lrmilp: count, bound and analyse the linear regions of ReLU networks."""

from .errors import InputError, SolverUnavailable
from .loaders import load_network, load_npz, save_npz
from .network import Conv2d, Dense, Network, random_mlp

__version__ = "0.1.0"

__all__ = ["Conv2d", "Dense", "InputError", "Network", "SolverUnavailable", "load_network", "load_npz",
           "random_mlp", "save_npz", "__version__"]

"""bnnas: BN-NAS neural architecture search -- BN-only supernets, BN-indicator search, and transfer to detection."""

from .arch import Arch, load_arch, save_arch
from .errors import BNNASError
from .space import SearchSpace, get_space, list_spaces

__version__ = "0.1.0"
__all__ = ["Arch", "BNNASError", "SearchSpace", "get_space", "list_spaces", "load_arch", "save_arch", "__version__"]

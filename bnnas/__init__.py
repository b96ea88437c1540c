"""bnnas: BN-NAS neural architecture search -- BN-only supernets, BN-indicator search, and transfer to detection."""

from bnnas.core.arch import Arch, load_arch, save_arch
from bnnas.errors import BNNASError
from bnnas.core.space import SearchSpace, get_space, list_spaces

__version__ = "0.1.0"
__all__ = ["Arch", "BNNASError", "SearchSpace", "get_space", "list_spaces", "load_arch", "save_arch", "__version__"]

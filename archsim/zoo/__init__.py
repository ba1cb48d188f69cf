"""The zoo: cached token sequences of every torchvision and timm model, and what is built on them.

``load_zoo`` reads the cache, ``build_zoo`` regenerates it, ``nearest`` finds a model's closest
zoo architectures, ``similarity_array``/``write_zoo_matrix`` compute the whole-zoo matrix.
Names resolve on first use, so reading the cache does not import Numba.
"""
from __future__ import annotations

from .._registry import lazy_exports

_EXPORTS = {
    "PACKAGED": "store", "ZOOS": "store", "Zoo": "store", "load_zoo": "store", "user_zoo_path": "store",
    "build_zoo": "build", "merge_zoo": "build", "zoo_names": "build",
    "similarity_array": "matrix", "write_zoo_matrix": "matrix",
    "nearest": "neighbours",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""archsim: compare deep-network architectures by aligning their layer sequences.

    >>> import archsim
    >>> al = archsim.align("CCMCCMCCCMCCCMCCCMLLL", "CCMCCMCCCCMCCCCMCCCCMLLL")
    >>> al.score, al.matches, al.length
    (15, 21, 24)
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# Public name -> submodule.  Resolved on first use so `archsim --help` and plain
# `import archsim` do not pay for torch / numba imports.
_EXPORTS = {
    "LayerSeq": "tokens", "letters": "tokens", "PROFILES": "tokens",
    "extract": "extract",
    "align": "align", "Alignment": "align", "Scoring": "align",
    "list_models": "zoo", "resolve": "zoo",
    "ArchsimError": "errors", "UnknownModelError": "errors", "ModelLoadError": "errors",
    "cached_extract": "cache",
    "similarity_matrix": "similarity", "correlation": "similarity", "cluster_order": "similarity",
    "linkage": "similarity", "load_sequences": "similarity", "pair_matrices": "similarity",
    "pair_stats": "allpairs", "all_pairs": "allpairs", "encode_many": "allpairs",
    "nearest": "nearest", "similarity_array": "zoomatrix", "load_zoo": "zoocache",
    "preset": "presets", "list_presets": "presets", "PresetEntry": "presets", "register_preset": "presets",
    "figure6": "plot",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archsim' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)


# `archsim.extract`, `archsim.align` and `archsim.nearest` are both submodules and the
# functions users call.  Importing a submodule rebinds the package attribute to the module,
# so the package resolves those names to the function whenever the module sits there.
_SHADOWED = frozenset(n for n, mod in _EXPORTS.items() if n == mod)


class _Package(types.ModuleType):
    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return getattr(value, name)
        return value


sys.modules[__name__].__class__ = _Package

"""archsim: compare deep-network architectures by aligning their layer sequences.

    >>> import archsim
    >>> al = archsim.align("CCMCCMCCCMCCCMCCCMLLL", "CCMCCMCCCCMCCCCMCCCCMLLL")
    >>> al.score, al.matches, al.length
    (15, 21, 24)
"""
from __future__ import annotations

import importlib

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
    "linkage": "similarity", "load_sequences": "similarity",
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

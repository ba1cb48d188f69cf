"""archsim: compare deep-network architectures by aligning their layer sequences.

The pipeline, one module per stage: ``models`` (names -> builders) -> ``tracing`` (model ->
``LayerSeq``) -> ``alignment`` (Needleman-Wunsch) / ``kernel`` (SIMD all-pairs) -> ``matrices``
(N×N similarity, correlation, clustering) -> ``plot``/``figures``; ``zoo`` holds the cached
sequences of every torchvision and timm model.

    >>> import archsim
    >>> al = archsim.align("CCMCCMCCCMCCCMCCCMLLL", "CCMCCMCCCCMCCCCMCCCCMLLL")
    >>> al.score, al.matches, al.length
    (15, 21, 24)
"""
from __future__ import annotations

from ._registry import lazy_exports

__version__ = "0.1.0"

# Public name -> module.  Resolved on first use so `archsim --help` and plain `import archsim`
# do not pay for torch / numba imports.  No module is named like a function it exports.
_EXPORTS = {
    "extract": "tracing",
    "align": "alignment", "Alignment": "alignment", "Scoring": "alignment",
    "LayerSeq": "tokens", "PROFILES": "tokens",
    "get_model": "models", "list_models": "models", "register_model": "models",
    "similarity_matrix": "matrices", "correlation": "matrices",
    "get_preset": "presets", "list_presets": "presets", "register_preset": "presets",
    "nearest": "zoo", "load_zoo": "zoo",
    "figure6": "figures",
    "ArchsimError": "errors",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

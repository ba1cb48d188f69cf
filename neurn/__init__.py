"""NeuRN: Neural Response Normalization and its domain-generalization benchmark.

``neurn.NeuRN`` / ``neurn.neurn`` are the layer; ``neurn.domains`` loads the digit domains
(imported on demand, it pulls in scikit-learn and Pillow); ``neurn.plot`` draws the figures.
"""
from neurn._io import CorruptData, DomainUnavailable, InvalidArgument, NeurnError, UnknownDomain
from neurn.functional import neurn
from neurn.layer import NeuRN

__version__ = "0.1.0"
__all__ = ["NeuRN", "neurn", "NeurnError", "UnknownDomain", "DomainUnavailable", "CorruptData", "InvalidArgument",
           "__version__"]

"""NeuRN: Neural Response Normalization and its domain-generalization benchmark."""
from neurn.functional import neurn
from neurn.layer import NeuRN

__version__ = "0.1.0"
__all__ = ["NeuRN", "neurn", "__version__"]

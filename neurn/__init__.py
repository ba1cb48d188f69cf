"""NeuRN: Neural Response Normalization and its domain-generalization benchmark.

``neurn.NeuRN`` / ``neurn.neurn`` are the layer; ``neurn.domains`` loads the digit domains
(imported on demand, it pulls in scikit-learn and Pillow); ``neurn.plot`` draws the figures;
the benchmark harness (architectures, methods, sweeps, tables) is resolved on first use.
"""
import importlib

from neurn._io import CorruptData, DomainUnavailable, InvalidArgument, NeurnError, UnknownDomain
from neurn.functional import neurn
from neurn.layer import NeuRN

__version__ = "0.1.0"

_LAZY = {
    "create_arch": "archs", "list_archs": "archs", "register_arch": "archs",
    "list_methods": "methods", "register_method": "methods",
    "run_sweep": "bench", "format_table": "tables", "load_records": "tables", "plot_gains": "gainplot",
    "list_domains": "domains", "load_domain": "domains", "available_domains": "domains",
    "register_domain": "domains",
}
__all__ = ["NeuRN", "neurn", "NeurnError", "UnknownDomain", "DomainUnavailable", "CorruptData", "InvalidArgument",
           "__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"neurn.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurn' has no attribute {name!r}")

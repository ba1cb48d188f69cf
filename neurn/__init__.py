"""NeuRN: Neural Response Normalization and its domain-generalization benchmark.

``neurn.NeuRN`` / ``neurn.neurn`` are the layer; ``neurn.domains`` loads the digit domains;
``neurn.bench`` trains and compares methods; ``neurn.plot`` draws the figures.  Everything
but the layer is imported on first use.

    >>> import torch, neurn
    >>> y = neurn.neurn(torch.rand(2, 3, 8, 8))
    >>> tuple(y.shape), float(y.amax()) == 1.0
    ((2, 3, 8, 8), True)
"""
from archsim._registry import lazy_exports
from neurn.errors import CorruptData, DomainUnavailable, InvalidArgument, NeurnError, UnknownName
from neurn.functional import neurn
from neurn.layer import NeuRN

__version__ = "0.1.0"

_EXPORTS = {
    "list_domains": "domains", "load_domain": "domains", "get_domain": "domains", "register_domain": "domains",
    "available_domains": "domains",
    "list_archs": "bench", "get_arch": "bench", "register_arch": "bench", "create_arch": "bench",
    "list_methods": "bench", "get_method": "bench", "register_method": "bench",
    "run_sweep": "bench", "load_records": "bench", "format_table": "bench",
    "plot_gains": "plot", "examples_figure": "plot",
}
__all__ = ["NeuRN", "neurn", "NeurnError", "UnknownName", "DomainUnavailable", "CorruptData", "InvalidArgument",
           "__version__", "domains", "bench", "plot", *sorted(_EXPORTS)]
_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name in ("domains", "bench", "plot"):  # the subpackages themselves
        import importlib
        return importlib.import_module(f"neurn.{name}")
    return _getattr(name)

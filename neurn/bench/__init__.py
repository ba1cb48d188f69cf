"""The NeuRN benchmark: architectures × methods × seeds, trained on MNIST and tested on unseen domains.

One module per stage: ``archs`` and ``methods`` (registries), ``protocol`` (the config dict),
``train`` (one run -> one record), ``sweep`` (every pending run, resumable), ``records`` (the
JSON files on disk), ``report`` (tables and gains).
"""
from archsim._registry import lazy_exports

_EXPORTS = {
    "register_arch": "archs", "list_archs": "archs", "get_arch": "archs", "create_arch": "archs",
    "register_method": "methods", "list_methods": "methods", "get_method": "methods",
    "default_protocol": "protocol", "run_one": "train", "run_sweep": "sweep",
    "load_records": "report", "format_table": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

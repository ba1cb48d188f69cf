"""Where models come from: torchvision, timm, archsim's own definitions, and user factories.

``get_model(name)`` resolves a name to a ``ModelSpec``; ``list_models(pattern)`` lists names;
``register_model`` adds an architecture to ``archsim:``; ``load_factory`` builds a user's
``path/to/file.py:factory`` or ``package.module:factory``.
"""
from .registry import Entry, register_model
from .sources import (
    PREFIXES,
    SOURCES,
    ModelSpec,
    get_model,
    is_factory_reference,
    list_models,
    load_factory,
    qualified,
)

__all__ = ["Entry", "ModelSpec", "PREFIXES", "SOURCES", "get_model", "is_factory_reference", "list_models",
           "load_factory", "qualified", "register_model"]

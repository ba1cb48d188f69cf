"""archsim's own architectures (``archsim:NAME``): the ``register_model`` registry.

Definitions live in ``archsim/models/definitions/``, one file per family; importing them runs
their ``@register_model`` decorators.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .._registry import Registry
from ..errors import UnknownNameError


@dataclass(frozen=True)
class Entry:
    """A registered architecture: its factory, expected input and the paper it follows."""

    name: str
    factory: Callable
    input_size: tuple[int, int, int] = (3, 224, 224)
    reference: str = ""


def _load_definitions() -> None:
    import importlib
    import pkgutil

    from . import definitions
    for info in pkgutil.iter_modules(definitions.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{definitions.__name__}.{info.name}")


OWN_MODELS: Registry[Entry] = Registry("archsim model", UnknownNameError, loader=_load_definitions)

register_model = OWN_MODELS.decorator(
    lambda name, fn, input_size=(3, 224, 224), reference="": Entry(name, fn, tuple(input_size), reference))
register_model.__doc__ = """Add a model factory to archsim's registry (``archsim:NAME``; name defaults to the function's).

    Use bare (``@register_model``) or with options
    (``@register_model("unet", input_size=(1, 572, 572), reference="...")``).
    """

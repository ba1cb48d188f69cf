"""archsim's own model definitions (architectures neither torchvision nor timm ships)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

_REGISTRY: dict[str, "Entry"] = {}


@dataclass(frozen=True)
class Entry:
    """A registered architecture: its factory, expected input and the paper it follows."""

    name: str
    factory: Callable
    input_size: tuple[int, int, int] = (3, 224, 224)
    reference: str = ""


def register_model(name: str, input_size: tuple[int, int, int] = (3, 224, 224), reference: str = ""):
    """Decorator adding a model factory to archsim's registry (``archsim:NAME``)."""
    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = Entry(name, fn, input_size, reference)
        return fn
    return deco


def _load_all() -> None:
    # Importing the definition modules runs their @register_model decorators.
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def list_registered() -> list[str]:
    """Names of archsim's own models."""
    _load_all()
    return sorted(_REGISTRY)


def get_registered(name: str) -> Entry:
    """The registry entry of one of archsim's own models."""
    _load_all()
    return _REGISTRY[name]

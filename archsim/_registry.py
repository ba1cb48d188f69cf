"""The one registry idiom of both tools: ``register_x`` decorator, ``list_x(pattern)``, ``get_x(name)``.

    >>> from archsim.errors import UnknownNameError
    >>> colours = Registry("colour", UnknownNameError)
    >>> @colours.decorator()
    ... def red():
    ...     return "#f00"
    >>> colours.list("r*"), colours.get("red")()
    (['red'], '#f00')
    >>> colours.get("rd")
    Traceback (most recent call last):
    ...
    archsim.errors.UnknownNameError: unknown colour 'rd'; did you mean red? (choose from: red)
"""
from __future__ import annotations

import fnmatch
from typing import Any, Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, in registration order.

    Args:
        kind: what the entries are, for messages ("model", "domain", ...).
        error: raised by :meth:`get` as ``error(kind, name, choices)``.
        loader: called once before the first lookup (imports the modules that register entries).
    """

    def __init__(self, kind: str, error: type[Exception], loader: Callable[[], None] | None = None):
        self.kind, self.error, self._loader = kind, error, loader
        self._entries: dict[str, T] = {}
        self._loaded = loader is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._loader()

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a second entry of the same name is a programming error."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> T:
        """Unregister ``name`` (for tests and interactive experiments); returns its entry."""
        self._load()
        try:
            return self._entries.pop(name)
        except KeyError:
            raise self.error(self.kind, str(name), list(self._entries)) from None

    def decorator(self, make: Callable[..., T] | None = None) -> Callable[..., Any]:
        """A ``register_x`` that works bare (``@register_x``) or with options (``@register_x("name", ...)``).

        The name defaults to the decorated function's name; ``make(name, fn, **options)``
        turns the function into the stored entry (default: the function itself).
        """
        def register(fn_or_name: Any = None, *args: Any, **options: Any) -> Any:
            if callable(fn_or_name):  # bare @register_x
                return _wrap(None, args, options)(fn_or_name)
            return _wrap(fn_or_name if fn_or_name is not None else options.pop("name", None), args, options)

        def _wrap(name: str | None, args: tuple, options: dict) -> Callable[[Callable], Callable]:
            def deco(fn: Callable) -> Callable:
                key = name or fn.__name__
                self.add(key, make(key, fn, *args, **options) if make else fn)
                return fn
            return deco

        return register

    def list(self, pattern: str = "*") -> list[str]:
        """Names matching the shell-style ``pattern`` (case-insensitive), in registration order."""
        self._load()
        pat = str(pattern).lower()
        return [n for n in self._entries if fnmatch.fnmatchcase(n.lower(), pat)]

    def get(self, name: str) -> T:
        """The entry called ``name``; unknown names raise ``self.error`` with did-you-mean."""
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(self.kind, str(name), list(self._entries)) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names load their module on first use.

    ``exports`` maps a public name to ``"module"`` or ``"module:attribute"`` (relative to ``package``),
    so ``import package`` stays cheap (no torch or Numba until a name is used).
    """
    import importlib
    import sys

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = exports[name].partition(":")
        value = getattr(importlib.import_module(f".{module}", package), attr or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__

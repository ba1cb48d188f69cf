"""Errors with one clear message naming the fix; the CLI prints them without a traceback."""
from __future__ import annotations


class ArchsimError(Exception):
    """Base class of the errors archsim reports to users as a single line."""


class UnknownModelError(ArchsimError, ValueError):
    """A model name that neither torchvision, timm nor archsim's own registry knows."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown model {name!r}{hint} (see `archsim list PATTERN`)")


class ModelLoadError(ArchsimError):
    """A user model (``file.py:factory`` or ``package.module:factory``) that could not be built."""

"""The public API: every export resolves, and functions named like their modules stay callable."""
from __future__ import annotations

import importlib

import archsim
import neurn


def test_every_archsim_export_resolves():
    for name in archsim.__all__:
        assert getattr(archsim, name) is not None, name


def test_functions_shadowing_submodules_stay_callable():
    for mod in ("extract", "align", "nearest"):
        importlib.import_module(f"archsim.{mod}")  # binds the module on the package
        assert callable(getattr(archsim, mod)) and not isinstance(getattr(archsim, mod), type(archsim)), mod
    assert archsim.align("CRM", "CM").score == 0  # C=C, R vs gap, M=M


def test_neurn_exports():
    for name in ("NeuRN", "neurn", "create_arch", "list_archs", "list_methods", "run_sweep", "load_records"):
        assert hasattr(neurn, name), name

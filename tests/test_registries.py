"""Every registry speaks one idiom, and every registered entry works (parametrized like timm's model tests)."""
from __future__ import annotations

import pytest
import torch

import archsim
import neurn
from archsim.errors import UnknownNameError
from archsim.models.registry import OWN_MODELS
from archsim.presets import get_preset, list_presets
from neurn.bench.archs import create_arch, list_archs
from neurn.bench.methods import get_method, list_methods
from neurn.domains import get_domain, list_domains
from neurn.errors import UnknownName

REGISTRIES = [
    # (list_x, get_x, a name, a misspelling, what did-you-mean must offer, error type)
    (list_presets, get_preset, "paper44", "paper4", "paper44", UnknownNameError),
    (OWN_MODELS.list, OWN_MODELS.get, "unet", "unnet", "unet", UnknownNameError),
    (list_domains, get_domain, "mnistm", "mnistn", "mnistm", UnknownName),
    (list_archs, neurn.get_arch, "resnet18", "resnet19", "resnet18", UnknownName),
    (list_methods, get_method, "randconv", "randcov", "randconv", UnknownName),
]


@pytest.mark.parametrize("list_x, get_x, name, typo, hint, error", REGISTRIES,
                         ids=["presets", "archsim-models", "domains", "archs", "methods"])
def test_one_idiom(list_x, get_x, name, typo, hint, error):
    names = list_x()
    assert name in names and len(set(names)) == len(names)
    assert list_x(name) == [name]
    assert list_x(name.upper()) == [name]  # patterns are case-insensitive
    assert list_x("no-such-*") == []
    assert get_x(name) is not None
    with pytest.raises(error) as info:
        get_x(typo)
    assert isinstance(info.value, LookupError) and isinstance(info.value, ValueError)
    assert hint in info.value.suggestions and "did you mean" in str(info.value) and info.value.exit_code == 2


def test_archsim_models_resolve_with_did_you_mean():
    with pytest.raises(UnknownNameError, match="did you mean .*vgg16"):
        archsim.get_model("tv:vgg61")
    assert archsim.list_models("archsim:*") == [f"archsim:{n}" for n in OWN_MODELS.list()]


def test_register_x_name_defaults_to_the_function_name():
    @neurn.register_method(description="test only")
    def halfway_erm(model, x, y, gen, cfg):
        return torch.nn.functional.cross_entropy(model(x), y)

    try:
        assert get_method("halfway_erm").description == "test only"
        with pytest.raises(ValueError, match="registered twice"):
            neurn.register_method(halfway_erm)
    finally:
        neurn.bench.methods.METHODS.remove("halfway_erm")
    assert "halfway_erm" not in list_methods()


@pytest.mark.parametrize("name", list_archs())
def test_every_arch_builds_32x32_to_10_logits(name):
    torch.manual_seed(0)
    with torch.no_grad():
        out = create_arch(name).eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_entry_resolves(name):
    entries = get_preset(name)
    assert entries and len({e.label for e in entries}) == len(entries)
    for e in entries:
        assert archsim.get_model(e.model).qualified == e.model


@pytest.mark.parametrize("name", OWN_MODELS.list())
def test_every_own_model_traces_in_execution_order(name):
    seq = archsim.extract(f"archsim:{name}", cache=True)
    assert len(seq) > 10 and seq.order == "execution"


@pytest.mark.parametrize("name", list_domains())
def test_every_domain_is_described(name):
    info = get_domain(name)
    assert info.name == name and info.splits.get("test", 0) > 0 and info.source
    assert info.user_supplied == bool(info.files)

"""Extractor: golden token strings, execution order, profiles, inputs and failure modes."""
from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from archsim.errors import ModelLoadError, UnknownModelError
from archsim.tracing import extract, token_name
from archsim.tokens import LayerSeq, apply_profile, letters

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "golden"))
from regenerate import GOLDEN, extract_all, golden_path, render  # noqa: E402

GOLDEN_MODELS = list(dict.fromkeys(m for m, _ in GOLDEN))


@pytest.mark.parametrize("model", GOLDEN_MODELS)
def test_golden_tokens(model):
    seqs = extract_all(model)  # fresh, not cached: a tokenizer change must show here
    for profile in (p for m, p in GOLDEN if m == model):
        expected = golden_path(model, profile).read_text(encoding="utf-8")
        got = render(seqs[profile])
        assert got == expected, f"tokens of {model} ({profile}) changed; run `make golden` and review the diff"


def test_extract_and_trace_agree():
    seqs = extract_all("resnet18")
    for profile in ("torch", "keras-like", "ops"):
        assert extract("resnet18", profile=profile) == seqs[profile]


def test_paper_facts():
    assert str(extract("vgg11")) == "CRMCRMCRCRMCRCRMCRCRMALRDLRDL"
    assert str(extract("vgg16", profile="keras-like")) == "CCMCCMCCCMCCCMCCCMLLL"
    assert str(extract("tv:vgg19", profile="keras-like")) == "CCMCCMCCCCMCCCCMCCCCMLLL"
    # the real Keras lists read the paper's strings too (shipped sequences: no Keras needed)
    assert str(extract("keras:VGG16", profile="keras")) == "CCMCCMCCCMCCCMCCCMLLL"
    assert str(extract("keras:VGG19", profile="keras")) == "CCMCCMCCCCMCCCCMCCCCMLLL"
    c = extract("resnet50").counts()
    assert c["Conv2d"] == 53 and c["ReLU"] == 49  # ReLU is one module called 3× per block


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(3, 2)
        self.unused = nn.Dropout()

    def forward(self, x):
        for _ in range(3):
            x = self.act(self.conv(x))
        return self.head(x.mean((2, 3)))


def test_execution_order_repeats_reused_modules_and_skips_unused():
    seq = extract(Reused())
    assert seq.tokens == ("Conv2d", "ReLU") * 3 + ("Linear",)
    assert seq.paths[:2] == ("conv", "act") and seq.order == "execution"
    assert seq.source == "custom" and seq.name == "Reused"


def test_user_model_is_left_untouched():
    model = Reused().train()
    before = model.conv.weight.detach().clone()
    extract(model, input_size=16)
    assert model.conv.weight.device.type == "cpu" and torch.equal(model.conv.weight, before)
    assert model.training


class NeedsValues(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if x.sum().item() > 0:  # data-dependent: impossible on the meta device
            x = x * 2
        return self.fc(self.conv(x).mean((2, 3)))


def test_meta_failure_falls_back_to_definition_order_with_warning():
    with pytest.warns(RuntimeWarning, match="definition order"):
        seq = extract(NeedsValues())
    assert seq.order == "definition" and seq.tokens == ("Conv2d", "Linear")
    assert seq.warnings and "meta" in seq.warnings[0]


def test_input_size_defaults():
    assert extract("inception_v3").input_size == (3, 299, 299)
    assert extract("vgg11").input_size == (3, 224, 224)
    assert extract("timm:resnet18").input_size == (3, 224, 224)
    assert extract(Reused(), input_size=32).input_size == (3, 32, 32)


def test_timm_norm_act_layers_are_tokens():
    seq = extract("timm:efficientnet_b0")
    assert seq.source == "timm" and seq.counts()["BatchNorm2d"] > 40  # BatchNormAct2d is a BatchNorm2d


def test_keras_profile_rules():
    toks = ["Conv2d", "ReLU", "Dropout", "Conv2d", "Identity", "MaxPool2d", "AdaptiveAvgPool2d",
            "Flatten", "Linear", "ReLU", "DropPath", "Linear"]
    kept, paths = apply_profile(toks, [str(i) for i in range(len(toks))], "keras-like")
    assert kept == ("Conv2d", "Conv2d", "MaxPool2d", "Linear", "Linear")
    assert paths == ("0", "3", "5", "8", "11")
    # a pooling layer that does not feed only the classifier stays
    kept, _ = apply_profile(["Conv2d", "AdaptiveAvgPool2d", "Conv2d", "Linear"], ["a", "b", "c", "d"], "keras-like")
    assert kept == ("Conv2d", "AdaptiveAvgPool2d", "Conv2d", "Linear")
    with pytest.raises(ValueError, match="profile"):
        apply_profile(toks, toks, "caffe")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownModelError) as err:
        extract("vgg17")
    assert "did you mean" in str(err.value) and "vgg1" in str(err.value)


def test_factory_file(tmp_path):
    f = tmp_path / "mynet.py"
    f.write_text(textwrap.dedent("""
        import torch.nn as nn
        def build():
            return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
        def broken():
            raise RuntimeError("no GPU here")
    """))
    seq = extract(f"{f}:build", input_size=16)
    assert str(seq) == "CRL" and seq.name == "build"  # Flatten only reshapes: never a layer
    with pytest.raises(ModelLoadError, match="no GPU here"):
        extract(f"{f}:broken")
    with pytest.raises(ModelLoadError, match="no attribute"):
        extract(f"{f}:missing")
    bad = tmp_path / "bad.py"
    bad.write_text("import does_not_exist_anywhere\n")
    with pytest.raises(ModelLoadError, match="bad.py.*ModuleNotFoundError"):
        extract(f"{bad}:build")
    with pytest.raises(ModelLoadError, match="no such file"):
        extract(f"{tmp_path}/nope.py:build")


def test_package_module_factory():
    seq = extract("torchvision.models:alexnet")
    assert seq.tokens[0] == "Conv2d" and seq.source == "custom"


def test_token_names_fold_subclasses_onto_torch_layers():
    class MyConv(nn.Conv2d):
        pass
    assert token_name(MyConv(1, 1, 1)) == "Conv2d"
    assert token_name(nn.SiLU()) == "SiLU"


def test_letters_are_unique_and_roundtrip():
    names = ["Conv2d", "ReLU", "FancyBlockA", "FancyBlockB", "Conv2d"]
    s = letters(names)
    assert s[0] == "C" and s[1] == "R" and s[2] != s[3] and len(s) == 5
    assert LayerSeq.from_letters(s).tokens == tuple(names)

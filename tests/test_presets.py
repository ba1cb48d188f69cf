"""Presets: the paper's 44 entries (order, profiles, resolution, execution-order extraction) and torchvision."""
from __future__ import annotations

import pytest

import archsim
from archsim.errors import ArchsimError
from archsim.tracing import extract
from archsim.figures import PAPER_TOKENS
from archsim.presets import get_preset as preset, list_presets, markdown_table
from archsim.models import get_model as resolve

FIGURE_ORDER = [
    "mobilenet", "mobilenetv2", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2",
    "xception", "inceptionv3", "inceptionResnetv2", "vgg16", "vgg19", "vgg11", "densenet121", "densenet169",
    "densenet201", "nasnetMobile", "nasnetLarge", *(f"efficientNetb{i}" for i in range(8)), "squeezenet",
    "shufflenet", "wide resnet", "googlenet", "inception_V3", "resnet_ssl_facebook", "proxyless_nas",
    "fcn_resnet101", "ibn", "u-net", "resnest", "ghostnet", "resnext", "midas", "deeplabv3", "vit", "CORnet",
]
PAPER44 = preset("paper44")


def test_paper44_labels_in_figure_order():
    assert [e.label for e in PAPER44] == FIGURE_ORDER


def test_paper44_profiles_follow_the_paper():
    # The first 19 labels came from Keras applications, except vgg11, and so did efficientNetb0-b7
    # (camel-case labels: Keras's EfficientNetB0 names); the rest from PyTorch.
    for i, e in enumerate(PAPER44):
        keras = (i < 19 and e.label != "vgg11") or e.label.startswith("efficientNetb")
        assert e.profile == ("keras" if keras else "torch"), e.label
        assert e.source == ("keras" if keras else e.source) and (e.source == "keras") == keras, e.label


def test_paper44_torch_keeps_the_pytorch_mapping():
    old = preset("paper44-torch")
    assert [e.label for e in old] == FIGURE_ORDER
    assert all(e.source != "keras" and e.profile in ("torch", "keras-like") for e in old)
    assert sum(e.profile == "keras-like" for e in old) == 18


def test_every_entry_resolves_to_its_source():
    for e in PAPER44:
        spec = resolve(e.model)
        assert spec.source == e.source, e.label
    defined_here = {e.label for e in PAPER44 if e.source == "archsim"}
    assert defined_here == {"proxyless_nas", "ibn", "u-net", "midas", "CORnet"}
    assert all(e.note for e in PAPER44 if e.source == "archsim")


@pytest.mark.parametrize("entry", PAPER44, ids=[e.label for e in PAPER44])
def test_every_entry_extracts_in_execution_order(entry):
    seq = extract(entry.model, profile=entry.profile, cache=True)
    assert seq.order == ("graph" if entry.source == "keras" else "execution"), seq.warnings
    assert len(seq) > 10 and seq.profile == entry.profile


def test_vgg_entries_give_the_papers_strings():
    by = {e.label: e for e in PAPER44}
    for label, letters in PAPER_TOKENS.items():
        e = by[label.lower()]
        assert str(extract(e.model, profile=e.profile, cache=True)) == letters


def test_torchvision_preset_is_every_classifier():
    import torchvision.models as tvm
    names = [e.label for e in preset("torchvision")]
    assert names == sorted(tvm.list_models(module=tvm))
    assert {"resnet50", "vit_b_16", "efficientnet_b0"} <= set(names)
    assert not {"fcn_resnet50", "fasterrcnn_resnet50_fpn", "r3d_18"} & set(names)
    assert all(e.model == f"tv:{e.label}" and e.profile == "torch" for e in preset("torchvision"))


def test_registry_and_errors():
    assert {"paper44", "paper44-torch", "torchvision"} <= set(list_presets())
    assert archsim.get_preset("paper44") == PAPER44
    with pytest.raises(ArchsimError, match="unknown preset .paper45.; did you mean paper44"):
        preset("paper45")


def test_markdown_table_has_a_row_per_entry():
    rows = [r for r in markdown_table().splitlines() if r.startswith("| ") and r[2].isdigit()]
    assert len(rows) == 44 and "archsim:cornet_s" in rows[-1]

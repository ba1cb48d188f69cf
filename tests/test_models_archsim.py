"""archsim's own architectures: registry, meta-device forward, and structure from their papers."""
from __future__ import annotations

import pytest
import torch

from archsim.tracing import build, extract
from archsim.models.registry import OWN_MODELS
list_registered = OWN_MODELS.list
from archsim.models import get_model as resolve

OURS = ["cornet_s", "midas_v21", "nasnet_a_mobile", "proxylessnas_mobile", "resnet50_ibn_a", "unet"]


def _out_shape(name):
    spec = resolve(f"archsim:{name}")
    model = build(spec).eval()
    with torch.no_grad():
        return tuple(model(torch.zeros((1, *spec.input_size), device="meta")).shape)


def test_registered_and_resolvable_by_bare_name():
    assert set(OURS) <= set(list_registered())
    for name in OURS:
        assert resolve(name).source == "archsim"


@pytest.mark.parametrize("name", OURS)
def test_extracts_in_execution_order(name):
    seq = extract(f"archsim:{name}", cache=True)
    assert seq.order == "execution" and seq.source == "archsim" and not seq.warnings


def test_output_shapes_follow_the_papers():
    assert _out_shape("unet") == (1, 2, 388, 388)  # 572×572 in, unpadded convs: 388×388 map
    assert _out_shape("midas_v21") == (1, 384, 384)
    for name in ("cornet_s", "nasnet_a_mobile", "proxylessnas_mobile", "resnet50_ibn_a"):
        assert _out_shape(name) == (1, 1000)


def test_cornet_s_recurrence_repeats_layers():
    seq = extract("archsim:cornet_s", cache=True)
    # V4's conv2 is one module run 4 times; IT's runs twice: recurrence shows up as repeats.
    assert seq.paths.count("V4.conv2") == 4 and seq.paths.count("IT.conv2") == 2
    assert seq.paths.count("V2.norm1_1") == 1


def test_unet_structure():
    c = extract("archsim:unet", cache=True).counts()
    # "In total the network has 23 convolutional layers": 18 3×3, 4 2×2 up-convolutions, one 1×1.
    assert c["Conv2d"] + c["ConvTranspose2d"] == 23
    assert (c["ConvTranspose2d"], c["MaxPool2d"], c["ReLU"]) == (4, 4, 18)


def test_ibn_a_replaces_bn1_in_stages_1_to_3():
    seq = extract("archsim:resnet50_ibn_a", cache=True)
    assert seq.counts()["InstanceNorm2d"] == 3 + 4 + 6
    assert not any(p.startswith("layer4") and "IN" in p for p in seq.paths)


def test_proxylessnas_mobile_blocks():
    c = extract("archsim:proxylessnas_mobile", cache=True).counts()
    # stem + 1 unexpanded block (2 convs) + 19 expanded blocks (3 convs) + feature mix
    assert c["Conv2d"] == 1 + 2 + 19 * 3 + 1
    assert c["ReLU6"] == 1 + 1 + 19 * 2 + 1


def test_nasnet_mobile_cells():
    model = build(resolve("archsim:nasnet_a_mobile"))
    kinds = [type(c).__name__ for c in model.cells]
    assert kinds.count("NormalCell") == 9 and kinds.count("FirstCell") == 3
    assert model.last_linear.in_features == 1056


def test_midas_decoder():
    seq = extract("archsim:midas_v21", cache=True)
    assert seq.counts()["Interpolate"] == 1
    # refinenet4 has no skip input, so its resConfUnit1 never runs
    assert not any(p.startswith("scratch.refinenet4.resConfUnit1") for p in seq.paths)
    assert any(p.startswith("scratch.refinenet3.resConfUnit1") for p in seq.paths)

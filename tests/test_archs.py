"""Architecture registry: coverage of CNN / NAS / ViT, 32x32 -> 10 logits, random init, determinism."""
from __future__ import annotations

import pytest
import torch

from neurn.bench.archs import FAMILIES, get_arch, count_params, create_arch, list_archs, register_arch


def test_registry_covers_cnn_nas_and_vit():
    names = list_archs()
    assert len(names) >= 8
    assert {"digitnet", "resnet18", "vgg11_bn", "mobilenet_v2", "mnasnet1_0", "efficientnet_b0",
            "regnetx_002", "vit_p4"} <= set(names)
    assert all(list_archs(family=f) for f in FAMILIES)
    assert list_archs(family="vit") == ["vit_p4"]
    assert list_archs("vit*") == ["vit_p4"]


@pytest.mark.parametrize("name", list_archs())
def test_every_arch_maps_32x32_to_10_logits_and_trains(name):
    torch.manual_seed(0)
    m = create_arch(name)
    x = torch.rand(2, 3, 32, 32)
    out = m(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", list_archs())
def test_batchnorm_running_statistics_settle_within_a_short_protocol(name):
    """No BatchNorm keeps TensorFlow's slow decay: torchvision MNASNet's momentum 0.0003 left 17 % of the
    initial running statistics after 6,000 iterations and the net at chance in eval mode (EfficientNet: 0.01).
    """
    from torch.nn.modules.batchnorm import _BatchNorm

    from neurn.bench.archs import BN_MOMENTUM

    bns = [b for b in create_arch(name).modules() if isinstance(b, _BatchNorm)]
    assert all(b.momentum is not None and b.momentum >= BN_MOMENTUM for b in bns), \
        sorted({b.momentum for b in bns}, key=str)


def test_mnasnet_eval_mode_matches_its_training_statistics_after_a_hundred_steps():
    """The behaviour behind the momentum: 100 training-mode passes, then the running mean of the first
    BatchNorm equals that batch's mean (0.9^100 of the initial value left; with 0.0003, 97 %)."""
    torch.manual_seed(0)
    m = create_arch("mnasnet1_0")
    bn = next(b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    x = 3 * torch.rand(4, 3, 16, 16) + 2
    seen = {}

    def keep_input_mean(mod, inp, out):  # returns None: the output is left as it is
        seen["mean"] = inp[0].mean(dim=(0, 2, 3))

    bn.register_forward_hook(keep_input_mean)
    with torch.no_grad():
        m.train()
        for _ in range(100):
            m(x)
    assert torch.allclose(bn.running_mean, seen["mean"], rtol=1e-3, atol=1e-4)


def test_digitnet_is_the_protocol_convnet():
    m = create_arch("digitnet")
    convs = [l for l in m.modules() if isinstance(l, torch.nn.Conv2d)]
    fcs = [l for l in m.modules() if isinstance(l, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(64, (5, 5)), (128, (5, 5))]
    assert [f.out_features for f in fcs] == [1024, 1024, 10]
    expected = (3 * 25 * 64 + 64) + (64 * 25 * 128 + 128) + (3200 * 1024 + 1024) + (1024 * 1024 + 1024) + 10250
    assert count_params(m) == expected


def test_random_init_is_seeded_and_not_pretrained():
    torch.manual_seed(3)
    a = create_arch("resnet18").state_dict()
    torch.manual_seed(3)
    b = create_arch("resnet18").state_dict()
    torch.manual_seed(4)
    c = create_arch("resnet18").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_unknown_and_duplicate_names_are_rejected():
    with pytest.raises(LookupError, match="unknown architecture 'resnet99'; did you mean resnet18"):
        get_arch("resnet99")
    with pytest.raises(ValueError, match="registered twice"):
        register_arch("digitnet", "cnn")(lambda n, c: torch.nn.Identity())
    with pytest.raises(ValueError, match="registered twice"):
        @register_arch
        def digitnet(n, c):
            return torch.nn.Identity()
    with pytest.raises(ValueError, match="family must be one of"):
        register_arch("x", "rnn")(lambda n, c: torch.nn.Identity())

"""Method registry: ERM, NeuRN as first layer, RandConv augmentation and its KL consistency term."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurn.layer import NeuRN
from neurn.bench.methods import get_method, list_methods, randconv_loss, random_conv, randconv_view, register_method


def _cfg(**kw):
    cfg = {"randconv_p": 0.5, "randconv_kernels": [1, 3, 5, 7], "randconv_views": 3, "randconv_lambda": 10.0}
    cfg.update(kw)
    return cfg


def test_registry_has_the_four_methods():
    assert list_methods()[:4] == ["erm", "neurn", "randconv", "neurn+randconv"]
    with pytest.raises(LookupError, match="unknown method 'rm'; did you mean erm"):
        get_method("rm")
    with pytest.raises(ValueError, match="registered twice"):
        register_method("erm")(lambda model, x, y, gen, cfg: x.sum())


def test_neurn_is_prepended_and_the_architecture_is_unchanged():
    net = torch.nn.Linear(4, 2)
    wrapped = get_method("neurn").wrap(net)
    assert isinstance(wrapped[0], NeuRN) and wrapped[1] is net
    assert sum(p.numel() for p in wrapped.parameters()) == sum(p.numel() for p in net.parameters())
    assert get_method("erm").wrap(net) is net
    assert isinstance(get_method("neurn+randconv").wrap(torch.nn.Identity())[0], NeuRN)


def test_random_conv_draws_all_kernel_sizes_reproducibly():
    x = torch.rand(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    outs = [random_conv(x, g) for _ in range(40)]
    assert all(o.shape == x.shape for o in outs)
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(outs[0], random_conv(x, g2))
    # A 1x1 kernel mixes channels only: spatially flat input stays flat; larger kernels do not at the border.
    flat = torch.ones(1, 3, 8, 8)
    sizes = set()
    g3 = torch.Generator().manual_seed(1)
    for _ in range(60):
        y = random_conv(flat, g3)
        interior = y[..., 3:5, 3:5]
        border = (y[..., 0, 0] - interior[..., 0, 0]).abs().max()
        sizes.add(bool(border < 1e-6))
    assert sizes == {True, False}


def test_randconv_view_probability():
    x = torch.rand(4, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert randconv_view(x, g, _cfg(randconv_p=0.0)) is x
    assert not torch.equal(randconv_view(x, g, _cfg(randconv_p=1.0)), x)
    changed = sum(randconv_view(x, g, _cfg()) is not x for _ in range(400))
    assert 150 < changed < 250


def test_randconv_loss_is_ce_plus_kl_consistency():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    x, y = torch.rand(5, 3, 8, 8), torch.randint(0, 10, (5,))
    g = torch.Generator().manual_seed(0)
    # No augmentation -> identical views -> zero KL -> the loss is plain CE.
    assert randconv_loss(model, x, y, g, _cfg(randconv_p=0.0)).item() == pytest.approx(F.cross_entropy(model(x), y).item())
    # With augmentation the consistency term is positive and scales with lambda.
    l0 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=1.0, randconv_lambda=0.0))
    l10 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=1.0, randconv_lambda=10.0))
    l20 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=1.0, randconv_lambda=20.0))
    assert l10.item() > l0.item()
    assert (l20 - l0).item() == pytest.approx(2 * (l10 - l0).item(), rel=1e-4)
    l10.backward()
    assert model[1].weight.grad is not None

"""Method registry: ERM, NeuRN as first layer, RandConv augmentation and its KL consistency term."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurn.layer import NeuRN
from neurn.bench.methods import (_randconv_settings, get_method, list_methods, randconv_consistency, randconv_loss,
                                 random_conv, random_conv_weight, randconv_view, register_method)
from neurn.bench.protocol import default_protocol
from neurn.errors import InvalidArgument


def _cfg(**kw):
    cfg = {"randconv_p": 0.5, "randconv_kernels": [1, 3, 5, 7], "randconv_views": 3, "randconv_lambda": 5.0,
           "randconv_mix": False}
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


def test_randconv_loss_is_ce_plus_kl_consistency():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    x, y = torch.rand(5, 3, 8, 8), torch.randint(0, 10, (5,))
    g = torch.Generator().manual_seed(0)
    # No augmentation (p = 1 keeps the image) -> identical views -> zero KL -> the loss is plain CE.
    assert randconv_loss(model, x, y, g, _cfg(randconv_p=1.0)).item() == pytest.approx(F.cross_entropy(model(x), y).item())
    # With augmentation the consistency term is positive and scales with lambda.
    l0 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=0.0, randconv_lambda=0.0))
    l10 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=0.0, randconv_lambda=10.0))
    l20 = randconv_loss(model, x, y, torch.Generator().manual_seed(1), _cfg(randconv_p=0.0, randconv_lambda=20.0))
    assert l10.item() > l0.item()
    assert (l20 - l0).item() == pytest.approx(2 * (l10 - l0).item(), rel=1e-4)
    l10.backward()
    assert model[1].weight.grad is not None


# --- RandConv element by element (docs/benchmark.md "RandConv: element by element") -----------------


def test_randconv_kernel_size_uniform_per_view_shared_by_the_batch():
    g = torch.Generator().manual_seed(0)
    ks = [random_conv_weight(3, g).shape for _ in range(400)]
    assert all(s[:2] == (3, 3) and s[2] == s[3] for s in ks)
    counts = {k: sum(s[2] == k for s in ks) for k in (1, 3, 5, 7)}
    assert all(70 < c < 130 for c in counts.values()), counts
    # One filter for the whole batch: identical images get identical outputs, whatever k was drawn.
    x = torch.rand(1, 3, 8, 8).repeat(4, 1, 1, 1)
    for _ in range(8):
        out = random_conv(x, g)
        assert torch.equal(out[0], out[3])


def test_randconv_weights_are_normal_with_std_one_over_sqrt_fan_in():
    g = torch.Generator().manual_seed(0)
    for k in (1, 7):
        w = torch.cat([random_conv_weight(3, g, (k,)).flatten() for _ in range(2000 // k)])
        std = 1 / (3 * k * k) ** 0.5  # kaiming_normal_(nonlinearity='conv2d'): gain 1, not the ReLU sqrt(2)
        assert w.std().item() == pytest.approx(std, rel=0.04)
        assert abs(w.mean().item()) < 0.05 * std


def test_random_conv_acts_on_normalised_pixels_without_bias_or_clamping():
    g = torch.Generator().manual_seed(0)
    w = random_conv_weight(3, g, (3,))
    x = torch.rand(2, 3, 8, 8)
    # The authors convolve (x - 0.5) / 0.5; we map back to the [0, 1] convention of every other method.
    expected = F.conv2d(2 * x - 1, w, padding=1) * 0.5 + 0.5
    assert torch.allclose(random_conv(x, g, weight=w), expected, atol=1e-6)
    # No bias: mid-grey (0 after normalisation) stays mid-grey; black does not stay black.
    assert torch.allclose(random_conv(torch.full((1, 3, 8, 8), 0.5), g, weight=w), torch.tensor(0.5))
    w1 = random_conv_weight(3, torch.Generator().manual_seed(3), (1,))
    black = random_conv(torch.zeros(1, 3, 4, 4), g, weight=w1)
    assert torch.allclose(black[0, :, 0, 0], 0.5 - 0.5 * w1.sum(dim=(1, 2, 3)), atol=1e-6)
    # Not clamped: some outputs leave [0, 1].
    outs = torch.cat([random_conv(x, g).flatten() for _ in range(20)])
    assert outs.min() < 0 or outs.max() > 1


def test_randconv_p_is_the_probability_of_keeping_the_image():
    x = torch.rand(4, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert randconv_view(x, g, _cfg(randconv_p=1.0)) is x  # p = the authors' identity_prob
    assert all(randconv_view(x, g, _cfg(randconv_p=0.0)) is not x for _ in range(50))
    kept = sum(randconv_view(x, g, _cfg()) is x for _ in range(400))
    assert 150 < kept < 250


def test_randconv_mix_blends_with_uniform_alpha_per_view():
    x = torch.rand(2, 3, 8, 8)
    alphas = []
    for seed in range(40):
        out = randconv_view(x, torch.Generator().manual_seed(seed), _cfg(randconv_p=0.0, randconv_mix=True))
        # Replay the same draws: keep-test, filter, then alpha ~ U(0, 1).
        g = torch.Generator().manual_seed(seed)
        torch.rand((), generator=g)
        conv = random_conv(x, g)
        a = float(torch.rand((), generator=g))
        assert torch.allclose(out, a * conv + (1 - a) * x, atol=1e-6)
        alphas.append(a)
    assert min(alphas) < 0.15 and max(alphas) > 0.85
    # Plain RC_img (the default) returns the convolution itself.
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.rand((), generator=g2)
    assert torch.equal(randconv_view(x, g1, _cfg(randconv_p=0.0)), random_conv(x, g2))


def _authors_kl(logits):
    """The authors' form, written out: kl_div(log(clamp(mean p, 1e-7)), p_v, 'batchmean') averaged over views."""
    ps = [F.softmax(z, dim=1) for z in logits]
    log_mix = torch.clamp(sum(ps) / len(ps), 1e-7, 1).log()
    return sum(F.kl_div(log_mix, p, reduction="batchmean") for p in ps) / len(ps)


def test_randconv_consistency_is_mean_kl_to_the_mixture():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(6, 10, generator=g) * 3 for _ in range(3)]
    assert randconv_consistency(logits).item() == pytest.approx(_authors_kl(logits).item(), rel=1e-5)
    same = torch.randn(6, 10, generator=g)
    assert randconv_consistency([same, same, same]).item() == pytest.approx(0.0, abs=1e-7)


def test_randconv_loss_is_ce_on_first_view_plus_lambda_kl():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10))
    x, y = torch.rand(5, 3, 8, 8), torch.randint(0, 10, (5,))
    cfg = _cfg(randconv_p=0.0, randconv_lambda=5.0)
    loss = randconv_loss(model, x, y, torch.Generator().manual_seed(2), cfg)
    g = torch.Generator().manual_seed(2)
    logits = [model(randconv_view(x, g, cfg)) for _ in range(3)]
    expected = F.cross_entropy(logits[0], y) + 5.0 * _authors_kl(logits)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_randconv_views_are_separate_forwards_of_the_batch():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                                torch.nn.LazyLinear(10))
    sizes = []
    model[0].register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    x, y = torch.rand(5, 3, 8, 8), torch.randint(0, 10, (5,))
    randconv_loss(model, x, y, torch.Generator().manual_seed(0), _cfg(randconv_views=3))
    assert sizes == [5, 5, 5]  # BatchNorm normalises each view (one filter) on its own, as the authors'


def test_default_protocol_randconv_is_the_authors_rc_img_digits_setting():
    cfg = default_protocol()
    assert (cfg["randconv_p"], cfg["randconv_kernels"], cfg["randconv_views"], cfg["randconv_lambda"],
            cfg["randconv_mix"]) == (0.5, [1, 3, 5, 7], 3, 5.0, False)
    assert _randconv_settings({}) == _randconv_settings(cfg)  # the loss's fallbacks are the protocol's


@pytest.mark.parametrize("field, value, match", [
    ("randconv_kernels", [2, 3], "odd sizes"), ("randconv_kernels", [], "odd sizes"),
    ("randconv_p", 1.5, r"in \[0, 1\]"), ("randconv_views", 0, ">= 1"), ("randconv_lambda", -1.0, ">= 0"),
])
def test_randconv_settings_are_checked(field, value, match):
    with pytest.raises(InvalidArgument, match=match):
        randconv_view(torch.rand(1, 3, 4, 4), torch.Generator(), _cfg(**{field: value}))


def test_ablation_variants_build_the_layer_they_name():
    """Each NeuRN ablation method wraps the net in a NeuRN with its window and padding; `neurn` is k=3/zeros."""
    from neurn.bench.methods import ABLATION_METHODS, neurn_variant
    from neurn.bench.protocol import ABLATION_METHODS as PRESET_ABLATION
    from neurn.layer import NeuRN

    assert ABLATION_METHODS == PRESET_ABLATION
    for k in (3, 5, 7):
        for pad in ("zeros", "reflect"):
            wrapped = get_method(neurn_variant(k, pad)).wrap(torch.nn.Identity())
            layer = wrapped[0]
            assert isinstance(layer, NeuRN) and (layer.kernel_size, layer.padding) == (k, pad)
    assert get_method("neurn-k7-reflect").loss is get_method("erm").loss


def test_methods_all_means_the_four_paper_methods(tmp_path, monkeypatch):
    """`--methods all` stays the paper's comparison when ablation variants are registered."""
    from click.testing import CliRunner

    import neurn.bench.sweep
    from neurn.cli import cli

    seen = {}
    monkeypatch.setattr(neurn.bench.sweep, "run_sweep", lambda archs, methods, *a, **k: seen.setdefault("m", methods) and [])
    res = CliRunner().invoke(cli, ["bench", "--methods", "all", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert seen["m"] == "erm,neurn,randconv,neurn+randconv"
    assert "neurn-k5" in list_methods()

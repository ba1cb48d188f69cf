"""Method registry for the NeuRN benchmark: how a model is wrapped and how one training step's loss is computed.

A method is a ``Method(wrap, loss)`` pair:

* ``wrap(model) -> nn.Module`` changes the network (``neurn`` prepends the NeuRN layer);
* ``loss(model, x, y, gen, cfg) -> Tensor`` computes the training loss of one batch; ``gen`` is the
  run's own ``torch.Generator`` so random augmentations are reproducible per seed.

The built-in methods also give their loss in two stages, ``views(x, gen, cfg) -> [inputs]`` (every random
draw of the step) and ``objective([logits per view], y, cfg) -> Tensor``, with
``loss = objective([model(v) for v in views(x, gen, cfg)], y, cfg)``. That split lets ``neurn bench --group``
train several runs as one batched model (:mod:`neurn.bench.grouped`); a method registered with a loss only
trains on its own.

Register your own by decorating its loss: ``@register_method(wrap=..., description=...)`` on
``def mymethod(model, x, y, gen, cfg)`` (the name defaults to the function's).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from archsim._registry import Registry
from neurn.bench.protocol import ABLATION_METHODS, ABLATION_VARIANTS, neurn_variant  # noqa: F401 (re-exported)
from neurn.errors import InvalidArgument, UnknownName

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator, dict[str, Any]], torch.Tensor]
WrapFn = Callable[[nn.Module], nn.Module]
ViewsFn = Callable[[torch.Tensor, torch.Generator, dict[str, Any]], list[torch.Tensor]]
ObjectiveFn = Callable[[list[torch.Tensor], torch.Tensor, dict[str, Any]], torch.Tensor]


@dataclass(frozen=True)
class Method:
    """A registered training method: a model wrapper and a per-batch loss."""

    name: str
    wrap: WrapFn
    loss: LossFn
    description: str = ""
    views: ViewsFn | None = None  # with ``objective``: the loss in two stages (see the module docstring)
    objective: ObjectiveFn | None = None


def _identity(model: nn.Module) -> nn.Module:
    return model


def _method(name: str, loss: LossFn, wrap: WrapFn | None = None, description: str = "",
            views: ViewsFn | None = None, objective: ObjectiveFn | None = None) -> Method:
    if (views is None) != (objective is None):
        raise ValueError(f"method {name!r}: give both views and objective, or neither")
    return Method(name, wrap or _identity, loss, description or (loss.__doc__ or "").strip().split("\n")[0],
                  views, objective)


METHODS: Registry[Method] = Registry("method", UnknownName)
register_method = METHODS.decorator(_method)
register_method.__doc__ = """Register a method by decorating its per-batch loss (name defaults to the function's).

    ``wrap`` (default: identity) changes the network, e.g. ``with_neurn``.
    """


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching ``pattern``, in registration order.

    >>> list_methods()[:4]
    ['erm', 'neurn', 'randconv', 'neurn+randconv']
    >>> list_methods("neurn-k5*")
    ['neurn-k5', 'neurn-k5-reflect']
    """
    return METHODS.list(pattern)


def get_method(name: str) -> Method:
    """One method; unknown names raise ``UnknownName`` with did-you-mean."""
    return METHODS.get(name)


def erm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
             cfg: dict[str, Any]) -> torch.Tensor:
    """Empirical risk minimisation: cross-entropy on the source batch."""
    return erm_objective([model(v) for v in erm_views(x, gen, cfg)], y, cfg)


def erm_views(x: torch.Tensor, gen: torch.Generator, cfg: dict[str, Any]) -> list[torch.Tensor]:
    """ERM's one view: the batch itself (no random draw)."""
    return [x]


def erm_objective(logits: list[torch.Tensor], y: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Cross-entropy of the one view's logits."""
    return F.cross_entropy(logits[0], y)


# RandConv (Xu et al., ICLR 2021) as in the authors' digits code (github.com/wildphoton/RandConv,
# exp_mnist10k.sh); docs/benchmark.md "RandConv: element by element" maps every element to a test.
# The authors convolve images normalised with mean 0.5 / std 0.5 (pixels in [-1, 1]); ours are in [0, 1],
# so the random convolution runs in that normalised space and the result is mapped back.
RANDCONV_MEAN = 0.5
RANDCONV_STD = 0.5


def random_conv_weight(channels: int, gen: torch.Generator,
                       kernel_sizes: tuple[int, ...] = (1, 3, 5, 7)) -> torch.Tensor:
    """One RandConv filter bank: shape (C, C, k, k), k uniform over ``kernel_sizes``, w ~ N(0, 1/(C*k*k)).

    This is ``kaiming_normal_(nonlinearity='conv2d')`` (gain 1, fan_in = C*k*k), the authors' default.
    """
    k = int(kernel_sizes[int(torch.randint(len(kernel_sizes), (1,), generator=gen))])
    return torch.randn(channels, channels, k, k, generator=gen) / (channels * k * k) ** 0.5


def random_conv(x: torch.Tensor, gen: torch.Generator, kernel_sizes: tuple[int, ...] = (1, 3, 5, 7),
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """One RandConv draw applied to a [0, 1] batch: one kernel for the whole batch, no bias, no clamping.

    Args:
        x: images (N, C, H, W) in [0, 1].
        gen: the generator the filter is drawn from (unused when ``weight`` is given).
        kernel_sizes: odd kernel sizes to draw from, uniformly.
        weight: a filter bank from ``random_conv_weight`` to use instead of drawing one.

    Returns:
        The convolved batch, same shape; values may leave [0, 1] (the authors do not clamp).
    """
    w = random_conv_weight(x.shape[1], gen, kernel_sizes) if weight is None else weight
    k = w.shape[-1]
    z = (x - RANDCONV_MEAN) / RANDCONV_STD
    # non_blocking: the copy of a small CPU tensor then does not wait for the GPU's queued work.
    out = F.conv2d(z, w.to(x.device, x.dtype, non_blocking=True), padding=k // 2)
    return out * RANDCONV_STD + RANDCONV_MEAN


def _randconv_settings(cfg: dict[str, Any]) -> tuple[float, tuple[int, ...], int, float, bool]:
    """(p, kernel sizes, views, lambda, mix) from the protocol dict, checked once per batch (cheap)."""
    p = float(cfg.get("randconv_p", 0.5))
    kernels = tuple(int(k) for k in cfg.get("randconv_kernels", (1, 3, 5, 7)))
    views = int(cfg.get("randconv_views", 3))
    lam = float(cfg.get("randconv_lambda", 5.0))
    mix = bool(cfg.get("randconv_mix", False))
    if not 0.0 <= p <= 1.0:
        raise InvalidArgument(f"randconv_p must be in [0, 1] (the probability of keeping the image), got {p}")
    if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
        raise InvalidArgument(f"randconv_kernels must be odd sizes >= 1 (same-size output), got {list(kernels)}")
    if views < 1:
        raise InvalidArgument(f"randconv_views must be >= 1, got {views}")
    if not lam >= 0.0:
        raise InvalidArgument(f"randconv_lambda must be >= 0, got {lam}")
    return p, kernels, views, lam, mix


def randconv_view(x: torch.Tensor, gen: torch.Generator, cfg: dict[str, Any]) -> torch.Tensor:
    """One augmented view of the batch, drawn as the authors' ``RandConvModule`` does per ``randomize()``.

    With probability ``randconv_p`` the batch is returned unchanged (the authors' ``identity_prob``);
    otherwise a fresh random convolution (one kernel size and filter for the whole batch) is applied and,
    when ``randconv_mix`` is set, mixed with the input: ``a * conv(x) + (1 - a) * x``, ``a ~ U(0, 1)``.
    """
    p, kernels, _, _, mix = _randconv_settings(cfg)
    if float(torch.rand((), generator=gen)) < p:
        return x
    out = random_conv(x, gen, kernels)
    if mix:
        a = float(torch.rand((), generator=gen))
        out = a * out + (1.0 - a) * x
    return out


def randconv_consistency(logits: list[torch.Tensor]) -> torch.Tensor:
    """Mean over views of KL(p_v || p_mean), each summed over classes and averaged over the batch.

    The authors' term is ``sum_v kl_div(log(clamp(p_mean, 1e-7)), p_v, 'batchmean') / V``; the mixture's
    log is computed exactly here (logsumexp) instead of through the 1e-7 floor.
    """
    logp = torch.stack([F.log_softmax(z, dim=1) for z in logits])  # (V, N, classes)
    log_mean = torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(len(logits)), dtype=logp.dtype))
    kl = (logp.exp() * (logp - log_mean.unsqueeze(0))).sum(-1)  # (V, N)
    return kl.mean()


def randconv_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                  cfg: dict[str, Any]) -> torch.Tensor:
    """RandConv (Xu et al. ICLR 2021): CE on the first view + lambda * KL(view || mean of the views)."""
    # One forward per view, as the authors do: BatchNorm normalises each view (one filter) on its own. Drawing
    # every view before the first forward draws the same numbers: only the augmentation generator is used.
    return randconv_objective([model(v) for v in randconv_views(x, gen, cfg)], y, cfg)


def randconv_views(x: torch.Tensor, gen: torch.Generator, cfg: dict[str, Any]) -> list[torch.Tensor]:
    """``randconv_views`` views of the batch, each drawn by :func:`randconv_view`, in order."""
    return [randconv_view(x, gen, cfg) for _ in range(_randconv_settings(cfg)[2])]


def randconv_objective(logits: list[torch.Tensor], y: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """CE on the first view's logits + lambda * :func:`randconv_consistency` over all the views."""
    _, _, views, lam, _ = _randconv_settings(cfg)
    # The classification loss uses the first view only (the authors' trainer); the others enter via KL.
    ce = F.cross_entropy(logits[0], y)
    if views < 2 or lam == 0:
        return ce
    return ce + lam * randconv_consistency(logits)


def with_neurn(model: nn.Module, kernel_size: int = 3, padding: str = "zeros") -> nn.Module:
    """NeuRN (k×k window, ``padding``) as the first layer; the architecture is otherwise unchanged."""
    from neurn.layer import NeuRN

    return nn.Sequential(NeuRN(kernel_size=kernel_size, padding=padding), model)




_ERM = {"views": erm_views, "objective": erm_objective}
_RANDCONV = {"views": randconv_views, "objective": randconv_objective}
register_method("erm", description="baseline: cross-entropy on the source domain", **_ERM)(erm_loss)
register_method("neurn", wrap=with_neurn, description="NeuRN as the first layer", **_ERM)(erm_loss)
register_method("randconv", description="RandConv (Xu et al. 2021): random convolutions + KL consistency, "
                "as in the authors' digits code", **_RANDCONV)(randconv_loss)
register_method("neurn+randconv", wrap=with_neurn,
                description="NeuRN first layer, trained with RandConv", **_RANDCONV)(randconv_loss)
for _name, (_k, _p) in ABLATION_VARIANTS.items():
    if _name != "neurn":  # neurn itself (k=3, zeros) is registered above
        register_method(_name, wrap=partial(with_neurn, kernel_size=_k, padding=_p),
                        description=f"ablation: NeuRN with a {_k}x{_k} window, {_p} padding", **_ERM)(erm_loss)

"""Method registry for the NeuRN benchmark: how a model is wrapped and how one training step's loss is computed.

A method is a ``Method(wrap, loss)`` pair:

* ``wrap(model) -> nn.Module`` changes the network (``neurn`` prepends the NeuRN layer);
* ``loss(model, x, y, gen, cfg) -> Tensor`` computes the training loss of one batch; ``gen`` is the
  run's own ``torch.Generator`` so random augmentations are reproducible per seed.

Register your own by decorating its loss: ``@register_method(wrap=..., description=...)`` on
``def mymethod(model, x, y, gen, cfg)`` (the name defaults to the function's).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from archsim._registry import Registry
from neurn.errors import UnknownName

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator, dict[str, Any]], torch.Tensor]
WrapFn = Callable[[nn.Module], nn.Module]


@dataclass(frozen=True)
class Method:
    """A registered training method: a model wrapper and a per-batch loss."""

    name: str
    wrap: WrapFn
    loss: LossFn
    description: str = ""


def _identity(model: nn.Module) -> nn.Module:
    return model


def _method(name: str, loss: LossFn, wrap: WrapFn | None = None, description: str = "") -> Method:
    return Method(name, wrap or _identity, loss, description or (loss.__doc__ or "").strip().split("\n")[0])


METHODS: Registry[Method] = Registry("method", UnknownName)
register_method = METHODS.decorator(_method)
register_method.__doc__ = """Register a method by decorating its per-batch loss (name defaults to the function's).

    ``wrap`` (default: identity) changes the network, e.g. ``with_neurn``.
    """


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching ``pattern``, in registration order.

    >>> list_methods()
    ['erm', 'neurn', 'randconv', 'neurn+randconv']
    """
    return METHODS.list(pattern)


def get_method(name: str) -> Method:
    """One method; unknown names raise ``UnknownName`` with did-you-mean."""
    return METHODS.get(name)


def erm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
             cfg: dict[str, Any]) -> torch.Tensor:
    """Empirical risk minimisation: cross-entropy on the source batch."""
    return F.cross_entropy(model(x), y)


def random_conv(x: torch.Tensor, gen: torch.Generator, kernel_sizes: tuple[int, ...] = (1, 3, 5, 7)) -> torch.Tensor:
    """One RandConv draw: a C->C convolution with Kaiming-normal random weights and random kernel size."""
    c = x.shape[1]
    k = kernel_sizes[int(torch.randint(len(kernel_sizes), (1,), generator=gen))]
    # Kaiming normal (fan_in = C*k*k) keeps the output scale comparable to the input, as in RandConv.
    w = torch.randn(c, c, k, k, generator=gen) * (2.0 / (c * k * k)) ** 0.5
    return F.conv2d(x, w.to(x.device, x.dtype), padding=k // 2)


def randconv_view(x: torch.Tensor, gen: torch.Generator, cfg: dict[str, Any]) -> torch.Tensor:
    """The batch unchanged with probability 1-p, else passed through a fresh random convolution."""
    if float(torch.rand((), generator=gen)) >= cfg.get("randconv_p", 0.5):
        return x
    return random_conv(x, gen, tuple(cfg.get("randconv_kernels", (1, 3, 5, 7))))


def randconv_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                  cfg: dict[str, Any]) -> torch.Tensor:
    """RandConv (Xu et al. ICLR 2021): CE over randomised views + lambda * KL(view || mean of views)."""
    views = int(cfg.get("randconv_views", 3))
    lam = float(cfg.get("randconv_lambda", 10.0))
    # One forward over the stacked views: BatchNorm sees them together, and it is faster than a loop.
    xs = torch.cat([randconv_view(x, gen, cfg) for _ in range(views)])
    logits = model(xs)
    ce = F.cross_entropy(logits, y.repeat(views))
    if views < 2 or lam == 0:
        return ce
    logp = F.log_softmax(logits, dim=1).view(views, x.shape[0], -1)
    log_mean = torch.logsumexp(logp, dim=0) - torch.log(torch.tensor(float(views)))
    # sum_v KL(p_v || p_mean), averaged over views and batch: the paper's consistency term.
    kl = (logp.exp() * (logp - log_mean.unsqueeze(0))).sum(-1).mean()
    return ce + lam * kl


def with_neurn(model: nn.Module) -> nn.Module:
    """NeuRN as the first layer; the architecture is otherwise unchanged."""
    from neurn.layer import NeuRN

    return nn.Sequential(NeuRN(), model)


register_method("erm", description="baseline: cross-entropy on the source domain")(erm_loss)
register_method("neurn", wrap=with_neurn, description="NeuRN as the first layer")(erm_loss)
register_method("randconv", description="RandConv: random conv (k in {1,3,5,7}, p=0.5) + KL consistency")(randconv_loss)
register_method("neurn+randconv", wrap=with_neurn,
                description="NeuRN first layer, trained with RandConv")(randconv_loss)

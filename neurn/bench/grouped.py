"""Several runs of one architecture trained as one batched model (``neurn bench --group N``).

On a GPU, a run of the benchmark's small nets at batch 32 is bound by kernel launches, not arithmetic: each
step queues hundreds of tiny kernels. Stacking the weights of N runs (``torch.func.stack_module_state``) and
calling the net through ``torch.func.vmap`` makes every kernel do the work of N runs, so one step of the group
costs about one step of a run. The runs stay independent: each keeps its own initial weights, batch order,
augmentation draws and Adam moments (Adam is elementwise, so one Adam over the stacked weights is N Adams),
and the summed loss gives each run's weights its own gradient. What differs from training them one by one is
the order of floating-point sums (vmap turns N convolutions into one grouped convolution) and the dropout
draws (``randomness="different"`` draws them per run from one generator), as between two devices. With fp16
autocast (GPUs without bf16) the runs also share one gradient scaler, so an overflow in one run skips the
step for all of them; bf16, the sweep's AMP on current GPUs, has no scaler.

A run can join a group when its method gives its loss in two stages (``views`` and ``objective``, see
:mod:`neurn.bench.methods`) and wraps the net at most with a parameter-free first layer (NeuRN): that layer
runs per run in front of the stacked net, so erm and neurn runs, or randconv and neurn+randconv runs, share a
group. Each run's weights stay reachable as its own ``nn.Module`` (its tensors are views into the stacked
ones), so evaluation and checkpoints are exactly those of a run trained alone, and either can resume the other.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from neurn.bench.methods import Method, get_method


def split_wrap(method: Method, core: nn.Module) -> tuple[nn.Module, nn.Module | None] | None:
    """``method.wrap(core)`` as (wrapped model, parameter-free first layer or None); None if it is neither form.

    The two forms are the net itself and ``nn.Sequential(layer, net)`` where ``layer`` has no parameters and
    no buffers (``with_neurn``).
    """
    model = method.wrap(core)
    if model is core:
        return model, None
    if (isinstance(model, nn.Sequential) and len(model) == 2 and model[1] is core
            and not any(True for _ in model[0].parameters()) and not any(True for _ in model[0].buffers())):
        return model, model[0]
    return None


def group_key(method_name: str) -> tuple | None:
    """What runs of one arch must share to train in one group: their method's two loss stages; None when the
    method cannot join a group (a loss without stages, or a wrap :func:`split_wrap` does not know)."""
    method = get_method(method_name)
    if method.views is None or method.objective is None:
        return None
    with torch.device("meta"):  # the wrap's layers are built but allocate nothing
        if split_wrap(method, nn.Identity()) is None:
            return None
    return (method.views, method.objective)


class StackedNets:
    """N nets of one architecture as one set of stacked weights, called through ``vmap``.

    Args:
        models: the runs' wrapped models, on the training device, each from :func:`split_wrap`.
        cores: the nets inside them (``models[i]`` is ``cores[i]`` or ``Sequential(layer, cores[i])``).
        prefixes: each run's parameter-free first layer, or None.

    After construction every core's parameters and buffers are views of the stacked tensors: the optimizer
    updates the stacked ones, and each model reads (and evaluates, and saves) its own slice.
    """

    def __init__(self, models: Sequence[nn.Module], cores: Sequence[nn.Module],
                 prefixes: Sequence[nn.Module | None]) -> None:
        from torch.func import functional_call, stack_module_state, vmap

        self.models, self.cores, self.prefixes = list(models), list(cores), list(prefixes)
        for core in self.cores:
            core.train()
        self.params, self.buffers = stack_module_state(self.cores)
        for i, core in enumerate(self.cores):
            for name, p in core.named_parameters():
                p.data = self.params[name].data[i]
            for name, _ in core.named_buffers():
                owner, _, leaf = name.rpartition(".")
                core.get_submodule(owner)._buffers[leaf] = self.buffers[name][i]
        base = _vmap_friendly(copy.deepcopy(self.cores[0]).to("meta"))  # the structure; weights come in the call

        def call(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (params, buffers), (x,))

        self._base = base
        self._forward = vmap(call, randomness="different")

    def parameters(self) -> list[torch.Tensor]:
        """The stacked weights, in the cores' ``named_parameters`` order (what the optimizer steps)."""
        return list(self.params.values())

    def train(self) -> None:
        """Training mode for the stacked call and every run's model."""
        self._base.train()
        for model in self.models:
            model.train()

    def __call__(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits (N, batch, classes) of each run's net on its own batch ``xs[i]``, first layer included."""
        batch = torch.stack([x if pre is None else pre(x) for x, pre in zip(xs, self.prefixes)])
        return self._forward(self.params, self.buffers, batch)

    def losses(self, methods: Sequence[Method], x: torch.Tensor, y: torch.Tensor, idxs: Sequence[torch.Tensor],
               gens: Sequence[torch.Generator], cfg: dict[str, Any]) -> torch.Tensor:
        """Each run's training loss on its batch ``x[idxs[i]]``, as a tensor of N (sum it to train them all).

        Args:
            methods: each run's method (all with the same ``views`` and ``objective``).
            x, y: the source images and labels on the device.
            idxs: each run's batch indices.
            gens: each run's augmentation generator (its draws are those of the run trained alone).
            cfg: the protocol.

        Returns:
            The N losses, each ``objective`` of that run's logits on its views.
        """
        views = [m.views(x[idx], g, cfg) for m, idx, g in zip(methods, idxs, gens)]
        logits = [self([v[k] for v in views]) for k in range(len(views[0]))]  # one batched forward per view
        return torch.stack([m.objective([lg[i] for lg in logits], y[idx], cfg)
                            for i, (m, idx) in enumerate(zip(methods, idxs))])

    def member_optimizer_state(self, opt: torch.optim.Optimizer, i: int) -> dict[str, Any]:
        """Run ``i``'s slice of ``opt`` (an Adam over :meth:`parameters`) as its own Adam's ``state_dict``."""
        solo = type(opt)(self.cores[i].parameters(), **_hyper(opt))
        for p, stacked in zip(solo.param_groups[0]["params"], self.parameters()):
            if stacked in opt.state:
                solo.state[p] = {k: v.clone() if k == "step" or v.dim() == 0 else v[i].clone()
                                 for k, v in opt.state[stacked].items()}
        return solo.state_dict()

    def load_member_optimizer_state(self, opt: torch.optim.Optimizer, states: Sequence[dict[str, Any]]) -> None:
        """Fill ``opt`` (an Adam over :meth:`parameters`) from each run's own Adam ``state_dict``, in run order."""
        solos = []
        for core, state in zip(self.cores, states):
            solo = type(opt)(core.parameters(), **_hyper(opt))
            solo.load_state_dict(state)
            solos.append(solo)
        for j, stacked in enumerate(self.parameters()):
            per_run = [s.state.get(s.param_groups[0]["params"][j]) for s in solos]
            if any(st is None for st in per_run):
                continue  # a weight that never had a gradient has no state in any run
            opt.state[stacked] = {k: per_run[0][k].clone() if k == "step" or per_run[0][k].dim() == 0
                                  else torch.stack([st[k] for st in per_run]).to(stacked.device)
                                  for k in per_run[0]}


class RunwiseStochasticDepth(nn.Module):
    """torchvision's ``StochasticDepth`` with its noise drawn in the shape of a slice of the input.

    torchvision draws into a new tensor (``torch.empty(size).bernoulli_``), which under ``vmap`` belongs to no
    run, and vmap refuses to draw it per run. Drawn like the input, each run gets its own noise: the same
    distribution (keep with probability 1 - p, scaled by 1 / (1 - p)), per sample (``row``) or per batch.
    """

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop (rows of) ``x`` with probability ``p`` in training mode; the identity in eval mode."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        probe = x[(slice(None),) + (slice(0, 1),) * (x.dim() - 1)] if self.mode == "row" else \
            x.reshape(-1)[:1].reshape([1] * x.dim())
        noise = torch.empty_like(probe).bernoulli_(keep)
        return x * (noise / keep if keep > 0.0 else noise)


def _vmap_friendly(base: nn.Module) -> nn.Module:
    """``base`` computing the same function in operations vmap batches in one call.

    Every torchvision ``StochasticDepth`` becomes a :class:`RunwiseStochasticDepth`, and timm's attention
    (``fused_attn``) takes its explicit path, softmax(q k^T / sqrt(d)) v in matmuls: vmap has no batching rule
    for the fused CPU kernel and would run it once per run (with a warning).
    """
    from torchvision.ops import StochasticDepth

    for name, module in list(base.named_modules()):
        if isinstance(module, StochasticDepth):
            owner, _, leaf = name.rpartition(".")
            setattr(base.get_submodule(owner), leaf, RunwiseStochasticDepth(module.p, module.mode))
        elif isinstance(getattr(module, "fused_attn", None), bool):
            module.fused_attn = False
    return base


def _hyper(opt: torch.optim.Optimizer) -> dict[str, Any]:
    """The hyper-parameters of ``opt``'s one parameter group (to build the same optimizer over other weights)."""
    return {k: v for k, v in opt.param_groups[0].items() if k != "params"}

"""The ``ops`` profile: the tensor operations a network computes, recorded during its forward pass.

The ``torch`` profile lists leaf *modules*, so it measures how a network is written as much as
what it computes: a ReLU called as ``F.relu`` inside ``forward``, a residual ``out += identity``,
a ``torch.cat`` of Inception branches or timm's ``nn.Identity`` placeholders change the
"architecture".  The ``ops`` profile instead records every architecture-defining call at the
**torch-function level** (a ``TorchFunctionMode`` active during the same single meta-device
forward pass), wherever it happens: module or functional, and maps it onto a canonical token.

Why the torch-function level and not the dispatcher (``TorchDispatchMode``): at the function
level a call is still what the author wrote (``F.layer_norm``, ``F.scaled_dot_product_attention``,
``F.multi_head_attention_forward``), one token per call; at the dispatch level the same calls are
decomposed differently per backend and version (``native_layer_norm``, ``_efficient_attention``,
``addmm`` vs ``mm`` + ``add``), so the same architecture would not read the same.  A function that
another recorded function calls internally is not seen twice: the mode is inactive inside its
own handler.

Bookkeeping that is not architecture is skipped: views and reshapes, permutes, indexing, size and
dtype queries, ``expand``/``clone``/``contiguous``, device and dtype moves, dropout and other
eval-time no-ops, and arithmetic with a Python scalar (attention scaling, ``x / 6``); for
transformers models (``OpRecorder(integer_arithmetic=False)``) also arithmetic on integer or
boolean tensors only (index and mask building: position ids, causal masks).  Only calls
in :data:`OP_TOKENS` (plus tensor-tensor ``add``/``mul``/``matmul``) become tokens, so an unknown
function can never add noise; :data:`EXPANSIONS` rewrites fused calls into the ops they compute
(torchvision's ``multi_head_attention_forward`` = in-projection, attention, out-projection, the
same three tokens as timm's ``linear`` + ``scaled_dot_product_attention`` + ``linear``).

    >>> import torch
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    ...     def forward(self, x):
    ...         return torch.relu(self.conv(x)) + x
    >>> rec = OpRecorder(Block())
    >>> with rec:
    ...     _ = rec.model(torch.zeros(1, 3, 8, 8))
    >>> rec.tokens, rec.paths
    (['Conv2d', 'ReLU', 'Add'], ['conv', '', ''])
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

# Canonical token of each recorded function, by ``func.__name__``.  Names follow the torch.nn
# class that computes the same thing, so ``ops`` and ``torch`` sequences share their letters.
OP_TOKENS: dict[str, str] = {
    # convolutions and linear maps
    "conv1d": "Conv1d", "conv2d": "Conv2d", "conv3d": "Conv3d",
    "conv_transpose1d": "ConvTranspose1d", "conv_transpose2d": "ConvTranspose2d",
    "conv_transpose3d": "ConvTranspose3d",
    "linear": "Linear", "bilinear": "Linear", "embedding": "Embedding",
    # normalizations (batch_norm/instance_norm are named by the input's rank below)
    "batch_norm": "BatchNorm", "layer_norm": "LayerNorm", "group_norm": "GroupNorm",
    "instance_norm": "InstanceNorm", "local_response_norm": "LocalResponseNorm", "rms_norm": "RMSNorm",
    # activations, in-place or not, module or functional or tensor method
    "relu": "ReLU", "relu_": "ReLU", "relu6": "ReLU6", "gelu": "GELU", "silu": "SiLU", "silu_": "SiLU",
    "hardswish": "Hardswish", "hardswish_": "Hardswish", "hardsigmoid": "Hardsigmoid",
    "hardsigmoid_": "Hardsigmoid", "sigmoid": "Sigmoid", "sigmoid_": "Sigmoid", "tanh": "Tanh",
    "tanh_": "Tanh", "leaky_relu": "LeakyReLU", "leaky_relu_": "LeakyReLU", "elu": "ELU", "elu_": "ELU",
    "selu": "SELU", "celu": "CELU", "mish": "Mish", "softplus": "Softplus", "prelu": "PReLU", "glu": "GLU",
    "hardtanh": "Hardtanh", "hardtanh_": "Hardtanh", "softmax": "Softmax", "log_softmax": "Softmax",
    # pooling
    "max_pool1d": "MaxPool1d", "max_pool2d": "MaxPool2d", "max_pool3d": "MaxPool3d",
    "max_pool1d_with_indices": "MaxPool1d", "max_pool2d_with_indices": "MaxPool2d",
    "max_pool3d_with_indices": "MaxPool3d",
    "avg_pool1d": "AvgPool1d", "avg_pool2d": "AvgPool2d", "avg_pool3d": "AvgPool3d",
    "adaptive_avg_pool1d": "AdaptiveAvgPool1d", "adaptive_avg_pool2d": "AdaptiveAvgPool2d",
    "adaptive_avg_pool3d": "AdaptiveAvgPool3d", "adaptive_max_pool1d": "AdaptiveMaxPool1d",
    "adaptive_max_pool2d": "AdaptiveMaxPool2d", "adaptive_max_pool3d": "AdaptiveMaxPool3d",
    "lp_pool2d": "LPPool2d", "mean": "Mean",
    # joining, splitting, attention, resampling, padding
    "cat": "Cat", "concat": "Cat", "concatenate": "Cat", "stack": "Cat",
    "split": "Split", "chunk": "Split", "split_with_sizes": "Split", "tensor_split": "Split",
    "scaled_dot_product_attention": "Attention",
    "interpolate": "Upsample", "upsample": "Upsample", "upsample_nearest2d": "Upsample",
    "upsample_bilinear2d": "Upsample", "pad": "Pad",
    "pixel_shuffle": "PixelShuffle", "channel_shuffle": "ChannelShuffle",
}
# Tensor-tensor arithmetic: a token only when both operands are tensors (residual adds, gating
# multiplications, attention matmuls); with a Python number it is scaling, not architecture.
BINARY_TOKENS: dict[str, str] = {
    "add": "Add", "add_": "Add", "__add__": "Add", "__iadd__": "Add", "__radd__": "Add",
    "mul": "Mul", "mul_": "Mul", "__mul__": "Mul", "__imul__": "Mul", "__rmul__": "Mul",
    "matmul": "MatMul", "__matmul__": "MatMul", "bmm": "MatMul", "mm": "MatMul", "baddbmm": "MatMul",
}
# Fused calls rewritten into the canonical ops they compute.
EXPANSIONS: dict[str, tuple[str, ...]] = {
    "multi_head_attention_forward": ("Linear", "Attention", "Linear"),
}
_BY_RANK = {"BatchNorm": {2: "BatchNorm1d", 3: "BatchNorm1d", 4: "BatchNorm2d", 5: "BatchNorm3d"},
            "InstanceNorm": {3: "InstanceNorm1d", 4: "InstanceNorm2d", 5: "InstanceNorm3d"}}


def _name(func: Callable) -> str:
    return getattr(func, "__name__", "") or ""


def op_tokens(func: Callable, args: tuple, kwargs: dict, integer_arithmetic: bool = True) -> tuple[str, ...]:
    """The canonical tokens one torch-function call contributes (empty for bookkeeping).

    ``integer_arithmetic=False`` leaves out tensor-tensor add/mul/matmul on integer or boolean
    tensors only (index and mask building).  Off for transformers models only: timm's Gemma4
    pooler computes positions that way, and the zoo's vision sequences stay as they were.

    >>> import torch
    >>> op_tokens(torch.relu, (torch.zeros(2),), {}), op_tokens(torch.Tensor.view, (torch.zeros(2), 2), {})
    (('ReLU',), ())
    >>> x = torch.zeros(2)
    >>> op_tokens(torch.Tensor.__add__, (x, x), {}), op_tokens(torch.Tensor.__add__, (x, 1.0), {})
    (('Add',), ())
    """
    import torch
    name = _name(func)
    if name in EXPANSIONS:
        return EXPANSIONS[name]
    tok = OP_TOKENS.get(name)
    if tok is not None:
        if tok == "Mean":
            return _mean_token(args, kwargs)
        if tok == "Hardtanh" and _clip_range(args, kwargs) == (0.0, 6.0):
            return ("ReLU6",)  # nn.ReLU6 is F.hardtanh(x, 0, 6)
        if tok in _BY_RANK:
            x = args[0] if args else kwargs.get("input")
            tok = _BY_RANK[tok].get(getattr(x, "ndim", 4), f"{tok}2d")
        return (tok,)
    tok = BINARY_TOKENS.get(name)
    if tok is not None:
        operands = [a for a in list(args[:2]) + [kwargs[k] for k in ("other",) if k in kwargs]
                    if isinstance(a, torch.Tensor) and a.ndim > 0]
        # Integer and boolean arithmetic builds indices and masks (RoBERTa's position ids are a
        # cumsum times the padding mask): bookkeeping, like arange or a comparison.
        if len(operands) >= 2 and (integer_arithmetic or any(a.is_floating_point() or a.is_complex()
                                                             for a in operands)):
            return (tok,)
    return ()


def _clip_range(args: tuple, kwargs: dict) -> tuple[float, float]:
    lo = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
    hi = args[2] if len(args) > 2 else kwargs.get("max_val", 1.0)
    return float(lo), float(hi)


def _mean_token(args: tuple, kwargs: dict) -> tuple[str, ...]:
    # x.mean((2, 3)) of an N×C×H×W map is global average pooling, whichever way it is written
    # (timm's squeeze-excite vs torchvision's AdaptiveAvgPool2d(1)); other means over a dimension
    # (tokens of a transformer) stay "Mean"; a mean over every element (a loss) is not architecture.
    x = args[0] if args else kwargs.get("input")
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None:
        return ()
    dims = {d % x.ndim for d in (dim if isinstance(dim, (tuple, list)) else (dim,))} if hasattr(x, "ndim") else set()
    if getattr(x, "ndim", 0) == 4 and dims == {2, 3}:
        return ("AdaptiveAvgPool2d",)
    return ("Mean",)


def canonical_order(deps: Sequence[Sequence[int]]) -> list[int]:
    """A linearization of a dataflow graph that does not depend on the order branches were written in.

    ``deps[i]`` are the ops whose outputs op ``i`` reads (all ``< i``: recording order is
    topological).  Two implementations of one network may run parallel branches in either order
    (torchvision's RegNet computes the shortcut projection before the block, timm's after); this
    order emits, at every join, the deepest input branch first (ties: recording order), as a
    depth-first post-order from the graph's sinks, so both read the same.

    >>> # stem; main branch conv-bn-relu; shortcut conv; add -- written main first, then shortcut first:
    >>> a = ["stem", "conv", "bn", "relu", "proj", "add"]
    >>> [a[i] for i in canonical_order([(), (0,), (1,), (2,), (0,), (3, 4)])]
    ['stem', 'conv', 'bn', 'relu', 'proj', 'add']
    >>> b = ["stem", "proj", "conv", "bn", "relu", "add"]
    >>> [b[i] for i in canonical_order([(), (0,), (0,), (2,), (3,), (1, 4)])]
    ['stem', 'conv', 'bn', 'relu', 'proj', 'add']
    """
    n = len(deps)
    depth = [0] * n
    consumers = [0] * n
    for i, ds in enumerate(deps):
        depth[i] = 1 + max((depth[d] for d in ds), default=0)
        for d in set(ds):
            consumers[d] += 1
    done = [False] * n
    out: list[int] = []
    for sink in (i for i in range(n) if consumers[i] == 0):
        stack = [(sink, False)]
        while stack:
            node, ready = stack.pop()
            if done[node]:
                continue
            if ready:
                done[node] = True
                out.append(node)
                continue
            stack.append((node, True))
            # Pushed in reverse so the deepest input is expanded (and emitted) first.
            for d in sorted(set(deps[node]), key=lambda d: (depth[d], -d)):
                if not done[d]:
                    stack.append((d, False))
    return out


# An activation written out as ``x * f(x)``: f's token, once absorbed, becomes the activation's.
_GATED = {"Sigmoid": "SiLU", "Erf": "GELU"}


def fuse(tokens: Sequence[str], deps: Sequence[Sequence[int]]) -> tuple[list[str], list[tuple[int, ...]], list[int]]:
    """Rewrite spelled-out patterns into the op they compute, on a recorded dataflow graph.

    * ``MatMul`` → ``Softmax`` → ``MatMul`` is ``Attention`` (what ``scaled_dot_product_attention``
      computes, however a model or an exporter writes it);
    * ``x * sigmoid(x)`` is ``SiLU`` and ``x * (1 + erf(x / √2)) / 2`` is ``GELU`` (the scalar steps
      were never tokens).

    Args:
        tokens: one token per op, in a topological order.
        deps: the ops each op reads (indices into ``tokens``).

    Returns:
        ``(tokens, deps, kept)``: the fused graph and, per new op, the index of the op it came from.

    >>> fuse(["Linear", "MatMul", "Softmax", "MatMul", "Linear"], [(), (0,), (1,), (2, 0), (3,)])[0]
    ['Linear', 'Attention', 'Linear']
    """
    n = len(tokens)
    toks = list(tokens)
    dps = [set(d) for d in deps]
    consumers: list[list[int]] = [[] for _ in range(n)]
    for i, ds in enumerate(dps):
        for d in ds:
            consumers[d].append(i)
    alias = list(range(n))  # a removed op stands for the op that now produces its value
    removed = [False] * n
    for s in range(n):
        if toks[s] != "Softmax" or len(dps[s]) != 1:
            continue
        (m1,) = dps[s]
        after = consumers[s]
        if toks[m1] != "MatMul" or len(after) != 1 or toks[after[0]] != "MatMul" or len(consumers[m1]) != 1:
            continue
        m2 = after[0]
        toks[m2] = "Attention"
        dps[m2] = (dps[m2] - {s}) | dps[m1]
        removed[m1] = removed[s] = True
    for i in range(n):
        if toks[i] != "Mul" or removed[i] or len(dps[i]) != 2:
            continue
        for k in dps[i]:
            other = dps[i] - {k}
            if toks[k] in _GATED and not removed[k] and other and other == dps[k]:
                toks[k] = _GATED[toks[k]]
                removed[i] = True
                alias[i] = k
                break
    kept = [i for i in range(n) if not removed[i]]
    new = {old: j for j, old in enumerate(kept)}

    def resolve(d: int) -> int:
        while removed[d] and alias[d] != d:
            d = alias[d]
        return d

    out_deps = [tuple(sorted({new[resolve(d)] for d in dps[i] if resolve(d) in new})) for i in kept]
    return [toks[i] for i in kept], out_deps, kept


def canonicalize(tokens: Sequence[str], paths: Sequence[str], deps: Sequence[Sequence[int]]
                 ) -> tuple[list[str], list[str], list[tuple[int, ...]]]:
    """:func:`fuse` then :func:`canonical_order`: the ``ops`` sequence of a recorded dataflow graph.

    Args:
        tokens: one token per op, in a topological order.
        paths: where each op ran (module path or graph node scope).
        deps: the ops each op reads.

    Returns:
        ``(tokens, paths, deps)`` fused and in canonical order.
    """
    toks, dps, kept = fuse(tokens, deps)
    order = canonical_order(dps)
    new = {old: i for i, old in enumerate(order)}
    return ([toks[i] for i in order], [paths[kept[i]] for i in order],
            [tuple(sorted(new[d] for d in dps[i])) for i in order])


class OpRecorder:
    """Context manager recording the ``ops`` tokens of ``model``'s forward passes, with module paths.

    Args:
        model: the ``nn.Module`` whose calls are recorded; paths are its ``named_modules`` names
            (the innermost module running when the op was called).
        atomic: optional ``atomic(module) -> tokens or None``: a module for which it returns
            tokens is recorded as those ops (none for an empty tuple) and the ops it calls are
            not (transformers' ``NewGELUActivation`` is one ``GELU``, not its tanh formula).
        integer_arithmetic: record add/mul/matmul of integer or boolean tensors (see :func:`op_tokens`).

    After the ``with`` block, ``tokens`` and ``paths`` hold one entry per recorded op in
    :func:`canonical_order` (``deps`` says which earlier ops each one read, in that order).
    """

    def __init__(self, model: Any, atomic: Callable[[Any], Sequence[str] | None] | None = None,
                 integer_arithmetic: bool = True):
        self.model = model
        self._atomic = atomic
        self._integer_arithmetic = integer_arithmetic
        self._depth = 0  # modules running now
        self._muted: list[tuple[int, frozenset[int]]] = []  # (depth, provenance) of the atomic module running
        self.tokens: list[str] = []
        self.paths: list[str] = []
        self.deps: list[tuple[int, ...]] = []
        self._names = {id(m): p for p, m in model.named_modules()}
        self._stack: list[str] = []
        self._handles: list[Any] = []
        self._mode: Any = None
        # id(tensor) -> the recorded ops its value comes from; `_alive` pins the tensors so an id
        # is never reused by another tensor during the pass (meta tensors cost no memory).
        self._prov: dict[int, frozenset[int]] = {}
        self._alive: list[Any] = []

    def _record(self, func: Callable, args: tuple, kwargs: dict, result: Any) -> None:
        import torch
        from torch.utils._pytree import tree_leaves
        ins = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        src = frozenset().union(*(self._prov.get(id(t), frozenset()) for t in ins))
        toks = () if self._muted else op_tokens(func, args, kwargs, self._integer_arithmetic)
        src = self._emit(toks, src)
        self._mark(result, src)

    def _emit(self, toks: Sequence[str], src: frozenset[int]) -> frozenset[int]:
        """Record ``toks`` as a chain reading ``src``; the provenance of its output."""
        path = self._stack[-1] if self._stack else ""
        for tok in toks:
            self.tokens.append(tok)
            self.paths.append(path)
            self.deps.append(tuple(sorted(src)))
            src = frozenset((len(self.tokens) - 1,))
        return src

    def _mark(self, value: Any, src: frozenset[int]) -> None:
        import torch
        from torch.utils._pytree import tree_leaves
        for t in tree_leaves(value):
            if isinstance(t, torch.Tensor):
                self._prov[id(t)] = src
                self._alive.append(t)

    def _canonicalize(self) -> None:
        self.tokens, self.paths, self.deps = canonicalize(self.tokens, self.paths, self.deps)

    def _pre(self, module, inputs) -> None:
        self._stack.append(self._names.get(id(module), self._stack[-1] if self._stack else ""))
        self._depth += 1
        toks = self._atomic(module) if self._atomic is not None and not self._muted else None
        if toks is not None:
            import torch
            from torch.utils._pytree import tree_leaves
            src = frozenset().union(*(self._prov.get(id(t), frozenset()) for t in tree_leaves(inputs)
                                      if isinstance(t, torch.Tensor)))
            self._muted.append((self._depth, self._emit(tuple(toks), src)))

    def _post(self, module, _inputs, output) -> None:
        if self._muted and self._muted[-1][0] == self._depth:
            self._mark(output, self._muted.pop()[1])  # the module's output comes from its own op(s)
        self._depth -= 1
        if self._stack:
            self._stack.pop()

    def __enter__(self) -> "OpRecorder":
        import torch
        from torch.nn.modules import module as nn_module
        from torch.overrides import TorchFunctionMode

        rec = self

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                result = func(*args, **kwargs)
                rec._record(func, args, kwargs, result)
                return result

        # Global hooks see every module of the model, however it is called (functional_call too).
        self._handles = [nn_module.register_module_forward_pre_hook(self._pre),
                         nn_module.register_module_forward_hook(self._post, always_call=True)]
        self._mode = _Mode()
        self._mode.__enter__()
        del torch
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._mode.__exit__(*exc)
        finally:
            for h in self._handles:
                h.remove()
            self._stack.clear()
            self._muted.clear()
            self._depth = 0
            self._prov.clear()
            self._alive.clear()
        if exc[0] is None:
            self._canonicalize()


__all__ = ["OP_TOKENS", "BINARY_TOKENS", "EXPANSIONS", "OpRecorder", "canonical_order", "canonicalize", "fuse", "op_tokens"]

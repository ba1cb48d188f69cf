"""``onnx:PATH``: an ONNX file's graph read as an ``ops`` sequence, on the same scale as PyTorch models.

ONNX nodes come topologically sorted.  Each node on the data path (computed from a graph input,
not from weights or from shapes) is mapped onto the canonical ``ops`` tokens of
:mod:`archsim.optrace`; bookkeeping (reshapes, transposes, gathers, casts, ``Identity``,
``Dropout``, arithmetic with a constant) is skipped, exactly as in a traced forward pass.  Exporters
spell some ops out, so the same fusions apply: ``MatMul``/``Gemm`` with a weight (and the bias
``Add`` after it) is ``Linear``, ``MatMul`` → ``Softmax`` → ``MatMul`` is ``Attention``,
``x·sigmoid(x)`` is ``SiLU``, the ``Erf`` formula is ``GELU``, ``Clip(0, 6)`` is ``ReLU6``.  Then the
graph is put in the same canonical order, so branch order does not matter.  Subgraphs of
``If``/``Loop``/``Scan`` are flattened in place (``then`` before ``else``), with a warning.

Exporters fold BatchNorm into the convolution before it when they constant-fold an eval-mode
model; export with ``do_constant_folding=False`` to keep the BatchNorm layers visible.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import DataError
from .optrace import canonicalize

# ONNX op type -> canonical token (None: computed below from the node and its inputs).
ONNX_TOKENS: dict[str, str | None] = {
    "Conv": None, "ConvTranspose": None, "Gemm": "Linear", "MatMul": None, "Gather": None,
    "BatchNormalization": None, "LayerNormalization": "LayerNorm", "GroupNormalization": "GroupNorm",
    "InstanceNormalization": "InstanceNorm2d", "LRN": "LocalResponseNorm", "RMSNormalization": "RMSNorm",
    "Relu": "ReLU", "Clip": None, "Sigmoid": "Sigmoid", "Tanh": "Tanh", "HardSwish": "Hardswish",
    "HardSigmoid": "Hardsigmoid", "LeakyRelu": "LeakyReLU", "Elu": "ELU", "Selu": "SELU", "Celu": "CELU",
    "Mish": "Mish", "Softplus": "Softplus", "PRelu": "PReLU", "Gelu": "GELU", "Erf": "Erf",
    "Softmax": "Softmax", "LogSoftmax": "Softmax",
    "MaxPool": None, "AveragePool": None, "GlobalAveragePool": "AdaptiveAvgPool2d",
    "GlobalMaxPool": "AdaptiveMaxPool2d", "ReduceMean": None, "LpPool": "LPPool2d",
    "Add": None, "Sum": None, "Mul": None, "Concat": "Cat", "Split": None,
    "Resize": "Upsample", "Upsample": "Upsample", "Pad": "Pad",
    "DepthToSpace": "PixelShuffle", "Attention": "Attention", "MultiHeadAttention": "Attention",
}
# No data flows out of these: they describe shapes.
_META = {"Shape", "Size", "Constant", "ConstantOfShape", "EyeLike", "Range"}
_SUBGRAPH_OPS = {"If", "Loop", "Scan"}


def _scope(node: Any) -> str:
    """``/blocks/blocks.0/attn/qkv/MatMul`` -> ``blocks.0.attn.qkv`` (the exporter's module scope)."""
    parts = [p for p in node.name.split("/")[:-1] if p]
    out: list[str] = []
    for p in parts:
        if out and p.startswith(out[-1] + "."):
            out[-1] = p  # "blocks" then "blocks.0": the second is the qualified child
        else:
            out.append(p)
    return ".".join(out)


class _Reader:
    """One pass over a graph (and its subgraphs), building ops tokens, scopes and dependencies."""

    def __init__(self, model: Any):
        from onnx import numpy_helper, shape_inference
        try:
            model = shape_inference.infer_shapes(model)
        except Exception:  # shapes only refine token names (Conv1d vs Conv2d); never required
            pass
        self.numpy_helper = numpy_helper
        g = model.graph
        self.const_shape: dict[str, tuple[int, ...]] = {i.name: tuple(i.dims) for i in g.initializer}
        self.const_value: dict[str, Any] = {i.name: i for i in g.initializer}
        self.rank: dict[str, int] = {}
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                self.rank[vi.name] = len(t.shape.dim)
        self.prov: dict[str, frozenset[int]] = {i.name: frozenset() for i in g.input
                                                if i.name not in self.const_shape}
        self.linear_out: set[str] = set()  # outputs of a weight MatMul (its bias Add is part of it)
        self.tokens: list[str] = []
        self.paths: list[str] = []
        self.deps: list[tuple[int, ...]] = []
        self.flattened: list[str] = []
        self.consumers: dict[str, list[Any]] = {}
        self._index(g)

    def _index(self, g: Any) -> None:
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
            for a in n.attribute:
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    self._index(sub)

    def is_data(self, name: str) -> bool:
        return name in self.prov

    def _numel(self, name: str) -> int | None:
        shape = self.const_shape.get(name)
        if shape is None:
            return None
        n = 1
        for d in shape:
            n *= d
        return n

    def _emit(self, tok: str, node: Any, src: frozenset[int]) -> frozenset[int]:
        self.tokens.append(tok)
        self.paths.append(_scope(node))
        self.deps.append(tuple(sorted(src)))
        return frozenset((len(self.tokens) - 1,))

    def _token(self, node: Any, data_in: list[str], const_in: list[str]) -> str | None:
        op = node.op_type
        rank = self.rank.get(node.input[0]) if node.input else None
        if op in ("Conv", "ConvTranspose"):
            w = self.const_shape.get(node.input[1]) if len(node.input) > 1 else None
            dims = (len(w) - 2) if w else ((rank - 2) if rank else 2)
            return f"{'Conv' if op == 'Conv' else 'ConvTranspose'}{dims}d"
        if op == "BatchNormalization":
            return {2: "BatchNorm1d", 3: "BatchNorm1d", 5: "BatchNorm3d"}.get(rank or 4, "BatchNorm2d")
        if op in ("MaxPool", "AveragePool"):
            k = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [0, 0])
            return f"{'MaxPool' if op == 'MaxPool' else 'AvgPool'}{len(k)}d"
        if op == "MatMul":
            return "MatMul" if len(data_in) == 2 else "Linear"
        if op == "Gather":  # a table looked up with data indices is an embedding; else indexing
            return "Embedding" if node.input[0] not in data_in else None
        if op == "Clip":
            lo, hi = (self._scalar(n) for n in (list(node.input) + ["", ""])[1:3])
            return "ReLU6" if (lo, hi) == (0.0, 6.0) else "Hardtanh"
        if op == "ReduceMean":
            axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
            if axes is None and len(node.input) > 1:
                v = self._array(node.input[1])
                axes = None if v is None else [int(x) for x in v.ravel()]
            if rank == 4 and axes is not None and {a % 4 for a in axes} == {2, 3}:
                return "AdaptiveAvgPool2d"
            return "Mean"
        if op == "Split":  # torch's unbind (q, k, v) exports as Split + Squeeze: indexing, not a split
            outs = [c for o in node.output for c in self.consumers.get(o, [])]
            return None if outs and all(c.op_type == "Squeeze" for c in outs) else "Split"
        if op in ("Add", "Sum", "Mul"):
            tok = "Mul" if op == "Mul" else "Add"
            if len(data_in) >= 2:
                return tok
            # One operand is a constant: a bias after a weight MatMul, or a scalar, is not a token;
            # a constant tensor (a positional embedding, a layer scale) is.
            if op != "Mul" and any(i in self.linear_out for i in data_in):
                return None
            return tok if any((self._numel(c) or 1) > 1 for c in const_in) else None
        return ONNX_TOKENS.get(op)

    def _array(self, name: str) -> Any:
        t = self.const_value.get(name)
        return None if t is None else self.numpy_helper.to_array(t)

    def _scalar(self, name: str) -> float | None:
        v = self._array(name) if name else None
        return None if v is None or v.size != 1 else float(v.ravel()[0])

    def visit(self, g: Any) -> None:
        for node in g.node:
            if node.op_type == "Constant":
                for a in node.attribute:
                    if a.name == "value":
                        self.const_shape[node.output[0]] = tuple(a.t.dims)
                        self.const_value[node.output[0]] = a.t
                continue
            if node.op_type == "Identity" and node.input and node.input[0] in self.const_shape:
                self.const_shape[node.output[0]] = self.const_shape[node.input[0]]
                if node.input[0] in self.const_value:
                    self.const_value[node.output[0]] = self.const_value[node.input[0]]
                continue
            if node.op_type in _SUBGRAPH_OPS:
                self._subgraphs(node)
                continue
            data_in = [i for i in node.input if i and self.is_data(i)]
            if node.op_type in _META or not data_in:
                continue  # weights and shapes: not on the data path
            const_in = [i for i in node.input if i and not self.is_data(i)]
            src = frozenset().union(*(self.prov[i] for i in data_in))
            tok = self._token(node, data_in, const_in) if node.op_type not in ("Dropout",) else None
            if tok is not None:
                src = self._emit(tok, node, src)
                if node.op_type == "MatMul" and tok == "Linear":
                    self.linear_out.update(node.output)
            elif node.op_type == "Add" and any(i in self.linear_out for i in data_in):
                self.linear_out.update(node.output)
            for o in node.output:
                if o:
                    self.prov[o] = src

    def _subgraphs(self, node: Any) -> None:
        self.flattened.append(f"{node.op_type} {node.name or node.output[0]}")
        outer = [i for i in node.input if i and self.is_data(i)]
        src = frozenset().union(*(self.prov[i] for i in outer)) if outer else frozenset()
        for a in node.attribute:
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                for i in sub.input:  # loop-carried values read the outer data
                    self.prov.setdefault(i.name, src)
                for init in sub.initializer:
                    self.const_shape[init.name] = tuple(init.dims)
                self.visit(sub)
                for o in sub.output:
                    src = src | self.prov.get(o.name, frozenset())
        for o in node.output:
            if o:
                self.prov[o] = src


def read_onnx(path: str | Path, name: str | None = None):
    """The ``ops`` ``LayerSeq`` of an ONNX file.

    Args:
        path: the ``.onnx`` file.
        name: the sequence's name (default: ``onnx:<file name>``).

    Returns:
        A ``LayerSeq`` with ``profile="ops"``, ``order="graph"``, ``source="onnx"``.

    Raises:
        DataError: the file is missing, not ONNX, or has no node on the data path.
        ModelLoadError: the ``onnx`` package is not installed.
    """
    from .errors import ModelLoadError
    from .tokens import LayerSeq
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such ONNX file (expected onnx:path/to/model.onnx)")
    try:
        import onnx
    except ImportError:
        raise ModelLoadError("reading ONNX files needs the onnx package: pip install 'archsim-neurn[onnx]'") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
        if not model.graph.node:
            raise ValueError("the graph has no nodes")
    except Exception as exc:  # protobuf raises DecodeError, onnx raises its own: all mean "not ONNX"
        raise DataError(f"{path}: not a readable ONNX model ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'corrupt file'})") from None
    reader = _Reader(model)
    reader.visit(model.graph)
    if not reader.tokens:
        raise DataError(f"{path}: no operation on the data path (does the graph read its inputs?)")
    toks, paths, _ = canonicalize(reader.tokens, reader.paths, reader.deps)
    notes = tuple(f"{path.name}: flattened the subgraphs of {f}" for f in reader.flattened)
    shape = _input_shape(model)
    return LayerSeq(name=name or f"onnx:{path.name}", tokens=tuple(toks), paths=tuple(paths), profile="ops",
                    order="graph", source="onnx", input_size=shape, warnings=notes)


def _input_shape(model: Any) -> tuple[int, ...] | None:
    inits = {i.name for i in model.graph.initializer}
    for i in model.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in i.type.tensor_type.shape.dim]
        return tuple(dims[1:]) if len(dims) > 1 else None
    return None


__all__ = ["ONNX_TOKENS", "read_onnx"]

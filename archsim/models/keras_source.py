"""``keras:NAME``: the ``keras.applications`` models, built offline on Keras 3's torch backend.

The paper tokenized its Keras-labelled models from ``model.layers``; this module reads exactly
that, from the real Keras models (``weights=None``, no network), and maps each layer class onto
archsim's canonical tokens:

* ``keras`` profile (the paper's rule): ``model.layers`` minus ``InputLayer`` and ``Flatten``,
  one token per layer, in Keras's own (graph-depth) order; an activation fused into a
  ``Conv2D``/``Dense`` stays inside it, as Keras lists it. For a Keras model the ``torch``
  profile is the same list: the modules a Keras model runs are its layers.
* ``ops`` profile: what each layer computes, canonicalized per layer (Keras 3 runs
  BatchNormalization as subtract/rsqrt/multiply/add and Dense as matmul + add, so raw calls
  would not meet PyTorch's), with the activations fused into a layer spelled out, input
  preprocessing (``Rescaling``, ``Normalization``) and reshapes left out, in the canonical
  dataflow order of :mod:`archsim.optrace` over the model's layer graph.

Keras must run on the torch backend: ``KERAS_BACKEND=torch`` is set before Keras is imported;
if Keras was imported earlier with another backend the error says so.
"""
from __future__ import annotations

import gzip
import json
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from .._io import installed_version
from ..errors import ModelLoadError

# keras.applications in Keras 3.15 (a test checks this list against the installed Keras, so
# listing and did-you-mean never import Keras).
KERAS_NAMES: tuple[str, ...] = (
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4", "EfficientNetB5",
    "EfficientNetB6", "EfficientNetB7", "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2",
    "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large", "MobileNetV3Small",
    "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152", "ResNet152V2", "ResNet50",
    "ResNet50V2", "VGG16", "VGG19", "Xception",
)
INSTALL_HINT = "pip install 'archsim-neurn[keras]'"

# Keras activation functions -> canonical tokens ("linear" is no activation).
ACTIVATIONS: dict[str, str | None] = {
    "relu": "ReLU", "relu6": "ReLU6", "swish": "SiLU", "silu": "SiLU", "sigmoid": "Sigmoid",
    "hard_sigmoid": "Hardsigmoid", "hard_silu": "Hardswish", "hard_swish": "Hardswish", "gelu": "GELU",
    "softmax": "Softmax", "tanh": "Tanh", "elu": "ELU", "selu": "SELU", "leaky_relu": "LeakyReLU",
    "softplus": "Softplus", "mish": "Mish", "linear": None,
}
# Layer classes -> their token in the keras profile (None: not a layer of the paper's lists).
LAYER_TOKENS: dict[str, str | None] = {
    "InputLayer": None, "Flatten": None,
    "Conv1D": "Conv1d", "Conv2D": "Conv2d", "Conv3D": "Conv3d", "DepthwiseConv2D": "DepthwiseConv2d",
    "SeparableConv2D": "SeparableConv2d", "Conv2DTranspose": "ConvTranspose2d", "Dense": "Linear",
    "BatchNormalization": "BatchNorm2d", "LayerNormalization": "LayerNorm", "GroupNormalization": "GroupNorm",
    "ZeroPadding2D": "ZeroPad2d", "Cropping2D": "Cropping2d", "Add": "Add", "Concatenate": "Cat",
    "Multiply": "Mul", "Reshape": "Reshape", "Rescaling": "Rescaling", "Normalization": "Normalization",
    "GlobalAveragePooling2D": "AdaptiveAvgPool2d", "GlobalMaxPooling2D": "AdaptiveMaxPool2d",
    "AveragePooling2D": "AvgPool2d", "MaxPooling2D": "MaxPool2d", "Dropout": "Dropout",
    "UpSampling2D": "Upsample", "Softmax": "Softmax", "Identity": None, "Permute": "Permute",
    "LayerScale": "LayerScale",
}
# Layer classes whose ops are not architecture: input preprocessing, reshapes, eval-time no-ops.
_NO_OPS = {"InputLayer", "Flatten", "Reshape", "Rescaling", "Normalization", "Dropout", "Identity", "Permute",
           "Cropping2D"}
# Keras's own small layers, by what they compute.
_COMPUTES = {"CustomScaleLayer": ("Add",),  # InceptionResNetV2: x + scale · branch (the scale is a number)
             "LayerScale": ("Mul",)}        # ConvNeXt: x · gamma (a learned vector)
_CONVS = {"Conv1D": "Conv1d", "Conv2D": "Conv2d", "Conv3D": "Conv3d", "DepthwiseConv2D": "Conv2d",
          "Conv2DTranspose": "ConvTranspose2d"}


def import_keras() -> Any:
    """Keras 3 on the torch backend (``KERAS_BACKEND=torch`` is set before the import).

    Raises:
        ModelLoadError: Keras is not installed, or was imported with another backend.
    """
    if sys.modules.get("keras") is not None:
        keras = sys.modules["keras"]
        backend = keras.backend.backend()
        if backend != "torch":
            raise ModelLoadError(f"Keras was already imported with the {backend!r} backend; archsim builds "
                                 f"keras: models on the torch backend: set KERAS_BACKEND=torch before Keras is "
                                 f"imported (or start a fresh Python)")
        return keras
    wanted = os.environ.get("KERAS_BACKEND", "torch")
    if wanted != "torch":
        raise ModelLoadError(f"KERAS_BACKEND={wanted}: archsim builds keras: models on the torch backend "
                             f"(no TensorFlow needed); unset it or set KERAS_BACKEND=torch")
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    except ImportError:
        raise ModelLoadError(f"keras: models need Keras 3: {INSTALL_HINT}") from None
    return keras


def build_keras(name: str) -> Any:
    """The ``keras.applications`` model ``name`` with random weights (``weights=None``, offline)."""
    keras = import_keras()
    # Auto-named layers ("activation_203") count per session: start from zero so names (the
    # paths of every token) are the same in every process.
    keras.backend.clear_session()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "NASNetMobile":
            # The public function refuses the torch backend; its own arguments build the same
            # network through Keras's NASNet constructor.
            from keras.src.applications import nasnet
            return nasnet.NASNet(input_shape=(224, 224, 3), penultimate_filters=1056, num_blocks=4,
                                 stem_block_filters=32, skip_reduction=False, filter_multiplier=2,
                                 include_top=True, weights=None, classes=1000, default_size=224,
                                 name="nasnet_mobile")
        factory: Callable = getattr(keras.applications, name)
        return factory(weights=None)


def _activation(layer: Any) -> str | None:
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    name = getattr(fn, "__name__", str(fn))
    if name not in ACTIVATIONS:
        return name  # an activation Keras adds later: keep its own name rather than guess
    return ACTIVATIONS[name]


def _class(layer: Any) -> str:
    return type(layer).__name__


def layer_token(layer: Any) -> str | None:
    """The keras-profile token of one layer (None for ``InputLayer``/``Flatten``)."""
    cls = _class(layer)
    if cls == "Activation":
        return _activation(layer) or "Activation"
    if cls == "ReLU":
        return "ReLU6" if getattr(layer, "max_value", None) == 6 else "ReLU"
    if cls == "BatchNormalization":
        return _rank_token(layer, "BatchNorm")
    return LAYER_TOKENS.get(cls, cls)


def _rank_token(layer: Any, stem: str) -> str:
    shape = getattr(layer, "input", None)
    rank = len(getattr(shape, "shape", ())) or 4
    return f"{stem}{ {2: '1d', 3: '1d', 5: '3d'}.get(rank, '2d') }"


# Graph operations that are not layers (``inputs + x`` in a functional model is ``ops.Add``).
_OPERATIONS = {"Add": ("Add",), "Multiply": ("Mul",), "Matmul": ("MatMul",), "Concatenate": ("Cat",)}


def layer_ops(layer: Any) -> tuple[str, ...]:
    """What one layer (or graph operation) computes, as ``ops`` tokens (fused activations spelled out)."""
    cls = _class(layer)
    if not type(layer).__module__.startswith("keras.src.layers") and cls in _OPERATIONS \
            and not hasattr(layer, "layers"):
        return _OPERATIONS[cls]
    if cls in _NO_OPS:
        return ()
    if cls == "Activation" and _activation(layer) is None:
        return ()  # a linear Activation is an identity (ConvNeXt's drop-path placeholder)
    act = _activation(layer) if cls in (*_CONVS, "SeparableConv2D", "Dense") else None
    tail = (act,) if act else ()
    if cls in _CONVS:
        return (_CONVS[cls],) + tail
    if cls == "SeparableConv2D":
        return ("Conv2d", "Conv2d") + tail
    if cls == "Dense":
        return ("Linear",) + tail
    if cls == "ZeroPadding2D":
        return ("Pad",)
    if cls == "Sequential":  # ConvNeXt's stem and downsampling blocks: a layer made of layers
        return tuple(t for inner in layer.layers for t in layer_ops(inner))
    if cls in _COMPUTES:
        return _COMPUTES[cls]
    tok = layer_token(layer)
    return (tok,) if tok else ()


def _parents(layer: Any) -> list[Any]:
    out = []
    for node in getattr(layer, "_inbound_nodes", []):
        out += [p.operation for p in getattr(node, "parent_nodes", [])]
    return out


def keras_sequences(model: Any, name: str) -> dict:
    """The ``keras``/``torch`` and ``ops`` ``LayerSeq`` of a built Keras model.

    Args:
        model: a functional ``keras.Model``.
        name: the sequences' name.

    Returns:
        ``{"keras": …, "torch": …, "ops": …}`` (``torch`` equals ``keras``: a Keras model's
        modules are its layers).
    """
    from ..optrace import canonical_order
    from ..tokens import LayerSeq
    # MobileNetV3 takes any size (None): 224 is the size its weights were trained at.
    shape = tuple(224 if d is None else int(d) for d in model.input_shape[1:]) if model.input_shape else None
    size = (shape[-1], *shape[:-1]) if shape and len(shape) == 3 else shape  # NHWC -> (C, H, W)
    layers = list(model.layers)
    kept = [(layer_token(lay), lay.name) for lay in layers]
    kept = [(t, p) for t, p in kept if t is not None]
    seqs = {prof: LayerSeq(name=name, tokens=tuple(t for t, _ in kept), paths=tuple(p for _, p in kept),
                           profile=prof, order="graph", source="keras", input_size=size)
            for prof in ("keras", "torch")}
    # ops: expand every operation (layers, and graph ops such as ``inputs + x``, which
    # model.layers does not list) into its ops; one without ops passes its inputs through.
    layers = list(getattr(model, "operations", layers))
    index = {id(lay): i for i, lay in enumerate(layers)}
    order = _topological(layers, index)
    tokens: list[str] = []
    paths: list[str] = []
    deps: list[tuple[int, ...]] = []
    out_of: dict[int, frozenset[int]] = {}
    for i in order:
        lay = layers[i]
        src = frozenset().union(*(out_of.get(index[id(p)], frozenset()) for p in _parents(lay) if id(p) in index))
        for tok in layer_ops(lay):
            tokens.append(tok)
            paths.append(lay.name)
            deps.append(tuple(sorted(src)))
            src = frozenset((len(tokens) - 1,))
        out_of[i] = src
    canon = canonical_order(deps)
    seqs["ops"] = LayerSeq(name=name, tokens=tuple(tokens[i] for i in canon), paths=tuple(paths[i] for i in canon),
                           profile="ops", order="graph", source="keras", input_size=size)
    return seqs


SHIPPED = Path(__file__).parent / "data" / "keras.json.gz"
_PROFILES_SHIPPED = ("keras", "ops")


@lru_cache(maxsize=1)
def _shipped_doc() -> dict:
    """The shipped Keras sequences (``{"keras": version, "models": {name: {profile: [tokens, paths]}}}``)."""
    if not SHIPPED.exists():
        return {}
    try:
        doc = json.loads(gzip.decompress(SHIPPED.read_bytes()))
        if not isinstance(doc.get("models"), dict):
            raise ValueError("no models")
        return doc
    except Exception as exc:  # a damaged file only costs the speed-up: build the models instead
        warnings.warn(f"{SHIPPED} is unreadable ({exc}); keras: models are built instead", RuntimeWarning)
        return {}


def installed_keras_version() -> str | None:
    """Keras's version, read without importing it (None when not installed)."""
    return installed_version("keras")


def shipped_sequences(name: str, label: str | None = None) -> dict | None:
    """The shipped ``keras``/``torch``/``ops`` sequences of ``keras:name``, or None.

    They are used when Keras is not installed, or is the version that made them (tests check
    they equal a fresh extraction), so ``archsim figures`` and the zoo need no Keras.
    """
    from ..tokens import LayerSeq
    doc = _shipped_doc()
    entry = doc.get("models", {}).get(name)
    installed = installed_keras_version()
    if entry is None or (installed is not None and installed != doc.get("keras")):
        return None
    size = tuple(entry["input_size"])
    out = {prof: LayerSeq(name=label or name, tokens=tuple(entry[prof][0]), paths=tuple(entry[prof][1]),
                          profile=prof, order="graph", source="keras", input_size=size)
           for prof in _PROFILES_SHIPPED}
    out["torch"] = out["keras"].with_profile("torch")
    return out


def write_shipped(path: Path = SHIPPED, names: tuple[str, ...] = KERAS_NAMES, progress: bool = True) -> Path:
    """Build every ``keras.applications`` model and write their sequences (needs Keras).

    Args:
        path: the output file (default: the package data file).
        names: which models.
        progress: show a progress bar.

    Returns:
        The written path.
    """
    from tqdm import tqdm

    from .._io import atomic_write
    keras = import_keras()
    models = {}
    for name in tqdm(names, desc="keras models", unit="model", disable=not progress):
        seqs = keras_sequences(build_keras(name), name)
        models[name] = {"input_size": list(seqs["keras"].input_size),
                        **{p: [list(seqs[p].tokens), list(seqs[p].paths)] for p in _PROFILES_SHIPPED}}
        keras.backend.clear_session()
    doc = {"keras": keras.__version__, "models": models}
    atomic_write(path, gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9, mtime=0))
    _shipped_doc.cache_clear()
    return path


def _topological(layers: list[Any], index: dict[int, int]) -> list[int]:
    """Layer indices in an order where every layer follows its parents (Kahn, ties by position)."""
    import heapq
    parents = [[index[id(p)] for p in _parents(lay) if id(p) in index] for lay in layers]
    waiting = [len(set(ps)) for ps in parents]
    children: list[list[int]] = [[] for _ in layers]
    for i, ps in enumerate(parents):
        for p in set(ps):
            children[p].append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        i = heapq.heappop(ready)
        out.append(i)
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, c)
    return out


__all__ = ["ACTIVATIONS", "KERAS_NAMES", "LAYER_TOKENS", "SHIPPED", "build_keras", "import_keras",
           "installed_keras_version", "keras_sequences", "layer_ops", "layer_token", "shipped_sequences",
           "write_shipped"]


if __name__ == "__main__":  # pragma: no cover - `python -m archsim.models.keras_source` (make keras-data)
    print(f"wrote {write_shipped()}")

"""Model → ``LayerSeq``: leaf-module calls recorded during one forward pass on the meta device."""
from __future__ import annotations

import copy
import numbers
import warnings
from typing import Union

from .errors import ArchsimError, UnknownNameError, UsageError, shorten
from .tokens import PLACEHOLDERS, PROFILES, LayerSeq, apply_profile, canonical
from .models import ModelSpec, get_model, is_factory_reference, load_factory

ModelLike = Union[str, "torch.nn.Module"]  # noqa: F821

# torch.nn classes that only group other modules; they never become tokens themselves.
_CONTAINERS = {"Module", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}


def _torch_base(module) -> str | None:
    """Name of the torch.nn layer class ``module`` is or extends (None for custom modules)."""
    for cls in type(module).__mro__:
        if cls.__name__ in _CONTAINERS:
            return None
        if cls.__module__.startswith("torch.nn.modules"):
            return cls.__name__
    return None


def token_name(module) -> str:
    """Canonical token of a module: its class name, or the torch.nn layer class it extends.

    timm's ``BatchNormAct2d`` or ``Conv2dSame`` are a ``BatchNorm2d`` and a ``Conv2d`` to
    the alignment, so subclasses of torch.nn layers take the name of that layer.
    """
    return canonical(_torch_base(module) or type(module).__name__)


def _is_token_module(module) -> bool:
    # Leaves are layers.  A torch.nn layer subclass that also holds children (timm's
    # BatchNormAct2d holds its activation) is a layer too, but only if it owns weights
    # or buffers itself; composite torch.nn blocks (TransformerEncoderLayer) are not.
    if next(module.children(), None) is None:
        return True
    if _torch_base(module) is None:
        return False
    return any(t is not None for t in (*module._parameters.values(), *module._buffers.values()))


def _token_modules(model):
    return [(path, m) for path, m in model.named_modules()
            if path and _is_token_module(m) and token_name(m) not in PLACEHOLDERS]


def _definition_order(model) -> tuple[list[str], list[str]]:
    mods = _token_modules(model)
    if not mods and next(model.children(), None) is None:
        mods = [("", model)]
    return [token_name(m) for _, m in mods], [p for p, _ in mods]


def _record_forward(model, input_size: tuple[int, ...]) -> dict[str, tuple[list[str], list[str]]]:
    """Run one forward pass on the meta device; record every layer call and every tensor op.

    Returns ``{"torch": (tokens, paths), "ops": (tokens, paths)}``: the leaf-module calls in
    execution order and the ``ops`` profile (:mod:`archsim.optrace`) of the same pass.
    """
    import torch

    from .optrace import OpRecorder
    if _has_lazy(model):
        # Lazy layers learn their shapes from a first real call: make it on a CPU copy.
        model = _materialized(model, input_size)
    calls: list[tuple[str, str]] = []
    handles = []
    mods = _token_modules(model) or [("", model)]
    for path, m in mods:
        tok = token_name(m)
        handles.append(m.register_forward_pre_hook(lambda _m, _in, p=path, t=tok: calls.append((t, p))))
    was_training = model.training
    rec = OpRecorder(model)
    try:
        model.eval()
        x = torch.zeros((1, *input_size), device="meta")
        with torch.no_grad(), torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if _on_meta(model):
                with rec:
                    model(x)
            else:  # a user's materialized model: swap in meta tensors without copying it
                state = {k: torch.empty_like(v, device="meta") for k, v in
                         list(model.named_parameters()) + list(model.named_buffers())}
                with rec:
                    torch.func.functional_call(model, state, (x,), strict=False)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not calls and not rec.tokens:
        raise RuntimeError("the forward pass called no layer module")
    return {"torch": ([t for t, _ in calls], [p for _, p in calls]), "ops": (rec.tokens, rec.paths)}


def _materialized(model, input_size):
    import torch
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        twin(torch.zeros((1, *input_size)))
    return twin


def _has_lazy(model) -> bool:
    from torch.nn.parameter import UninitializedParameter
    return any(isinstance(p, UninitializedParameter) for p in model.parameters())


def _on_meta(model) -> bool:
    tensors = list(model.parameters()) + list(model.buffers())
    return all(t.device.type == "meta" for t in tensors)


def build(spec: ModelSpec):
    """Build a named model without allocating weights (meta device), on CPU if that fails."""
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                return spec.factory()
        except Exception:
            # Some constructors read values out of tensors (e.g. drop-path schedules);
            # build those for real, then drop the weights.
            try:
                return spec.factory().to("meta")
            except Exception as exc:
                raise ArchsimError(f"{spec.qualified}: building the model failed: "
                                   f"{type(exc).__name__}: {exc}") from exc


def _input_size_of(model, spec: ModelSpec | None) -> tuple[int, ...]:
    if spec is not None and spec.input_size is not None:
        return tuple(spec.input_size)
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    if "input_size" in cfg:
        return tuple(cfg["input_size"])
    return (3, 224, 224)


def _checked_size(input_size) -> tuple[int, ...] | None:
    """``input_size`` as ``(C, H, W)``-style positive ints (an int ``n`` means ``(3, n, n)``), or None."""
    if input_size is None:
        return None
    dims = (3, input_size, input_size) if isinstance(input_size, numbers.Integral) else input_size
    try:
        dims = tuple(dims)
    except TypeError:
        dims = ()
    if not dims or not all(isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in dims):
        raise UsageError(f"input size must be a positive whole number (or a tuple of them), "
                         f"got {shorten(repr(input_size), 40)}")
    return tuple(int(d) for d in dims)


def extract(model: ModelLike, profile: str = "torch", input_size: tuple[int, ...] | int | None = None,
            name: str | None = None, cache: bool = False) -> LayerSeq:
    """Layer tokens of ``model`` (a name, ``file.py:factory``, ``pkg.mod:factory`` or ``nn.Module``)."""
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    input_size = _checked_size(input_size)
    if isinstance(model, str) and model.startswith("onnx:"):
        if profile != "ops":
            raise UsageError(f"an ONNX graph has only the ops profile (it holds operations, not modules): "
                             f"use --profile ops for {shorten(model)}")
        from .onnxgraph import read_onnx
        return read_onnx(model[len("onnx:"):], name=name)
    if cache and isinstance(model, str) and not is_factory_reference(model):
        from .tokencache import cached_extract
        return cached_extract(model, profile, input_size)
    seqs = trace(model, input_size, name)
    return seqs[profile] if profile in seqs else seqs["torch"].with_profile(profile)


def trace(model: ModelLike, input_size=None, name: str | None = None) -> dict[str, LayerSeq]:
    """The ``torch`` and ``ops`` sequences of ``model`` from one meta-device forward pass.

    Args:
        model: a model name, ``file.py:factory``, ``pkg.mod:factory`` or an ``nn.Module``.
        input_size: ``(C, H, W)`` of the dummy input (default: the model's own).
        name: the sequences' name (default: the model's).

    Returns:
        ``{"torch": LayerSeq, "ops": LayerSeq}``; the ``keras`` profile derives from ``torch``
        (a ``keras:`` model also returns its real ``keras`` layer list).
        When the forward pass fails, both fall back to the modules in definition order, with
        a warning.
    """
    input_size = _checked_size(input_size)
    spec = None
    if isinstance(model, str):
        if is_factory_reference(model):
            module, source, label = load_factory(model), "custom", model.rpartition(":")[2]
        else:
            spec = get_model(model)
            if spec.source == "keras":  # a Keras model: its layer list and layer graph, not a torch trace
                from .models.keras_source import keras_sequences, shipped_sequences
                return (shipped_sequences(spec.name, name or spec.name)
                        or keras_sequences(spec.factory(), name or spec.name))
            module, source, label = build(spec), spec.source, spec.name
    else:
        module, source, label = model, "custom", type(model).__name__
    size = tuple(input_size) if input_size is not None else _input_size_of(module, spec)
    order, notes = "execution", ()
    try:
        got = _record_forward(module, size)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        notes = (f"{shorten(name or label)}: forward pass on the meta device failed ({shorten(reason, 200)}); "
                 f"tokens are in definition order",)
        warnings.warn(notes[0], RuntimeWarning, stacklevel=3)
        fallback = _definition_order(module)
        got = {"torch": fallback, "ops": fallback}
        order = "definition"
    return {profile: LayerSeq(name=name or label, tokens=tuple(tokens), paths=tuple(paths), profile=profile,
                              order=order, source=source, input_size=size, warnings=notes)
            for profile, (tokens, paths) in got.items()}


__all__ = ["extract", "trace", "build", "token_name", "apply_profile"]

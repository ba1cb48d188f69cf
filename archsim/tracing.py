"""Model → ``LayerSeq``: leaf-module calls recorded during one forward pass on the meta device."""
from __future__ import annotations

import copy
import logging
import numbers
import warnings
from typing import Union

from .errors import ArchsimError, ModelLoadError, UnknownNameError, UsageError, first_line, shorten
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
    base = _torch_base(module)
    if base is None and type(module).__module__.startswith("transformers."):
        from .models.hf_source import module_token  # GELUActivation is a GELU, LlamaRMSNorm an RMSNorm
        tok = module_token(type(module).__name__)
        if tok is not None:
            return tok
    return canonical(base or type(module).__name__)


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


def _record_forward(model, input_size: tuple[int, ...], inputs: list[tuple[tuple, dict]] | None = None,
                    fake: bool = False) -> dict[str, tuple[list[str], list[str]]]:
    """Run one forward pass on the meta device; record every layer call and every tensor op.

    Args:
        model: the module.
        input_size: the size of the default input, one zero image ``(1, *input_size)``.
        inputs: instead of it, ``(args, kwargs)`` candidates of meta tensors, tried in turn until
            one runs (a transformers model takes ``input_ids=`` or ``pixel_values=``).
        fake: a transformers model: run on fake tensors (``FakeTensorMode`` over the meta
            tensors), for which transformers skips its checks of tensor values (padding, packed
            sequences) as when compiling, where a meta tensor would fail for want of values; and
            leave integer (index and mask) arithmetic out of the ops.

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
    if not inputs:
        inputs = [((torch.zeros((1, *input_size), device="meta"),), {})]
    try:
        model.eval()
        with torch.no_grad(), torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for attempt, (args, kwargs) in enumerate(inputs, 1):
                calls.clear()
                # transformers models: their modules' formulas and their integer (index and mask)
                # arithmetic are not ops; other models' sequences stay as the zoo recorded them
                rec = OpRecorder(model, atomic=_hf_atomic(), integer_arithmetic=not fake)
                try:
                    if fake:
                        _fake_call(model, rec, args, kwargs)
                    elif _on_meta(model):
                        with rec:
                            model(*args, **kwargs)
                    else:  # a user's materialized model: swap in meta tensors without copying it
                        state = {k: torch.empty_like(v, device="meta") for k, v in
                                 list(model.named_parameters()) + list(model.named_buffers())}
                        with rec:
                            torch.func.functional_call(model, state, args, kwargs, strict=False)
                    break
                except Exception:
                    if attempt == len(inputs):
                        raise
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    if not calls and not rec.tokens:
        raise RuntimeError("the forward pass called no layer module")
    return {"torch": ([t for t, _ in calls], [p for _, p in calls]), "ops": (rec.tokens, rec.paths)}


def _fake_call(model, rec, args: tuple, kwargs: dict) -> None:
    """``model(*args, **kwargs)`` on fake copies of its weights and inputs, recorded by ``rec``."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._pytree import tree_map

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    to_fake = lambda t: mode.from_tensor(t.to("meta")) if isinstance(t, torch.Tensor) else t  # noqa: E731
    state = {k: to_fake(v) for k, v in list(model.named_parameters()) + list(model.named_buffers())}
    args, kwargs = tree_map(to_fake, (args, kwargs))
    from .models.hf_source import quiet
    # FakeTensorMode logs a traceback for each op it cannot run; the exception says it once.
    log = logging.getLogger("torch._subclasses.fake_tensor")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with quiet(), mode, rec:
            torch.func.functional_call(model, state, args, kwargs, strict=False)
    finally:
        log.setLevel(level)


def _materialized(model, input_size):
    import torch
    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        twin(torch.zeros((1, *input_size)))
    return twin


def _has_lazy(model) -> bool:
    from torch.nn.parameter import UninitializedParameter
    return any(isinstance(p, UninitializedParameter) for p in model.parameters())


def _hf_atomic():
    """transformers' one-op modules (their formula is not recorded op by op), once transformers is in use."""
    import sys
    if "transformers" not in sys.modules:
        return None
    from .models.hf_source import atomic_ops
    return atomic_ops


def _is_transformers(module) -> bool:
    import sys
    if "transformers" not in sys.modules:
        return False
    from .models.hf_source import is_transformers_model
    return is_transformers_model(module)


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
        except ModelLoadError:
            raise  # already one line naming the model (an hf: default config that cannot be built)
        except Exception as exc:
            if spec.source == "hf":  # never on CPU: a default config may be a 7B-parameter model
                raise ArchsimError(f"{spec.qualified}: building the model failed: "
                                   f"{type(exc).__name__}: {first_line(exc)}") from exc
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
    hf_model = _is_transformers(module)
    hook = spec.inputs if spec is not None else None
    if hook is None and hf_model:  # a transformers model given as a module
        from .models.hf_source import example_inputs as hook
    inputs = None
    size = tuple(input_size) if input_size is not None else _input_size_of(module, spec)
    order, notes = "execution", ()
    try:
        if hook is not None:  # the model's own dummy inputs (and the size they stand for)
            import torch
            with torch.device("meta"):
                size, inputs = hook(module, input_size)
        got = _record_forward(module, size, inputs, fake=hf_model)
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

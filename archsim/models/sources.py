"""Model names: listing and resolving torchvision, timm, archsim, Keras and transformers architectures, and user factories.

    >>> get_model("archsim:unet").qualified
    'archsim:unet'
    >>> list_models("cornet*", source="archsim")
    ['archsim:cornet_s']
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from ..errors import ModelLoadError, UnknownModelError, UnknownNameError

SOURCES = ("torchvision", "timm", "archsim", "keras", "hf")
PREFIXES = {"tv": "torchvision", "torchvision": "torchvision", "timm": "timm", "archsim": "archsim",
            "keras": "keras", "hf": "hf"}
# Sources a bare name (no ``source:``) is looked up in.  ``hf:`` always needs its prefix: its names
# are model types (``bert``), and a typo must not import transformers to suggest one.
BARE_SOURCES = ("torchvision", "timm", "archsim", "keras")


@dataclass(frozen=True)
class ModelSpec:
    """How to build one named model: where it comes from and what input it expects."""

    name: str
    source: str
    factory: Callable
    input_size: tuple[int, int, int] | None = None  # None: ask the built model (timm)
    # The forward pass's dummy inputs, when not one zero image of ``input_size``:
    # ``inputs(model, size or None) -> (size, [(args, kwargs), ...])``, candidates tried in turn
    # (``hf:`` models take token ids, pixels or audio, by keyword: hf_source.example_inputs).
    inputs: Callable | None = None

    @property
    def qualified(self) -> str:
        """``source:name``, unambiguous."""
        return qualified(self.source, self.name)


@lru_cache(maxsize=None)
def _names(source: str) -> tuple[str, ...]:
    if source == "keras":  # a fixed list: listing and did-you-mean never import Keras
        from .keras_source import KERAS_NAMES
        return KERAS_NAMES
    if source == "torchvision":
        import torchvision.models as tvm
        return tuple(sorted(tvm.list_models()))
    if source == "timm":
        import timm
        return tuple(timm.list_models())
    if source == "hf":  # the installed transformers' model types with an AutoModel (none without it)
        from .hf_source import hf_names
        return hf_names()
    from .registry import OWN_MODELS
    return tuple(OWN_MODELS.list())


def qualified(source: str, name: str) -> str:
    """``tv:name``, ``timm:name`` or ``archsim:name``."""
    return f"{'tv' if source == 'torchvision' else source}:{name}"


def list_models(pattern: str = "*", source: str | None = None) -> list[str]:
    """Qualified names (``tv:vgg16`` ...) whose bare name matches the shell-style ``pattern`` (case-insensitive).

    A pattern with a source prefix (``'timm:resnet*'``) lists only that source.
    """
    prefix, sep, bare = pattern.partition(":")
    if sep and prefix in PREFIXES and source in (None, "all"):
        source, pattern = prefix, bare
    if source in (None, "all"):
        sources = SOURCES
    elif PREFIXES.get(source, source) in SOURCES:
        sources = (PREFIXES.get(source, source),)
    else:
        raise UnknownNameError("source", source, list(SOURCES))
    pat = pattern.lower()
    return [qualified(s, n) for s in sources for n in _names(s) if fnmatch.fnmatchcase(n.lower(), pat)]


def _torchvision_spec(name: str) -> ModelSpec:
    import torchvision.models as tvm
    builder = tvm.get_model_builder(name)
    params = inspect.signature(builder).parameters
    kwargs = {"weights": None}
    if "weights_backbone" in params:  # never fetch ImageNet backbones for segmentation/detection
        kwargs["weights_backbone"] = None
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # silences torchvision's FutureWarning; random init either way

    def factory():
        return builder(**kwargs)

    size = 299 if name == "inception_v3" else 224
    return ModelSpec(name, "torchvision", factory, (3, size, size))


def _timm_spec(name: str) -> ModelSpec:
    import timm

    def factory():
        return timm.create_model(name, pretrained=False)

    return ModelSpec(name, "timm", factory, None)


def _archsim_spec(name: str) -> ModelSpec:
    from .registry import OWN_MODELS
    entry = OWN_MODELS.get(name)
    return ModelSpec(name, "archsim", entry.factory, entry.input_size)


def _keras_spec(name: str) -> ModelSpec:
    from .keras_source import build_keras

    def factory():
        return build_keras(name)

    return ModelSpec(name, "keras", factory, None)


def _hf_spec(name: str) -> ModelSpec:
    from .hf_source import build_hf, example_inputs

    def factory():
        return build_hf(name)

    return ModelSpec(name, "hf", factory, None, inputs=example_inputs)


_SPEC = {"torchvision": _torchvision_spec, "timm": _timm_spec, "archsim": _archsim_spec, "keras": _keras_spec,
         "hf": _hf_spec}


def get_model(name: str) -> ModelSpec:
    """A ``ModelSpec`` for ``name``, ``tv:name``, ``timm:name``, ``archsim:name``, ``keras:name`` or ``hf:type``.

    A bare name is looked up in torchvision, then timm, archsim and Keras (``hf:`` needs its prefix).
    Unknown names raise ``UnknownModelError`` with did-you-mean; an unknown ``source:`` prefix
    (``timn:resnet50``) raises ``UnknownNameError`` naming the source; an ``hf:`` name that is not a
    transformers model type (a checkpoint, ``org/model``) or needs transformers installed raises
    ``ModelLoadError`` in one line naming what is supported.
    """
    prefix, sep, bare = name.partition(":")
    if sep and prefix in PREFIXES:
        sources = (PREFIXES[prefix],)
        if sources == ("hf",):
            from .hf_source import refusal
            problem = refusal(bare)
            if problem is not None:
                raise problem
    elif sep and prefix.isidentifier():
        raise UnknownNameError("source", prefix, sorted(PREFIXES),
                               hint=f"write tv:, timm:, archsim:, keras: or hf: before the name, "
                                    f"or path/to/file.py:factory")
    else:
        bare, sources = name, BARE_SOURCES
    for s in sources:
        if bare in _names(s):
            return _SPEC[s](bare)
    pool = sorted({m for s in sources for m in _names(s)})
    raise UnknownModelError(name, pool)


def is_factory_reference(model: str) -> bool:
    """True for ``path/to/file.py:factory`` and ``package.module:factory`` strings.

    A single word before the colon counts only if it is an importable module, so a misspelt
    source (``timn:resnet50``) is reported as an unknown source, not as a failed import.
    """
    target, sep, attr = model.rpartition(":")
    if not sep or not target or not attr.isidentifier() or target in PREFIXES:
        return False
    if target.endswith(".py") or "/" in target or os.sep in target:
        return True
    if not all(part.isidentifier() for part in target.split(".")):
        return False
    if "." not in target:
        try:
            return importlib.util.find_spec(target) is not None
        except (ImportError, ValueError):
            return False
    return True


def load_factory(ref: str):
    """Build the ``nn.Module`` named by ``file.py:factory`` or ``package.module:factory``."""
    import torch.nn as nn
    target, _, attr = ref.rpartition(":")
    try:
        if target.endswith(".py") or os.sep in target:
            if not os.path.isfile(target):
                raise ModelLoadError(f"{target}: no such file (expected path/to/file.py:factory)")
            modname = "_archsim_user_" + os.path.splitext(os.path.basename(target))[0]
            spec = importlib.util.spec_from_file_location(modname, target)
            module = importlib.util.module_from_spec(spec)
            sys.modules[modname] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except ModelLoadError:
        raise
    except Exception as exc:  # user code: report whatever it raised, with the file
        raise ModelLoadError(f"{target}: import failed: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        raise ModelLoadError(f"{target} has no attribute {attr!r}")
    obj = getattr(module, attr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = obj if isinstance(obj, nn.Module) else obj()
    except Exception as exc:
        raise ModelLoadError(f"{ref}: building the model failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, nn.Module):
        raise ModelLoadError(f"{ref} returned {type(built).__name__}, not a torch.nn.Module")
    return built

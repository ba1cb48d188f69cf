"""``hf:MODEL_TYPE``: Hugging Face ``transformers`` architectures, built offline from their default configs.

The name after ``hf:`` is a transformers *model type* (``hf:bert``, ``hf:gpt2``, ``hf:t5``,
``hf:llama``, ``hf:vit``, ``hf:whisper`` ...), not a checkpoint: the model is the config class's
default configuration (``CONFIG_MAPPING[model_type]()``) built by ``AutoModel.from_config`` on the
meta device, in eval mode, so no weights are allocated and nothing is downloaded.  The listed
types are those with an ``AutoModel`` entry (``MODEL_MAPPING_NAMES``) in the installed transformers.

No hub access, ever: ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set (unless the user
set them) before transformers is imported, and a name that could only come from the hub (a
checkpoint such as ``hf:bert-base-uncased`` or ``hf:org/model``) is refused in one line naming
what is supported.

The forward pass gets a small dummy input built from the model's ``main_input_name`` and config
(:func:`example_inputs`): ``input_ids`` of 16 tokens, ``pixel_values`` of the configured image size,
``input_features`` (Whisper-like log-mel frames) or ``input_values`` (wav2vec-like raw audio), plus
``decoder_input_ids`` for encoder-decoder models.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import sys
import warnings
from functools import lru_cache
from typing import Any

from ..errors import ArchsimError, ModelLoadError, UnknownNameError, UsageError, first_line, shorten

INSTALL_HINT = "pip install 'archsim-neurn[hf]'"
SUPPORTED = ("hf: takes a transformers model type such as hf:bert, hf:gpt2, hf:t5 or hf:vit (see "
             "`archsim list 'hf:*'`), built offline from its default config")
TEXT_LENGTH = 16  # tokens of the dummy text input (and of the decoder input of encoder-decoder models)
AUDIO_SAMPLES = 16000  # one second of 16 kHz audio for raw-waveform models (wav2vec2, hubert ...)


def _offline() -> None:
    """Hub access off, before transformers is imported (a user's explicit setting is kept)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None and os.environ["HF_HUB_OFFLINE"] == "1":
        # huggingface_hub reads the variable once, when first imported (timm imports it early).
        hub.HF_HUB_OFFLINE = True


def installed() -> bool:
    """Whether transformers is installed (found without importing it)."""
    import importlib.util
    return importlib.util.find_spec("transformers") is not None


def import_transformers() -> Any:
    """``transformers``, imported in offline mode.

    Raises:
        ModelLoadError: transformers is not installed (the message says how to install it).
    """
    _offline()
    try:
        import transformers
    except ImportError:
        raise ModelLoadError(f"hf: models need Hugging Face transformers: {INSTALL_HINT}") from None
    return transformers


@lru_cache(maxsize=1)
def hf_names() -> tuple[str, ...]:
    """The model types ``hf:`` lists: those with an ``AutoModel`` entry, sorted (empty without transformers)."""
    if not installed():
        return ()
    import_transformers()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES
    return tuple(sorted(t for t in MODEL_MAPPING_NAMES if t in CONFIG_MAPPING_NAMES))


def refusal(name: str) -> ArchsimError | None:
    """The one-line error for an ``hf:`` name that is not a buildable model type (None when it is one).

    A hub repository (``org/model``) or checkpoint name (``bert-base-uncased``) is a ``UsageError``
    and any other unknown name an ``UnknownNameError`` with did-you-mean (both exit 2); a missing
    transformers is a ``ModelLoadError`` saying how to install it.
    """
    shown = f"hf:{shorten(name)}"
    if "/" in name:
        return UsageError(f"{shown} is a hub repository, and archsim never downloads; {SUPPORTED}")
    if not installed():
        return ModelLoadError(f"hf: models need Hugging Face transformers: {INSTALL_HINT}")
    names = hf_names()
    if name in names:
        return None
    if any(c in name for c in ".:\\") or any(name.startswith(t + "-") or name.startswith(t + "_") for t in names):
        return UsageError(f"{shown} is a checkpoint name, and archsim never downloads one; {SUPPORTED}")
    return UnknownNameError("transformers model type", name, names,
                            hint="hf: takes a model type, built from its default config offline; "
                                 "see `archsim list 'hf:*'`")


def build_hf(model_type: str) -> Any:
    """The ``AutoModel`` of ``model_type``'s default config, on the meta device, in eval mode.

    Raises:
        ArchsimError: not a listed model type (see :func:`refusal`), transformers missing, or the
            default config cannot be built (``ModelLoadError``).
    """
    problem = refusal(model_type)
    if problem is not None:
        raise problem
    import torch
    import_transformers()
    from transformers import AutoModel
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            config = CONFIG_MAPPING[model_type]()
        except Exception as exc:  # e.g. a composite config that needs its parts given
            raise ModelLoadError(f"hf:{model_type}: its default config cannot be built "
                                 f"({type(exc).__name__}: {first_line(exc, 160)})") from exc
        with torch.device("meta"), quiet():
            # Mixture-of-experts layers as batched matmuls over the routed experts: the default
            # grouped_mm needs bfloat16 and the eager loop reads which experts were hit (values).
            model = AutoModel.from_config(config, experts_implementation="batched_mm")
    return model.eval()


@contextlib.contextmanager
def quiet():
    """transformers' own log messages (deprecations, slow-kernel notices) off while building."""
    from transformers.utils import logging as hf_logging
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


_SUBCONFIGS = ("vision_config", "audio_config", "encoder_config", "text_config", "encoder", "backbone_config")


def _cfg(config: Any, *keys: str, default: Any = None) -> Any:
    """The first of ``keys`` set on ``config`` or, failing that, on one of its sub-configs."""
    for cfg in (config, *(getattr(config, s, None) for s in _SUBCONFIGS)):
        if cfg is None or isinstance(cfg, dict):
            continue
        for key in keys:
            value = getattr(cfg, key, None)
            if value is not None:
                return value
    return default


def _side(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        value = value[-1]
    return int(value)


def _image(config: Any, size: tuple[int, ...] | None) -> tuple[int, int, int]:
    if size is not None and len(size) == 3:
        return tuple(size)
    channels = _cfg(config, "num_channels", "in_channels", "num_input_channels", default=3)
    image = _cfg(config, "image_size", "img_size", "input_size", default=224)
    if isinstance(image, (list, tuple)) and len(image) >= 2:
        h, w = int(image[-2]), int(image[-1])
    else:
        h = w = _side(image if not isinstance(image, dict) else 224)
    if size is not None:
        h = w = size[-1]
    return (int(channels if isinstance(channels, int) else 3), h, w)


def _input(name: str, config: Any, size: tuple[int, ...] | None) -> Any:
    """The dummy tensor for one forward argument (None: archsim does not know how to make it)."""
    import torch
    length = size[-1] if size else TEXT_LENGTH
    if name in ("input_ids", "decoder_input_ids", "labels"):
        return torch.zeros((1, length if name == "input_ids" else TEXT_LENGTH), dtype=torch.long)
    if name == "pixel_values":
        frames = _cfg(config, "num_frames")
        if isinstance(frames, int) and frames > 0:  # a video model: (batch, frames, C, H, W)
            return torch.zeros((1, frames, *_image(config, size)))
        return torch.zeros((1, *_image(config, size)))
    if name == "input_features":
        mels = _cfg(config, "num_mel_bins", "feature_size", "input_feat_per_channel", default=80)
        frames = _cfg(config, "max_source_positions", default=None)
        if frames is not None and _cfg(config, "num_mel_bins") is not None:
            # Whisper-like: log-mel frames, two per encoder position (the encoder checks the length).
            return torch.zeros((1, int(mels), 2 * int(frames) if not size else size[-1]))
        channels = _cfg(config, "input_channels", default=1)
        return torch.zeros((1, length if size else 100, int(mels) * int(channels)))  # (batch, frames, features)
    if name == "input_values":
        mels, frames = _cfg(config, "num_mel_bins"), _cfg(config, "max_length")
        if mels is not None and frames is not None:  # a spectrogram (audio-spectrogram-transformer)
            return torch.zeros((1, int(frames), int(mels)))
        samples = size[-1] if size else AUDIO_SAMPLES
        channels = _cfg(config, "audio_channels")
        if channels is not None:  # a codec (encodec, dac ...): (batch, channels, samples)
            return torch.zeros((1, int(channels), samples))
        return torch.zeros((1, samples))
    return None


# Inputs a forward may take besides its main one, for models that need every modality.
_MODALITIES = ("input_ids", "pixel_values", "input_features", "input_values")


def example_inputs(model: Any, size: tuple[int, ...] | None = None
                   ) -> tuple[tuple[int, ...], list[tuple[tuple, dict]]]:
    """Dummy inputs for one forward pass of a transformers model (tensors made on the current device).

    Args:
        model: a ``transformers.PreTrainedModel``.
        size: the main input's size without the batch dimension, or None for the config's own
            (an image's ``(C, H, W)``; for a sequence only the last number counts, its length).

    Returns:
        ``(size, candidates)``: the main input's size without the batch dimension, and the
        keyword inputs to try in turn, ``[((), kwargs), ...]``: every modality the forward accepts
        (CLIP-like models run both towers), then the main input alone (plus ``decoder_input_ids``
        for encoder-decoder models, in both), for models whose extra inputs must match (LLaVA's
        image tokens).
    """
    config = model.config
    main = getattr(model, "main_input_name", "input_ids") or "input_ids"
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        params = {}
    first = {main: _input(main, config, size)}
    if first[main] is None:
        first = {main: _input("input_ids", config, size)}
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        first["decoder_input_ids"] = _input("decoder_input_ids", config, None)
    shape = tuple(next(iter(first.values())).shape[1:])
    if "use_cache" in params:  # a key/value cache only concatenates past states: not architecture
        first["use_cache"] = False

    more = dict(first)
    for name in _MODALITIES:
        if name in params and name not in more:
            tensor = _input(name, config, None)
            if tensor is not None:
                more[name] = tensor
    candidates = [((), first)] if more.keys() == first.keys() else [((), more), ((), first)]
    if main == "input_values" and first[main].ndim == 2:  # a codec without audio_channels: (batch, 1, samples)
        candidates.append(((), {**first, main: first[main][:, None]}))
    return shape, candidates


# transformers' own leaf modules that are a canonical layer, by class name (torch profile; in the ops
# profile each is one op, not the formula it runs: NewGELUActivation's tanh formula is one GELU).
MODULE_TOKENS: dict[str, str] = {
    "GELUActivation": "GELU", "NewGELUActivation": "GELU", "FastGELUActivation": "GELU", "GELUTanh": "GELU",
    "QuickGELUActivation": "GELU", "ClippedGELUActivation": "GELU", "AccurateGELUActivation": "GELU",
    "PytorchGELUTanh": "GELU", "SiLUActivation": "SiLU", "MishActivation": "Mish",
    "ReLUSquaredActivation": "SquaredReLU", "LinearActivation": "Identity",  # an identity: never a layer
    "Conv1D": "Linear",  # GPT-2's linear layer (x @ W + b with the weight transposed), not a convolution
}
# T5's family names its RMS norm (no mean subtraction, no bias) "LayerNorm".
RMS_LAYER_NORMS = frozenset({"T5LayerNorm", "MT5LayerNorm", "LongT5LayerNorm", "UMT5LayerNorm",
                             "Pix2StructLayerNorm", "Pop2PianoLayerNorm", "SwitchTransformersLayerNorm",
                             "UdopLayerNorm"})
# Tokens whose module computes a table of positions, not an operation on the data: no op.
_TABLES = frozenset({"RotaryEmbedding"})


def module_token(cls_name: str) -> str | None:
    """The canonical token of a transformers module class (None: keep its class name).

    >>> module_token("LlamaRMSNorm"), module_token("T5LayerNorm"), module_token("NewGELUActivation")
    ('RMSNorm', 'RMSNorm', 'GELU')
    """
    if cls_name in MODULE_TOKENS:
        return MODULE_TOKENS[cls_name]
    if cls_name.endswith(("RMSNorm", "RmsNorm")) or cls_name in RMS_LAYER_NORMS:
        return "RMSNorm"
    if cls_name.endswith("LayerNorm"):
        return "LayerNorm"
    if cls_name.endswith("RotaryEmbedding"):  # LlamaRotaryEmbedding, MistralRotaryEmbedding ...
        return "RotaryEmbedding"
    return None


def _from_transformers(module: Any) -> bool:
    return type(module).__module__.startswith("transformers.")


def atomic_ops(module: Any) -> tuple[str, ...] | None:
    """The ops-profile tokens of a transformers leaf module that is one canonical op (None: record its ops).

    Used as :class:`archsim.optrace.OpRecorder`'s ``atomic``; a rotary-embedding module (the cos/sin
    table of positions) is no op, like position ids; its use on queries and keys is recorded.
    """
    if not _from_transformers(module) or next(module.children(), None) is not None:
        return None
    tok = module_token(type(module).__name__)
    if tok is None:
        return None
    return () if tok in _TABLES or tok == "Identity" else (tok,)


def is_transformers_model(module: Any) -> bool:
    """True for a ``transformers.PreTrainedModel`` (checked without importing transformers)."""
    return any(c.__module__.startswith("transformers.") and c.__name__ == "PreTrainedModel"
               for c in type(module).__mro__)


__all__ = ["INSTALL_HINT", "MODULE_TOKENS", "SUPPORTED", "atomic_ops", "build_hf", "example_inputs", "hf_names",
           "import_transformers", "installed", "is_transformers_model", "module_token", "quiet", "refusal"]

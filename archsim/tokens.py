"""Layer tokens: canonical type names, one-letter codes, the ``torch``/``keras`` profiles and ``LayerSeq``.

Every token has one letter, and no two tokens share one.  A one-letter *string* names the
fixed tokens (``C`` is Conv2d); a token *name* of one character, such as a class called ``M``,
is a token of its own and gets its own letter:

    >>> LayerSeq.from_letters("CCM").tokens
    ('Conv2d', 'Conv2d', 'MaxPool2d')
    >>> letter("MaxPool2d"), letter("M") == "M"
    ('M', False)
"""
from __future__ import annotations

import threading
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from .errors import UsageError

# torch: every leaf-module call; keras: a Keras model's own layer list (the paper's rule);
# keras-like: a PyTorch model's calls folded the way Keras lists layers (an approximation);
# ops: every architecture-defining tensor operation, module or functional (archsim.optrace).
PROFILES = ("torch", "keras", "keras-like", "ops")
NO_KERAS_LIST = ("a PyTorch model has no Keras layer list: use a keras: model (e.g. keras:VGG16) for the real one, "
                 "or the keras-like profile (PyTorch layers folded the way Keras lists them, an approximation)")
# What compare / nearest / matrix use unless told: the profile under which the same architecture
# from two libraries scores >= 0.95 (docs/equivalence.md).  `extract` and `tokens` keep `torch`,
# the paper's leaf-module view; presets keep the profile of each entry.
DEFAULT_PROFILE = "ops"
# Placeholders, never layers, in every profile: nn.Identity computes nothing (timm puts one
# wherever a block has no norm, activation or pooling), and Flatten only reshapes (torchvision
# calls torch.flatten instead; the paper's Keras rule drops Flatten too).
PLACEHOLDERS = frozenset({"Identity", "Flatten"})

# One character per canonical token.  These codes are part of the public contract
# (golden files, the paper's strings), so entries are only ever added, never changed.
LETTERS: dict[str, str] = {
    "Conv2d": "C", "ReLU": "R", "MaxPool2d": "M", "AdaptiveAvgPool2d": "A",
    "Linear": "L", "Dropout": "D", "BatchNorm2d": "B", "AvgPool2d": "P",
    "GELU": "G", "SiLU": "S", "Hardswish": "H", "Hardsigmoid": "h", "Sigmoid": "s",
    "Tanh": "T", "LayerNorm": "N", "GroupNorm": "n", "Identity": "I", "Flatten": "F",
    "Softmax": "X", "ReLU6": "6", "LeakyReLU": "K", "ELU": "e", "PReLU": "p",
    "Mish": "m", "Dropout2d": "d", "DropPath": "Y", "Upsample": "U",
    "UpsamplingBilinear2d": "u", "Conv1d": "c", "Conv3d": "3", "ConvTranspose2d": "t",
    "AdaptiveMaxPool2d": "a", "InstanceNorm2d": "i", "ZeroPad2d": "Z",
    "MultiheadAttention": "Q", "Embedding": "E", "BatchNorm1d": "b", "MaxPool3d": "W",
    "AvgPool3d": "w", "AdaptiveAvgPool3d": "V", "BatchNorm3d": "O", "LocalResponseNorm": "l",
    "ChannelShuffle": "x", "PixelShuffle": "q", "SELU": "j", "GLU": "g",
    "Softplus": "+", "CELU": "k", "ConstantPad2d": "z", "ReflectionPad2d": "r",
    "Dropout1d": "1", "AlphaDropout": "!", "MaxPool1d": "o", "AvgPool1d": "v",
    "AdaptiveAvgPool1d": "@", "LayerScale": "y", "SelectAdaptivePool2d": "$",
    "StochasticDepth": "#", "Attention": "&",
    # Added with the ops profile: residual adds, gating products, joins and other functional ops.
    "Add": "=", "Mul": "*", "Cat": "%", "Split": "/", "MatMul": "~", "Mean": "f", "Pad": "0",
    "RMSNorm": "2", "Hardtanh": "4", "Erf": "5",
}

# Other names of the same operation, folded onto one canonical token.
ALIASES: dict[str, str] = {
    "Swish": "SiLU", "HardSwish": "Hardswish", "HardSigmoid": "Hardsigmoid",
    "GELUTanh": "GELU", "QuickGELU": "GELU", "SiLUExpand": "SiLU",
    "NonDynamicallyQuantizableLinear": "Linear", "LazyConv2d": "Conv2d", "LazyLinear": "Linear",
    "SyncBatchNorm": "BatchNorm2d",
}

ACTIVATIONS = frozenset({
    "ReLU", "ReLU6", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Sigmoid", "Tanh",
    "LeakyReLU", "ELU", "PReLU", "Mish", "SELU", "CELU", "Softplus", "Softmax", "GLU",
    "Hardtanh", "LogSoftmax", "Softsign", "Tanhshrink", "RReLU", "Threshold",
    "StarReLU", "SquaredReLU", "GELUTanh", "QuickGELU",
})
DROPPED_BY_KERAS = frozenset({
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "DropPath", "DropBlock2d", "StochasticDepth", "Identity", "Flatten",
})
GLOBAL_POOLS = frozenset({
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "SelectAdaptivePool2d",
})
CLASSIFIER = frozenset({"Linear"})

# Rare layer types the package knows: every other type in the shipped zoo cache and the names
# the profiles refer to.  Their letters are assigned when this module is imported, in sorted
# order, so they are the same in every process and no other token can take them.
KNOWN: tuple[str, ...] = (
    # ops-profile tokens without a fixed letter (archsim.optrace / archsim.onnxgraph)
    "AdaptiveMaxPool1d", "AdaptiveMaxPool3d", "ConvTranspose1d", "ConvTranspose3d", "InstanceNorm1d",
    "InstanceNorm3d", "LPPool2d",
    # Keras layer classes without a torch.nn twin (archsim.models.keras_source)
    "Cropping2d", "CustomScaleLayer", "DepthwiseConv2d", "Normalization", "Rescaling", "Reshape",
    "SeparableConv2d", "Activation",
    "Affine", "BlurPool2d", "CondConv2d", "Dct1d", "Downsample", "EvoNorm2dS0", "EvoNorm2dS0a",
    "FastAdaptiveAvgPool", "FilterResponseNormTlu2d", "Flat", "GammaAct", "Gemma4RotaryEmbedding2D",
    "Gemma4VisionPooler", "GlobalResponseNorm", "LSTM", "LayerScale2d", "LearnableAffineBlock",
    "Permute", "PosEmbedRel", "RadixSoftmax", "RelPosBias", "RmsNorm", "RmsNorm2d", "RmsNormFp32",
    "Scale", "SelectSeq", "Sequential", "SimpleNorm2d", "SpaceToDepth", "SwapAxes", "Unfold",
    "Unroll", "WindowDepartition", "WindowPartition",
)

# Known tokens added later get their letters after KNOWN's (an addition must never move a letter
# assigned before it): transformers' modules without a torch.nn twin (archsim.models.hf_source)
# and the other module classes of the hf: zoo.
KNOWN_LATER: tuple[str, ...] = (
    "RotaryEmbedding",
    "AXK1TopkRouter", "AXK2TopkRouter", "AriaTextTopKRouter", "BailingHybridRMSNormGated",
    "BailingHybridTopkRouter", "BambaRMSNormGated", "BeamTopKRouter", "BeitDropPath", "BloomGelu",
    "CanaryPositionalEmbedding", "Cohere2MoeTopKRouter", "ConditionalDetrFrozenBatchNorm2d",
    "ConditionalDetrSinePositionEmbedding", "ConvNextV2GRN", "CpmAntSegmentPositionEmbedding",
    "CvtDropPath", "CvtSelfAttentionLinearProjection", "DINOv3ViTLayerScale",
    "DINOv3ViTRopePositionEmbedding", "DabDetrFrozenBatchNorm2d", "DabDetrSinePositionEmbedding",
    "Data2VecAudioPadLayer", "Data2VecVisionDropPath", "DeepseekV32TopkRouter", "DeepseekV3TopkRouter",
    "DeformableDetrFrozenBatchNorm2d", "DeformableDetrSinePositionEmbedding", "DetrFrozenBatchNorm2d",
    "DetrSinePositionEmbedding", "Dinov2LayerScale", "Dinov2WithRegistersLayerScale", "DonutDropPath",
    "DoryL2Norm", "Dots3NoteTextTopkRouter", "Ernie4_5_MoeStatics", "Ernie4_5_VLMoeMoeStatics",
    "ExaoneMoeTopkRouter", "FNetBasicFourierTransform", "FlexOlmoTopKRouter", "FlintTopKRouter",
    "FocalNetDropPath", "Glm4MoeLiteTopkRouter", "Glm4MoeTopkRouter", "GlmMoeDsaTopkRouter",
    "GlpnDropPath", "GptOssExperts", "GptOssTopKRouter", "GraniteDoclingPositionEmbedding",
    "GraniteMoeHybridRMSNormGated", "GraniteMoeHybridTopKRouter", "GraniteMoeSWATopKRouter",
    "GraniteMoeSharedTopKRouter", "GraniteMoeTopKRouter", "HYV3TopKRouter", "HYV4Experts",
    "HYV4TopkRouter", "HYV4VLExperts", "HYV4VLTopkRouter", "HubertSamePadLayer", "Inkling2L2Clip",
    "Inkling2LogScale", "Inkling2LoopL2Clip", "Inkling2LoopLogScale", "Inkling2LoopScaledL2Clip",
    "Inkling2LoopSoftcap", "Inkling2ScaledL2Clip", "Inkling2Softcap", "InklingRelativeLogits",
    "InklingTopkRouter", "InterpolateInitialPositionEmbeddings", "InterpolateMidPositionEmbeddings",
    "JambaTopKRouter", "KimiLinearRMSNormGated", "KimiLinearTopkRouter", "Kolibri1TopKRouter",
    "Kosmos2_5TextSinusoidalPositionalEmbedding", "LagunaTopKRouter", "LaraMiniRMSNormGated",
    "LaraMiniTopKRouter", "LevitSubsample", "Llama4TextL2Norm", "M2M100SinusoidalPositionalEmbedding",
    "MambaRMSNormGated", "Mask2FormerSinePositionEmbedding", "MaskFormerDropPath",
    "MaskFormerSinePositionEmbedding", "MatMulWrapper", "MellumTopKRouter", "MgpStrDropPath",
    "MiMoV2FlashTopkRouter", "MiniMaxM2TopKRouter", "MiniMaxM3VLExperts", "MiniMaxM3VLTopKRouter",
    "MiniMaxTopKRouter", "Mistral4TopkRouter", "MistralLarge4TextSoftmaxScaling",
    "MistralLarge4TextTopkRouter", "MixtralTopKRouter", "MultiScaleDeformableAttention",
    "MuseSparkResidualGate", "NemotronAsrStreamingEncoderRelPositionalEncoding",
    "NemotronHRMSNormGated", "NemotronHTopkRouter", "NeoMMEExclusiveSelfAttention", "NoNorm",
    "OlmoHybridRMSNormGated", "OlmoeTopKRouter", "OpenAIPrivacyFilterExperts",
    "OpenAIPrivacyFilterTopKRouter", "PPDocLayoutV3FrozenBatchNorm2d",
    "PPDocLayoutV3SinePositionEmbedding", "PPDocLayoutV4FrozenBatchNorm2d", "PPDocLayoutV4S2RFusion",
    "PPDocLayoutV4SinePositionEmbedding", "PPLCNetV3LearnableAffineBlock",
    "ParakeetEncoderRelPositionalEncoding", "PegasusXSinusoidalPositionalEmbedding",
    "PoolFormerDropPath", "QianfanOCRDropPath", "QuantAct", "QuantEmbedding", "QuantLinear",
    "Qwen2MoeTopKRouter", "Qwen3MoeTopKRouter", "Qwen3NextRMSNormGated", "Qwen3NextTopKRouter",
    "Qwen3VLMoeTextTopKRouter", "Qwen3_5MoeRMSNormGated", "Qwen3_5MoeTopKRouter", "Qwen3_5RMSNormGated",
    "RTDetrFrozenBatchNorm2d", "RTDetrSinePositionEmbedding", "RadioInputConditioner",
    "RadioLayerScale", "RecurrentGemmaRglru", "SEWDSamePadLayer", "SEWSamePadLayer",
    "Sam2SinePositionEmbedding", "Sam3LiteTextTextPositionEmbedding", "Sam3SinePositionEmbedding",
    "Sam3TrackerPositionalEmbedding", "SamHQPositionalEmbedding", "SamPositionalEmbedding",
    "Sapiens2LayerScale", "Sapiens2RopePositionEmbedding", "SeamlessM4TSinusoidalPositionalEmbedding",
    "SeamlessM4Tv2SinusoidalPositionalEmbedding", "SegformerDropPath", "Snake1d", "SolarOpenTopkRouter",
    "Speech2TextSinusoidalPositionalEmbedding", "SqrtSoftplusActivation", "SquaredReLU",
    "StableDropout", "Swin2SRPatchUnEmbeddings", "SwinDropPath", "SwinRelativePositionBias",
    "Swinv2DropPath", "TableTransformerFrozenBatchNorm2d", "TableTransformerSinePositionEmbedding",
    "Tipsv2SinusoidalPositionalEmbedding", "Tipsv2VisionLayerScale", "UniSpeechSamePadLayer",
    "UniSpeechSatSamePadLayer", "UnlimitedOcrTextTopkRouter", "Wav2Vec2ConformerRelPositionalEmbedding",
    "Wav2Vec2SamePadLayer", "WavLMSamePadLayer", "XGLMSinusoidalPositionalEmbedding", "XIELUActivation",
    "Zamba2RMSNormGated", "ZayaQKNorm", "ZayaResidualScaling", "_WeightNorm", "xLSTMBackend",
)

# Letters of the other tokens come from a pool of non-ASCII code points (Latin-1 and Latin
# Extended-A/B letters, then the CJK block: about 21,000), so no fixed letter is ever in it.
_POOL_RANGES = ((0x00C0, 0x0250), (0x4E00, 0x9FFF))
_POOL_SIZE = sum(hi - lo for lo, hi in _POOL_RANGES)
_NOT_LETTERS = frozenset("\u00d7\u00f7")  # × and ÷ sit inside Latin-1's letters
_GAP = "-"  # the gap column of a formatted alignment


def canonical(name: str) -> str:
    """Canonical token for a layer type name (aliases folded)."""
    return ALIASES.get(name, name)


def _in_pool(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp < hi for lo, hi in _POOL_RANGES) and ch not in _NOT_LETTERS


def _probes(token: str) -> Iterator[str]:
    """The pool characters a token tries, in order: from a hash of its name, then the next ones."""
    h = zlib.crc32(token.encode("utf-8", "surrogatepass"))
    for probe in range(_POOL_SIZE):
        k = (h + probe) % _POOL_SIZE
        for lo, hi in _POOL_RANGES:
            if k < hi - lo:
                ch = chr(lo + k)
                break
            k -= hi - lo
        if ch not in _NOT_LETTERS:
            yield ch


def _shows_itself(token: str) -> bool:
    """A one-character token that can be its own letter: visible, and no fixed or pool letter.

    Such characters come from letter strings (``--tokens``, ``from_letters``) and can never be
    assigned to another token, so showing them as themselves keeps every letter unique.
    """
    return (len(token) == 1 and token not in _FIXED_LETTERS and token != _GAP and not _in_pool(token)
            and unicodedata.category(token)[0] in "LNPS")


class _Alphabet:
    """The token <-> letter assignments of one process.

    A token's letter is a function of its name alone: its fixed letter (``LETTERS``), itself
    (``_shows_itself``), or the first of its ``_probes`` that no fixed or ``KNOWN`` token holds.
    The only exception is two unknown tokens whose names hash to the same character: letters
    stay unique, so the one assigned later takes its next probe (chance about u²/43,000 for u
    unknown layer types in one process).  ``letters`` assigns the new tokens of one sequence in
    sorted order, so within a sequence even that case does not depend on the order of layers.
    """

    def __init__(self) -> None:
        self.code: dict[str, str] = dict(LETTERS)
        self.owner: dict[str, str] = {v: k for k, v in LETTERS.items()}
        self._lock = threading.Lock()
        self.assign(sorted(set(_KNOWN_ALL)))
        self.assign(KNOWN_LATER)  # after: no letter of the first group moves

    def letter(self, token: str) -> str:
        got = self.code.get(token)
        if got is not None:
            return got
        with self._lock:
            got = self.code.get(token)
            if got is not None:
                return got
            if _shows_itself(token):
                ch = token
            else:
                for ch in _probes(token):
                    if ch not in self.owner:
                        break
                else:  # pragma: no cover  (about 21,000 characters)
                    raise RuntimeError("token alphabet exhausted")
            self.code[token] = ch
            self.owner[ch] = token
            _decode.cache_clear()  # a character may now stand for this token
            return ch

    def assign(self, tokens: Iterable[str]) -> None:
        """Give letters to the tokens that have none yet, in sorted order."""
        for t in sorted(set(tokens) - self.code.keys()):
            self.letter(t)


@lru_cache(maxsize=512)
def _decode(s: str) -> tuple[str, ...]:
    # Cached: all-pairs loops decode the same strings again and again.
    return tuple(map(_ALPHABET.owner.get, s, s))


_FIXED_LETTERS = frozenset(LETTERS.values())
assert len(_FIXED_LETTERS) == len(LETTERS), "LETTERS must be collision-free"
assert not any(_in_pool(c) or c == _GAP for c in _FIXED_LETTERS), "fixed letters must stay outside the pool"
_KNOWN_ALL = (set(KNOWN) | ACTIVATIONS | DROPPED_BY_KERAS | GLOBAL_POOLS) - LETTERS.keys()
_ALPHABET = _Alphabet()


def letter(token: str) -> str:
    """The one-character code of a token, unique among all tokens of this process.

    Canonical layers have a fixed letter (``LETTERS``); any other token, a one-character class
    name such as ``M`` included, gets a character of the hashed pool (see ``_Alphabet``), except
    a visible character outside ``LETTERS`` and the pool, which stands for itself.
    """
    return _ALPHABET.letter(token)


def letters(tokens: Iterable[str]) -> str:
    """One-letter string of a token sequence (new tokens get their letters in sorted order)."""
    toks = list(tokens)
    _ALPHABET.assign(toks)
    return "".join(_ALPHABET.letter(t) for t in toks)


def tokens_from_letters(s: str) -> tuple[str, ...]:
    """Tokens of a one-letter string: fixed and known letters, and letters shown earlier in
    this process, map to their tokens; any other character is a token of its own."""
    return _decode(s) if len(s) > 1 else tuple(map(_ALPHABET.owner.get, s, s))


def apply_profile(tokens: Sequence[str], paths: Sequence[str], profile: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Turn a ``torch`` (every leaf call) token list into the requested profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if profile == "torch":
        return tuple(tokens), tuple(paths)
    if profile == "ops":
        raise ValueError("the ops profile is recorded during the forward pass: extract(model, profile='ops')")
    if profile == "keras":
        raise UsageError(NO_KERAS_LIST)
    kept: list[tuple[str, str]] = []
    for tok, path in zip(tokens, paths):
        if tok in DROPPED_BY_KERAS:
            continue
        if tok in ACTIVATIONS and kept:  # Keras puts the activation inside the layer before it
            continue
        kept.append((tok, path))
    # The global pooling that only feeds the classifier is not a layer of its own in Keras' strings.
    for i in range(len(kept) - 1, -1, -1):
        if kept[i][0] in GLOBAL_POOLS:
            if all(t in CLASSIFIER for t, _ in kept[i + 1:]):
                del kept[i]
            break
        if kept[i][0] not in CLASSIFIER:
            break
    return tuple(t for t, _ in kept), tuple(p for _, p in kept)


@dataclass(frozen=True)
class LayerSeq:
    """A model's layer tokens in execution (or, as a fallback, definition) order."""

    name: str
    tokens: tuple[str, ...]
    paths: tuple[str, ...] = ()
    profile: str = "torch"
    order: str = "execution"
    source: str = "custom"
    input_size: tuple[int, ...] | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "paths", tuple(self.paths) if self.paths else ("",) * len(self.tokens))
        if len(self.paths) != len(self.tokens):
            raise ValueError("paths and tokens must have the same length")

    def __str__(self) -> str:
        return letters(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __iter__(self):
        return iter(self.tokens)

    def __getitem__(self, i):
        return self.tokens[i]

    def __repr__(self) -> str:
        s = str(self)
        short = s if len(s) <= 40 else s[:37] + "..."
        return (f"LayerSeq({self.name!r}, {len(self)} tokens, profile={self.profile!r}, "
                f"order={self.order!r}, source={self.source!r}, {short!r})")

    def counts(self) -> dict[str, int]:
        """How many times each token occurs."""
        out: dict[str, int] = {}
        for t in self.tokens:
            out[t] = out.get(t, 0) + 1
        return out

    def with_profile(self, profile: str) -> "LayerSeq":
        """This sequence under another profile (``torch`` to ``keras-like``; a Keras layer list is all three)."""
        if profile == self.profile:
            return self
        if profile == "ops":
            raise ValueError("the ops profile is recorded during the forward pass, not derived from another "
                             "profile: extract(model, profile='ops')")
        if self.source == "keras" and {self.profile, profile} <= {"torch", "keras", "keras-like"}:
            # A Keras model's layers are its modules and already Keras's list: one sequence, three names.
            return LayerSeq(self.name, self.tokens, self.paths, profile, self.order, self.source,
                            self.input_size, self.warnings)
        if self.profile != "torch":
            raise ValueError("only a torch-profile sequence can be converted")
        toks, paths = apply_profile(self.tokens, self.paths, profile)
        return LayerSeq(self.name, toks, paths, profile, self.order, self.source, self.input_size, self.warnings)

    @classmethod
    def from_letters(cls, s: str, name: str = "tokens", profile: str = "torch") -> "LayerSeq":
        """A sequence from a one-letter string (inverse of ``str(seq)``, see ``tokens_from_letters``)."""
        return cls(name=name, tokens=tokens_from_letters(s), profile=profile, source="letters")

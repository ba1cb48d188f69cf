"""Layer tokens: canonical type names, one-letter codes, the ``torch``/``keras`` profiles and ``LayerSeq``."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

PROFILES = ("torch", "keras")

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

# Letters for names outside LETTERS: hashed into Latin-1/Latin Extended-A/B, then the
# CJK block, with linear probing; a process-wide table keeps every assignment unique.
_EXTRA_RANGES = ((0x00C0, 0x0250), (0x4E00, 0x9FFF))
_assigned: dict[str, str] = dict(LETTERS)
_taken: dict[str, str] = {v: k for k, v in LETTERS.items()}
assert len(_taken) == len(LETTERS), "LETTERS must be collision-free"


def canonical(name: str) -> str:
    """Canonical token for a layer type name (aliases folded)."""
    return ALIASES.get(name, name)


def letter(token: str) -> str:
    """The one-character code of a token: fixed for common layers, hashed and unique otherwise."""
    got = _assigned.get(token)
    if got is not None:
        return got
    if len(token) == 1:  # already a letter (sequences given as strings)
        return token
    size = sum(hi - lo for lo, hi in _EXTRA_RANGES)
    h = zlib.crc32(token.encode())
    for probe in range(size):
        k = (h + probe) % size
        cp = None
        for lo, hi in _EXTRA_RANGES:
            if k < hi - lo:
                cp = lo + k
                break
            k -= hi - lo
        ch = chr(cp)
        if ch in ("\u00d7", "\u00f7") or ch in _taken:
            continue
        _taken[ch] = token
        _assigned[token] = ch
        return ch
    raise RuntimeError("token alphabet exhausted")  # pragma: no cover  (≈ 21,000 slots)


def letters(tokens: Iterable[str]) -> str:
    """One-letter string of a token sequence."""
    return "".join(letter(t) for t in tokens)


def apply_profile(tokens: Sequence[str], paths: Sequence[str], profile: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Turn a ``torch`` (every leaf call) token list into the requested profile."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if profile == "torch":
        return tuple(tokens), tuple(paths)
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
        """This sequence under another profile (only from ``torch`` to ``keras``)."""
        if profile == self.profile:
            return self
        if self.profile != "torch":
            raise ValueError("only a torch-profile sequence can be converted")
        toks, paths = apply_profile(self.tokens, self.paths, profile)
        return LayerSeq(self.name, toks, paths, profile, self.order, self.source, self.input_size, self.warnings)

    @classmethod
    def from_letters(cls, s: str, name: str = "tokens") -> "LayerSeq":
        """A sequence from a one-letter string (inverse of ``str(seq)``)."""
        toks = []
        for ch in s:
            tok = _taken.get(ch)
            toks.append(tok if tok is not None else ch)
        return cls(name=name, tokens=tuple(toks), source="letters")

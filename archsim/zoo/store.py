"""The zoo cache on disk: token sequences of every torchvision classification, timm, Keras and ``hf:`` model.

The cache is one gzip'd JSON document versioned by the torch/torchvision/timm versions that
produced it (``archsim zoo build`` writes it, see ``archsim.zoo.build``).  Its structure is
validated after decompression (``validate``): a damaged file is reported in one line naming it,
never as an empty table or a traceback later.
"""
from __future__ import annotations

import gzip
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .._io import cache_root, installed_version, library_versions
from ..errors import ArchsimError, DataError, UnknownNameError, UsageError, shorten
from ..tokens import NO_KERAS_LIST, PROFILES, LayerSeq

FORMAT = 2  # 2: the ops profile (x: token ids, q: paths)
PACKAGED = Path(__file__).parent / "data" / "zoo.json.gz"
ZOOS = ("torchvision", "timm", "keras", "hf", "all")
ORDERS = ("execution", "definition", "graph")
_PREFIXES = {"torchvision": ("tv:",), "timm": ("timm:",), "keras": ("keras:",), "hf": ("hf:",),
             "all": ("tv:", "timm:", "keras:", "hf:")}


def user_zoo_path() -> Path:
    """Where a user's `archsim zoo build` writes when the package folder is read-only."""
    return cache_root() / "archsim" / "zoo.json.gz"


@dataclass(frozen=True)
class Zoo:
    """The loaded zoo cache."""

    path: Path
    versions: dict
    vocab: tuple[str, ...]
    models: dict
    failed: tuple[dict, ...]

    def names(self, zoo: str = "all") -> list[str]:
        """Cached model names in one zoo (``tv:...``, ``timm:...``)."""
        if zoo not in _PREFIXES:
            raise UnknownNameError("zoo", zoo, ZOOS)
        return [n for n in self.models if n.startswith(_PREFIXES[zoo])]

    def seq(self, name: str, profile: str = "torch") -> LayerSeq:
        """One cached model as a LayerSeq."""
        if name not in self.models:
            raise UnknownNameError("zoo model", name, list(self.models), hint="see `archsim list --zoo all`")
        m = self.models[name]
        toks = tuple(self.vocab[i] for i in m["t"])
        paths = tuple(m["p"])
        if profile == "keras" and m["s"] != "keras":
            raise UsageError(f"{shorten(name)}: {NO_KERAS_LIST}")
        if profile == "keras-like":
            toks = tuple(toks[i] for i in m["k"])
            paths = tuple(paths[i] for i in m["k"])
        elif profile == "ops":
            toks = tuple(self.vocab[i] for i in m["x"])
            paths = tuple(m["q"])
        elif profile not in ("torch", "keras"):
            raise UnknownNameError("profile", profile, PROFILES)
        return LayerSeq(name=name, tokens=toks, paths=paths, profile=profile, order=m["o"], source=m["s"],
                        input_size=tuple(m["i"]), warnings=(m["r"],) if m["r"] else ())

    def version_mismatch(self) -> str | None:
        """A message when the installed libraries differ from those that built the cache."""
        now = dict(library_versions())
        hf = installed_version("transformers") if "transformers" in self.versions else None
        if hf is not None:  # hf: models: compared only where transformers is installed
            now["transformers"] = hf
        diff = [f"{k} {self.versions.get(k)} (installed {v})" for k, v in now.items() if self.versions.get(k) != v]
        if not diff:
            return None
        return (f"the zoo cache {self.path.name} was built with " + ", ".join(diff) +
                "; model definitions may differ: run `archsim zoo build` to regenerate it")


class _Damaged(ValueError):
    """What is wrong inside a zoo cache document (becomes part of a one-line message)."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise _Damaged(what)


def _ints_below(values, bound: int) -> bool:
    """``values`` is a list of ints (not bools) in ``range(bound)``; C-speed for the 570,000 ids."""
    if not isinstance(values, list):
        return False
    return not values or (set(map(type, values)) == {int} and min(values) >= 0 and max(values) < bound)


def _strings(values) -> bool:
    return isinstance(values, list) and (not values or set(map(type, values)) == {str})


def validate(doc) -> None:
    """Raise ``ValueError`` naming the first structural problem of a decompressed zoo document.

    Checks what ``Zoo.seq``/``Zoo.names`` rely on: ``vocab`` a list of distinct strings, ``models``
    a non-empty dict whose token ids index ``vocab``, paths as many as tokens, keras indices
    increasing into the tokens, known orders, an input size of 1 to 4 positive ints (an image's
    ``(C, H, W)``, a token sequence's ``(length,)``, a video's ``(T, C, H, W)``); ``failed`` a list of
    ``{name, reason}``.
    """
    _check(isinstance(doc, dict), f"the document is a {type(doc).__name__}, not an object")
    _check(doc.get("format") == FORMAT, f"format {shorten(repr(doc.get('format')), 20)} (expected {FORMAT})")
    versions = doc.get("versions")
    _check(isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values()),
           "'versions' is not an object of version strings")
    vocab = doc.get("vocab")
    _check(_strings(vocab) and len(set(vocab)) == len(vocab), "'vocab' is not a list of distinct strings")
    models = doc.get("models")
    _check(models not in ({}, [], None), "'models' is empty")
    _check(isinstance(models, dict), "'models' is not an object of name: record")
    keys = {"t", "p", "k", "x", "q", "o", "s", "i", "r"}
    for name, m in models.items():
        where = f"model {shorten(name, 50)!r}"
        _check(isinstance(m, dict) and keys <= set(m), f"{where} lacks one of the fields {', '.join(sorted(keys))}")
        t, k = m["t"], m["k"]
        _check(_ints_below(t, len(vocab)), f"{where}: token ids are not integers in 0..{len(vocab) - 1}")
        _check(_strings(m["p"]) and len(m["p"]) == len(t), f"{where}: not one module path per token")
        _check(_ints_below(m["x"], len(vocab)), f"{where}: ops token ids are not integers in 0..{len(vocab) - 1}")
        _check(_strings(m["q"]) and len(m["q"]) == len(m["x"]), f"{where}: not one module path per ops token")
        _check(_ints_below(k, len(t)) and all(a < b for a, b in zip(k, k[1:])),
               f"{where}: keras indices are not increasing positions in its {len(t)} tokens")
        _check(m["o"] in ORDERS, f"{where}: order {shorten(repr(m['o']), 30)} is not one of {', '.join(ORDERS)}")
        _check(isinstance(m["s"], str) and isinstance(m["r"], str), f"{where}: source and reason must be text")
        _check(isinstance(m["i"], list) and 1 <= len(m["i"]) <= 4 and _ints_below(m["i"], 1 << 20)
               and min(m["i"]) > 0, f"{where}: input size is not one to four positive integers")
    failed = doc.get("failed")
    _check(isinstance(failed, list) and all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                            and isinstance(f.get("reason"), str) for f in failed),
           "'failed' is not a list of {name, reason}")


def _read(path: Path) -> Zoo:
    """Load and validate one cache file; ``DataError`` (one line naming it) when it is damaged."""
    try:
        doc = json.loads(gzip.decompress(path.read_bytes()))
        validate(doc)
    except (OSError, EOFError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        # gzip.BadGzipFile is an OSError and json.JSONDecodeError a ValueError
        reason = shorten(" ".join(str(exc).split()) or type(exc).__name__, 160)
        raise DataError(f"zoo cache {path} is damaged ({reason}); "
                        f"run `archsim zoo build` to rebuild it") from None
    return Zoo(path, doc["versions"], tuple(doc["vocab"]), doc["models"], tuple(doc["failed"]))


@lru_cache(maxsize=None)
def load_zoo(path: str | None = None) -> Zoo:
    """Load the zoo cache: ``path``, else a user-built one if present, else the shipped one.

    Warns when the installed libraries differ from those that built it.  A damaged user-built
    cache is skipped with a warning naming it (the shipped one is used); a damaged shipped or
    explicitly given cache raises ``DataError`` naming the file.
    """
    user = user_zoo_path()
    candidates = [Path(path)] if path else [user, PACKAGED]
    for p in candidates:
        if not p.exists():
            if path:
                raise DataError(f"zoo cache {p} does not exist; run `archsim zoo build -o {p}` to create it")
            continue
        try:
            zoo = _read(p)
        except DataError as exc:
            if path or p != user or not PACKAGED.exists():
                raise
            warnings.warn(f"{exc}; using the shipped zoo cache meanwhile", RuntimeWarning, stacklevel=2)
            continue
        msg = zoo.version_mismatch()
        if msg:
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        return zoo
    raise ArchsimError("no zoo cache found; run `archsim zoo build` to create it")

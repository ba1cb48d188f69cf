"""The zoo cache on disk: token sequences of every torchvision classification and timm model.

The cache is one gzip'd JSON document versioned by the torch/torchvision/timm versions that
produced it (``archsim zoo build`` writes it, see ``archsim.zoo.build``).
"""
from __future__ import annotations

import gzip
import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .._io import cache_root, library_versions
from ..errors import ArchsimError, UnknownNameError
from ..tokens import LayerSeq

FORMAT = 1
PACKAGED = Path(__file__).parent / "data" / "zoo.json.gz"
ZOOS = ("torchvision", "timm", "all")


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
        pre = {"torchvision": ("tv:",), "timm": ("timm:",), "all": ("tv:", "timm:")}[zoo]
        return [n for n in self.models if n.startswith(pre)]

    def seq(self, name: str, profile: str = "torch") -> LayerSeq:
        """One cached model as a LayerSeq."""
        m = self.models[name]
        toks = tuple(self.vocab[i] for i in m["t"])
        paths = tuple(m["p"])
        if profile == "keras":
            toks = tuple(toks[i] for i in m["k"])
            paths = tuple(paths[i] for i in m["k"])
        elif profile != "torch":
            raise ValueError(f"unknown profile {profile!r}")
        return LayerSeq(name=name, tokens=toks, paths=paths, profile=profile, order=m["o"], source=m["s"],
                        input_size=tuple(m["i"]), warnings=(m["r"],) if m["r"] else ())

    def version_mismatch(self) -> str | None:
        """A message when the installed libraries differ from those that built the cache."""
        now = library_versions()
        diff = [f"{k} {self.versions.get(k)} (installed {v})" for k, v in now.items() if self.versions.get(k) != v]
        if not diff:
            return None
        return (f"the zoo cache {self.path.name} was built with " + ", ".join(diff) +
                "; model definitions may differ: run `archsim zoo build` to regenerate it")


@lru_cache(maxsize=None)
def load_zoo(path: str | None = None) -> Zoo:
    """Load the zoo cache (a user-built one if present, else the shipped one), warning on version mismatch."""
    candidates = [Path(path)] if path else [user_zoo_path(), PACKAGED]
    for p in candidates:
        if p.exists():
            try:
                doc = json.loads(gzip.decompress(p.read_bytes()))
                if doc.get("format") != FORMAT:
                    raise ValueError(f"format {doc.get('format')} (expected {FORMAT})")
                zoo = Zoo(p, doc["versions"], tuple(doc["vocab"]), doc["models"], tuple(doc["failed"]))
            except Exception as exc:
                raise ArchsimError(f"zoo cache {p} is unreadable ({exc}); run `archsim zoo build` to rebuild it") from exc
            msg = zoo.version_mismatch()
            if msg:
                warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return zoo
    raise ArchsimError("no zoo cache found; run `archsim zoo build` to create it")


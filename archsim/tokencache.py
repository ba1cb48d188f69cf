"""On-disk cache of extracted token sequences: atomic writes, checksummed, rebuilt when stale."""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

from ._io import OutputError, atomic_write, cache_root, installed_version, library_versions
from .tokens import LayerSeq

# Bump when the tokenizer changes what it emits, so old entries are rebuilt.
TOKENIZER_VERSION = 3  # 2: Identity/Flatten never layers, the ops profile; 3: keras-like, ReLU6 in ops


def cache_dir() -> Path:
    """Where token sequences are cached (``$ARCHSIM_CACHE`` or the user cache dir)."""
    env = os.environ.get("ARCHSIM_CACHE")
    if env:
        return Path(env)
    return cache_root() / "archsim" / "tokens"


def cache_key(model: str, profile: str, input_size) -> dict:
    """Everything a cached sequence depends on (an ``hf:`` model: the transformers version too)."""
    key = {"model": model, "profile": profile,
           "input_size": list(input_size) if input_size is not None else None,
           "tokenizer": TOKENIZER_VERSION, **library_versions()}
    if model.startswith("hf:"):
        key["transformers"] = installed_version("transformers") or "absent"
    return key


def _path_for(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key["model"])[:80]
    return cache_dir() / f"{safe}-{key['profile']}-{digest}.json"


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load(key: dict) -> LayerSeq | None:
    """The cached sequence for ``key``, or None when missing, corrupt or stale."""
    path = _path_for(key)
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        payload = doc["payload"]
        if doc.get("sha256") != _checksum(payload) or payload["key"] != key:
            raise ValueError("checksum or key mismatch")
        return LayerSeq(name=payload["name"], tokens=tuple(payload["tokens"]), paths=tuple(payload["paths"]),
                        profile=payload["profile"], order=payload["order"], source=payload["source"],
                        input_size=tuple(payload["input_size"]) if payload["input_size"] else None,
                        warnings=tuple(payload.get("warnings", ())))
    except Exception as exc:  # any damage means: extract again
        warnings.warn(f"token cache entry {path.name} is unreadable ({exc}); rebuilding it", RuntimeWarning)
        return None


def store(key: dict, seq: LayerSeq) -> Path:
    """Cache ``seq`` under ``key`` atomically."""
    payload = {"key": key, "name": seq.name, "tokens": list(seq.tokens), "paths": list(seq.paths),
               "profile": seq.profile, "order": seq.order, "source": seq.source,
               "input_size": list(seq.input_size) if seq.input_size else None, "warnings": list(seq.warnings)}
    path = _path_for(key)
    atomic_write(path, json.dumps({"sha256": _checksum(payload), "payload": payload}))
    return path


def cached_extract(model: str, profile: str = "torch", input_size=None) -> LayerSeq:
    """``extract(model, profile)`` through the disk cache.

    The cached entry keeps the extraction's warnings (a definition-order fallback); they are
    issued again as ``RuntimeWarning`` each time the entry is served.
    """
    from .tracing import trace
    key = cache_key(model, profile, input_size)
    seq = load(key)
    if seq is not None:
        # A definition-order fallback was cached with its warning: say it again on every reuse,
        # as the fresh extraction did, so a cache hit never hides it.
        for note in seq.warnings:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
    else:
        # One forward pass gives every profile: cache them all, so the next profile is a hit too.
        seqs = trace(model, input_size)
        seqs.setdefault("keras-like", seqs["torch"].with_profile("keras-like"))
        seq = seqs[profile] if profile in seqs else seqs["torch"].with_profile(profile)
        try:
            for prof, s in seqs.items():
                store(cache_key(model, prof, input_size), s)
        except (OSError, OutputError) as exc:  # a read-only cache dir must not stop the work
            warnings.warn(f"could not write the token cache ({exc})", RuntimeWarning)
    return seq

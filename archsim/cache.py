"""On-disk cache of extracted token sequences: atomic writes, checksummed, rebuilt when stale."""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .tokens import LayerSeq

# Bump when the tokenizer changes what it emits, so old entries are rebuilt.
TOKENIZER_VERSION = 1


def cache_dir() -> Path:
    """Where token sequences are cached (``$ARCHSIM_CACHE`` or the user cache dir)."""
    env = os.environ.get("ARCHSIM_CACHE")
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_cache_dir("archsim-neurn")) / "archsim" / "tokens"


@lru_cache(maxsize=None)
def library_versions() -> dict[str, str]:
    """Versions of the libraries whose code defines the architectures (read without importing them)."""
    out = {}
    for pkg in ("torch", "torchvision", "timm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def cache_key(model: str, profile: str, input_size) -> dict:
    """Everything a cached sequence depends on."""
    return {"model": model, "profile": profile,
            "input_size": list(input_size) if input_size is not None else None,
            "tokenizer": TOKENIZER_VERSION, **library_versions()}


def _path_for(key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key["model"])[:80]
    return cache_dir() / f"{safe}-{key['profile']}-{digest}.json"


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; caches are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    atomic_write_text(path, json.dumps({"sha256": _checksum(payload), "payload": payload}))
    return path


def cached_extract(model: str, profile: str = "torch", input_size=None) -> LayerSeq:
    """``extract(model, profile)`` through the disk cache."""
    from .extract import extract
    key = cache_key(model, profile, input_size)
    seq = load(key)
    if seq is None:
        seq = extract(model, profile=profile, input_size=input_size)
        try:
            store(key, seq)
        except OSError as exc:  # a read-only cache dir must not stop the work
            warnings.warn(f"could not write the token cache ({exc})", RuntimeWarning)
    return seq

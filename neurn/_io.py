"""Cache and data folders, and verified array caches (written with the shared atomic writer)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np

from archsim._io import atomic_write, cache_root


def cache_dir() -> Path:
    """Directory for generated datasets: $NEURN_CACHE or the platform user cache dir."""
    env = os.environ.get("NEURN_CACHE")
    return Path(env) if env else cache_root() / "neurn"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Directory for user-supplied datasets: the argument, else $NEURN_DATA, else the user data dir."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("NEURN_DATA")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_data_dir("archsim-neurn")) / "data"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over names, dtypes, shapes and bytes of the arrays, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_arrays(path: Path, meta: dict, **arrays: np.ndarray) -> None:
    """Write arrays + meta + checksum to an .npz atomically (temp file in the same dir, then os.replace)."""
    header = dict(meta, sha256=_digest(arrays))
    buf = io.BytesIO()
    np.savez(buf, __meta__=np.array(json.dumps(header, sort_keys=True)), **arrays)
    atomic_write(path, buf.getvalue())


def load_arrays(path: Path, meta: dict) -> dict[str, np.ndarray] | None:
    """Load an .npz written by ``save_arrays``; None (with a warning) if absent-safe corrupt or stale."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        header = json.loads(str(arrays.pop("__meta__")))
        expected = dict(meta, sha256=_digest(arrays))
        if header != expected:
            raise ValueError("metadata or checksum mismatch")
        return arrays
    except Exception as exc:  # any damage means "rebuild", never a crash
        warnings.warn(f"ignoring corrupt cache {path} ({exc}); rebuilding it", stacklevel=2)
        return None

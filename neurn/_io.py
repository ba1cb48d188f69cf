"""Cache/data directories, atomic writes and verified loads, and NeuRN's error types."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import platformdirs


class NeurnError(Exception):
    """Base of the errors whose message tells the user what to do (the CLI prints it, exit code 2)."""


class UnknownDomain(NeurnError, ValueError):
    """A domain name that is not registered."""


class DomainUnavailable(NeurnError, FileNotFoundError):
    """A domain whose data is not on this machine (user-supplied file or optional package missing)."""


class InvalidArgument(NeurnError, ValueError):
    """A bad argument value (kernel size, split, channels, limit...)."""


class CorruptData(NeurnError, ValueError):
    """A data file exists but fails its checksum or format check."""


def cache_dir() -> Path:
    """Directory for generated datasets: $NEURN_CACHE or the platform user cache dir."""
    env = os.environ.get("NEURN_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("archsim-neurn")) / "neurn"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Directory for user-supplied datasets: the argument, else $NEURN_DATA, else the user data dir."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("NEURN_DATA")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("archsim-neurn")) / "data"


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
    path.parent.mkdir(parents=True, exist_ok=True)
    header = dict(meta, sha256=_digest(arrays))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.array(json.dumps(header, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

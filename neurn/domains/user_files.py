"""Domains from files the user supplies (USPS, SVHN, the original MNIST-M), in torchvision's formats.

Each file is checked in full when it is loaded, before any of it is used: pixel dtype and range,
image layout, labels, counts, emptiness.  Every problem is one ``CorruptData`` line naming the
file; a file that is usable but stored unusually (float pixels in 0–255, channels-first images)
is converted with a warning naming the file.  Nothing is clipped, wrapped or taken modulo.

==============  ===========================================  ===================================
file            pixels                                        labels
==============  ===========================================  ===================================
usps (libsvm)   values in [-1, 1] → (v + 1) / 2              1–10 → 0–9 (1 means digit 0)
svhn (.mat)     X (32, 32, 3, N): uint8, or floats in [0, 1]  y 1–10 (10 means digit 0), or 0–9
mnistm (.pt)    (N, 28, 28, 3): uint8, or floats in [0, 1]    0–9
==============  ===========================================  ===================================

Float pixels in 0–255 are divided by 255 (with a warning); integer pixels outside 0–255, float
pixels outside [0, 255], NaN or infinite values, and labels outside the ranges above are refused.
"""
from __future__ import annotations

import bz2
import re
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch

from neurn.domains.registry import get_domain, register_domain, user_file
from neurn.errors import CorruptData

# Image layouts by axis letters: N images, H height, W width, C channels.
LAYOUT_NAMES = {"NHWC": "channels-last (N, H, W, C)", "NCHW": "channels-first (N, C, H, W)",
                "HWCN": "MATLAB (H, W, C, N)"}
USPS_PIXELS = 256  # 16 x 16


def _fail(path: Path, problem: str) -> NoReturn:
    """Raise the one-line error for a user file: '<path>: <problem>'."""
    raise CorruptData(f"{path}: {problem}")


def _notice(path: Path, what: str) -> None:
    """Warn about a conversion applied to a user file (never silent)."""
    warnings.warn(f"{path}: {what}", UserWarning, stacklevel=4)


def _examples(values: np.ndarray, limit: int = 5) -> str:
    """A short list of distinct offending values: '-4, 54, 77, ...'."""
    distinct = np.unique(values)
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in distinct[:limit].tolist())
    return shown + (", ..." if len(distinct) > limit else "")


def check_pixels(path: Path, images: np.ndarray) -> np.ndarray:
    """Validated pixels: uint8 (0–255) or float32 in [0, 1]; anything else refused or converted with a notice.

    Integer pixels in 0–255 are stored as uint8 (lossless); float pixels whose maximum is above 1 but
    at most 255 are read as 0–255 and divided by 255, with a warning naming the file.
    """
    kind = images.dtype.kind
    if kind == "b":
        _fail(path, "pixels are booleans; expected uint8 0-255 or floats in [0, 1]")
    if kind in "iu":
        lo, hi = int(images.min()), int(images.max())
        if lo < 0 or hi > 255:
            _fail(path, f"integer pixels must be 0-255; found values from {lo} to {hi} "
                        f"(they are not clipped or wrapped: fix or recreate the file)")
        return images if images.dtype == np.uint8 else images.astype(np.uint8)
    if kind != "f":
        _fail(path, f"pixels have dtype {images.dtype}; expected uint8 0-255 or floats in [0, 1]")
    finite = np.isfinite(images)
    if not finite.all():
        _fail(path, f"{images.size - int(finite.sum())} pixel value(s) are NaN or infinite")
    del finite
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 255:
        _fail(path, f"float pixels must be in [0, 1] (or 0-255); found values from {lo:g} to {hi:g} "
                    f"(they are not clipped: fix or recreate the file)")
    if hi > 1:
        _notice(path, f"float pixels range from {lo:g} to {hi:g}: reading them as 0-255 and dividing by 255")
        return (images.astype(np.float32) / np.float32(255)).clip(0, 1)  # clip only rounding above 1
    return images.astype(np.float32, copy=False)


def check_labels(path: Path, labels: np.ndarray, lo: int, hi: int, meaning: str = "") -> np.ndarray:
    """Labels as int64 (N,), every one a whole number in ``lo..hi``; others refused naming the bad values.

    Args:
        path: the file the labels come from (named in errors).
        labels: (N,), (N, 1) or (1, N) array.
        lo, hi: the valid range, inclusive.
        meaning: what the range means, appended to the error (e.g. "(10 means digit 0)").

    Returns:
        The labels, int64 (N,), unchanged in value.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.ravel()
    if labels.ndim != 1:
        _fail(path, f"labels have shape {labels.shape}; expected one label per image")
    kind = labels.dtype.kind
    if kind == "b" or kind not in "iuf":
        _fail(path, f"labels have dtype {labels.dtype}; expected integers {lo}-{hi}")
    if kind == "f":
        if not np.isfinite(labels).all():
            _fail(path, "labels include NaN or infinite values")
        fractional = labels != np.round(labels)
        if fractional.any():
            _fail(path, f"labels must be whole numbers; found {_examples(labels[fractional])}")
    bad = (labels < lo) | (labels > hi)
    if bad.any():
        _fail(path, f"labels must be {lo}-{hi}{' ' + meaning if meaning else ''}; found "
                    f"{_examples(labels[bad])} in {int(bad.sum())} of {len(labels)} labels")
    return labels.astype(np.int64)


def channels_last(path: Path, images: np.ndarray, channels: int, layouts: tuple[str, ...]) -> np.ndarray:
    """Images as (N, H, W, C) from the first of ``layouts`` their shape fits (square, ``channels`` channels).

    ``layouts[0]`` is the file format's own layout; any other match is transposed with a warning.
    Shapes that fit none are refused, naming the expected layout.
    """
    native = layouts[0]
    if images.ndim == 4:
        for layout in layouts:
            size = dict(zip(layout, images.shape))
            if size["C"] == channels and size["H"] == size["W"] and size["H"] > 0:
                if layout != native:
                    _notice(path, f"images are stored {LAYOUT_NAMES[layout]} {images.shape}, not "
                                  f"{LAYOUT_NAMES[native]}: transposing them")
                return np.transpose(images, [layout.index(axis) for axis in "NHWC"])
    _fail(path, f"images have shape {images.shape}; expected {LAYOUT_NAMES[native]} with C={channels} "
                f"and square H x W")


def check_counts(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Refuse an empty file or one whose image and label counts differ."""
    if len(images) != len(labels):
        _fail(path, f"holds {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        _fail(path, "holds no images")


# --- user-supplied files in torchvision's formats ------------------------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# One libsvm row: a label, then "index:value" pairs (checked by one C-level regex per line).
_USPS_LINE = re.compile(r"\s*(\S+)((?:[ \t]+\d+:" + _NUMBER + r")*)\s*")


def read_usps(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a bz2 libsvm USPS file: 'label i:v ...', labels 1–10, i in 1..256, v in [-1, 1].

    Returns float32 (N, 16, 16) images in [0, 1] and int64 labels 0–9.  Omitted features are 0
    (libsvm's convention), i.e. mid-grey.
    """
    try:
        with bz2.open(path, "rb") as f:
            lines = f.read().decode("ascii").splitlines()
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        _fail(path, f"is not a bz2-compressed libsvm text file ({exc}); download it again")
    raw_labels, features = [], []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _USPS_LINE.fullmatch(line)
        if match is None:
            _fail(path, f"line {lineno} is not 'label index:value ...' with numeric values (libsvm format)")
        raw_labels.append(match.group(1))
        features.append(match.group(2))
    if not raw_labels:
        _fail(path, "holds no images")
    try:
        labels = np.array(raw_labels, dtype=np.float64)
    except ValueError as exc:
        _fail(path, f"holds a label that is not a number ({exc})")
    counts = np.array([f.count(":") for f in features])
    # the regex admits only numbers and single colons, so this C-level parse cannot stop early
    flat = np.fromstring(" ".join(features).replace(":", " "), sep=" ")  # text mode: a fast C-level parse
    if flat.size != 2 * counts.sum():
        _fail(path, "could not be parsed as libsvm 'index:value' pairs")
    index, values = flat[0::2], flat[1::2]
    row = np.repeat(np.arange(len(counts)), counts)
    bad_index = (index < 1) | (index > USPS_PIXELS)
    if bad_index.any():
        first = int(row[np.argmax(bad_index)])
        _fail(path, f"feature indices must be 1-{USPS_PIXELS} (16x16 pixels); found "
                    f"{_examples(index[bad_index])} (first in image {first + 1})")
    cell = row * USPS_PIXELS + (index.astype(np.int64) - 1)
    if len(np.unique(cell)) != len(cell):
        _fail(path, "an image lists the same feature index twice")
    if not np.isfinite(values).all():
        _fail(path, "holds infinite pixel values")
    if len(values) and (values.min() < -1 or values.max() > 1):
        _fail(path, f"USPS pixel values must be in [-1, 1]; found values from {values.min():g} to "
                    f"{values.max():g} (they are not clipped: fix or recreate the file)")
    dense = np.zeros(len(counts) * USPS_PIXELS, np.float32)  # libsvm: an omitted feature is 0
    dense[cell] = values
    images = ((dense.reshape(-1, 16, 16) + 1) / 2).clip(0, 1)  # clip only float rounding at ±1
    labels = check_labels(path, labels, 1, 10, "(torchvision's USPS: 1 means digit 0)") - 1
    return images, labels


@register_domain("usps", description="USPS handwritten digits, 16x16",
                 source="user-supplied torchvision USPS files (usps.bz2 / usps.t.bz2, libsvm format)",
                 splits={"train": 7291, "test": 2007}, native_size=16, native_channels=1, user_supplied=True,
                 files={"train": "usps/usps.bz2", "test": "usps/usps.t.bz2"})
def _load_usps(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's USPS libsvm file, validated (see :func:`read_usps`)."""
    return read_usps(user_file(get_domain("usps"), split, root))


def read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an SVHN .mat: X (32, 32, 3, N) and y (N, 1) with 10 meaning digit 0; validated.

    X may also be stored (N, 32, 32, 3) or (N, 3, 32, 32) (converted with a warning).  Labels
    1–10 or 0–9 are accepted; 10 becomes 0.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises MatReadError, ValueError, NotImplementedError (v7.3)...
        _fail(path, f"is not a torchvision SVHN .mat file ({exc}); download it again")
    missing = [key for key in ("X", "y") if key not in mat]
    if missing:
        _fail(path, f"is not a torchvision SVHN .mat file (no {' or '.join(missing)} variable); download it again")
    images = channels_last(path, np.asarray(mat["X"]), 3, ("HWCN", "NHWC", "NCHW"))
    labels = check_labels(path, mat["y"], 0, 10, "(SVHN: 10 means digit 0)")
    check_counts(path, images, labels)
    images = check_pixels(path, images)
    return images, np.where(labels == 10, 0, labels)


@register_domain("svhn", description="SVHN street-view house numbers, 32x32 colour",
                 source="user-supplied torchvision SVHN files (train_32x32.mat / test_32x32.mat)",
                 splits={"train": 73257, "test": 26032}, native_size=32, native_channels=3, user_supplied=True,
                 files={"train": "svhn/train_32x32.mat", "test": "svhn/test_32x32.mat"})
def _load_svhn(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's SVHN .mat, validated (see :func:`read_svhn`)."""
    return read_svhn(user_file(get_domain("svhn"), split, root))


def _to_numpy(value: object) -> np.ndarray:
    """A tensor or array-like as a numpy array, keeping its dtype (bfloat16 becomes float32)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def read_mnistm_pt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load a tensors-only .pt (weights_only: no code runs) holding (images, labels); validated.

    Images (N, 28, 28, 3) uint8 (or floats in [0, 1]; (N, 3, 28, 28) is converted with a warning),
    labels 0–9.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types; all mean "not the expected file"
        _fail(path, f"is not an MNIST-M .pt of (images, labels) ({exc}); recreate it")
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        _fail(path, f"is not an MNIST-M .pt of (images, labels): it holds a {type(obj).__name__}; recreate it")
    try:
        images, labels = _to_numpy(obj[0]), _to_numpy(obj[1])
    except (TypeError, ValueError) as exc:
        _fail(path, f"is not an MNIST-M .pt of (images, labels) ({exc}); recreate it")
    images = channels_last(path, images, 3, ("NHWC", "NCHW"))
    labels = check_labels(path, labels, 0, 9)
    check_counts(path, images, labels)
    return check_pixels(path, images), labels


@register_domain("mnistm-real", description="the original MNIST-M release (Ganin & Lempitsky), 28x28 colour",
                 source="user-supplied mnist_m_{train,test}.pt: torch.save((uint8 N×28×28×3, int64 N)), as "
                        "written by the common torchvision-style MNISTM dataset classes",
                 splits={"train": 59001, "test": 9001}, native_size=28, native_channels=3, user_supplied=True,
                 files={"train": "mnistm/mnist_m_train.pt", "test": "mnistm/mnist_m_test.pt"})
def _load_mnistm_real(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The original MNIST-M as a tensors-only .pt, validated (see :func:`read_mnistm_pt`)."""
    return read_mnistm_pt(user_file(get_domain("mnistm-real"), split, root))

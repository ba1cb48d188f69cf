"""Domains from files the user supplies (USPS, SVHN, the original MNIST-M), in torchvision's formats."""
from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np
import torch

from neurn.domains.registry import get_domain, register_domain, user_file
from neurn.errors import CorruptData


# --- user-supplied files in torchvision's formats ------------------------------------------------

@register_domain("usps", description="USPS handwritten digits, 16x16",
                 source="user-supplied torchvision USPS files (usps.bz2 / usps.t.bz2, libsvm format)",
                 splits={"train": 7291, "test": 2007}, native_size=16, native_channels=1, user_supplied=True,
                 files={"train": "usps/usps.bz2", "test": "usps/usps.t.bz2"})
def _load_usps(split: str, limit: int | None, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse torchvision's USPS libsvm file: 'label i:v ...' with labels 1-10 and values in [-1, 1]."""
    path = user_file(get_domain("usps"), split, root)
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

    path = user_file(get_domain("svhn"), split, root)
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
    path = user_file(get_domain("mnistm-real"), split, root)
    try:
        images, labels = torch.load(path, map_location="cpu", weights_only=True)
        images = np.asarray(images, dtype=np.uint8)
        labels = np.asarray(labels, dtype=np.int64)
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
            raise ValueError(f"expected (N, 28, 28, 3) images and N labels, got {images.shape} / {labels.shape}")
    except Exception as exc:  # torch.load raises many types; all mean "not the expected file"
        raise CorruptData(f"{path} is not an MNIST-M .pt of (images, labels) ({exc}); recreate it") from None
    return images, labels

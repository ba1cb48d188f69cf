"""The benchmark protocol: one plain dict stored in every record, and the package versions it ran with."""
from __future__ import annotations

import platform
from typing import Any

# Names the CLI offers as choices (kept here, free of torch, so `neurn --help` stays fast).
SPLITS = ("train", "test")
EXECUTORS = ("local", "dask")
TABLE_FORMATS = ("md", "csv", "latex")

# `neurn bench --quick`: a one-minute smoke run, not a result.
QUICK = {"archs": ["digitnet"], "methods": ["erm", "neurn"], "seeds": [0], "iters": 300, "eval_limit": 1000}

PROTOCOL_NAME = "single-source-digits/v2"  # Volpi et al. 2018: MNIST[:10k] -> other digit domains; v2: RandConv as published


def default_protocol(iters: int = 10_000, eval_limit: int | None = None,
                     targets: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """The reference protocol (Adam 1e-4, batch 32, MNIST[:10000] at 32x32x3); fields go into every record."""
    return {
        "protocol": PROTOCOL_NAME,
        "source": "mnist",
        "source_limit": 10_000,
        "size": 32,
        "channels": 3,
        "num_classes": 10,
        "iters": int(iters),
        "batch_size": 32,
        "lr": 1e-4,
        "optimizer": "adam",
        # None = the full test split; N = the first N test images of every target (a recorded deviation).
        "eval_limit": eval_limit,
        "targets": list(targets),
        # RandConv as the authors ran it on digits (RC_img, exp_mnist10k.sh): p = probability of keeping
        # the image, kernel sizes, views per batch, consistency weight (5 for RC_img; 10 with mixing).
        "randconv_p": 0.5,
        "randconv_kernels": [1, 3, 5, 7],
        "randconv_views": 3,
        "randconv_lambda": 5.0,
        "randconv_mix": False,
    }


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change the numbers."""
    import numpy
    import timm
    import torch
    import torchvision

    import neurn

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "timm": timm.__version__,
            "numpy": numpy.__version__, "neurn": getattr(neurn, "__version__", "?"),
            "platform": platform.platform()}



"""NeuRN as a function: local contrast (windowed std) normalised by its per-image maximum."""
from __future__ import annotations

import torch
import torch.nn.functional as F

PADDINGS = ("zeros", "reflect")
MAX_OVER = ("image", "channel")


def _check_args(x: torch.Tensor, kernel_size: int, padding: str, max_over: str) -> None:
    """Raise a ValueError naming the fix for any unsupported argument."""
    if x.dim() != 4:
        raise ValueError(f"neurn expects a 4-D tensor (N, C, H, W); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"neurn expects a floating-point tensor; got {x.dtype} (call .float() first)")
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive int; got {kernel_size!r}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}; got {padding!r}")
    if max_over not in MAX_OVER:
        raise ValueError(f"max_over must be one of {MAX_OVER}; got {max_over!r}")
    if padding == "reflect" and kernel_size // 2 >= min(x.shape[-2:]):
        raise ValueError(
            f"padding='reflect' needs kernel_size//2 < min(H, W); got k={kernel_size} for "
            f"{tuple(x.shape[-2:])} (use padding='zeros' or a smaller kernel)"
        )


def pad_same(x: torch.Tensor, kernel_size: int, padding: str = "zeros") -> torch.Tensor:
    """Pad H and W so a stride-1 k×k window keeps the size (extra cell after, like padding='same')."""
    before, after = (kernel_size - 1) // 2, kernel_size // 2
    mode = "constant" if padding == "zeros" else "reflect"
    return F.pad(x, (before, after, before, after), mode=mode)


def _box_sum(x: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over every k×k window (valid positions) with two 1-D running sums: O(H·W) for any k."""
    for dim in (-1, -2):
        c = torch.cumsum(x, dim=dim)
        zero = torch.zeros_like(c.narrow(dim, 0, 1))
        c = torch.cat([zero, c], dim=dim)
        n = c.shape[dim] - k
        x = c.narrow(dim, k, n) - c.narrow(dim, 0, n)
    return x


def _safe_sqrt(var: torch.Tensor, floor: torch.Tensor | float = 0.0) -> torch.Tensor:
    """sqrt(var) where var > floor else 0, with a 0 (not NaN/inf) gradient in flat windows."""
    positive = var > floor
    return torch.where(positive, torch.sqrt(torch.where(positive, var, torch.ones_like(var))), torch.zeros_like(var))


def _normalise(std: torch.Tensor, eps: float, max_over: str) -> torch.Tensor:
    """Divide by the maximum over each image (all channels) or each channel; never divides by < eps."""
    dims = (1, 2, 3) if max_over == "image" else (2, 3)
    peak = std.amax(dim=dims, keepdim=True)
    return std / peak.clamp_min(eps)


def local_std(x: torch.Tensor, kernel_size: int = 3, padding: str = "zeros") -> torch.Tensor:
    """Population std of the k×k window around every pixel, per channel (same H×W), via box filters."""
    _check_args(x, kernel_size, padding, "image")
    k = kernel_size
    # Running sums lose ~eps·(H+W) relative precision, so accumulate in float64 whatever the input.
    xp = pad_same(x, k, padding).to(torch.float64)
    # Variance is shift invariant; removing each channel's mean keeps E[x²]−E[x]² from cancelling
    # (shift after padding so zero padding still means "zero").
    xp = xp - xp.detach().mean(dim=(2, 3), keepdim=True)
    sq = xp * xp
    sums = _box_sum(torch.cat([xp, sq], dim=1), k) / float(k * k)
    mean, mean_sq = sums.chunk(2, dim=1)
    # Anything below the rounding-error bound of the running sums is a flat window, i.e. exactly 0.
    eps64 = torch.finfo(torch.float64).eps
    floor = 8 * eps64 * (xp.shape[-1] + xp.shape[-2]) * sq.detach().amax(dim=(2, 3), keepdim=True)
    return _safe_sqrt(mean_sq - mean * mean, floor).to(x.dtype)


def neurn(
    x: torch.Tensor,
    kernel_size: int = 3,
    eps: float = 1e-6,
    padding: str = "zeros",
    max_over: str = "image",
) -> torch.Tensor:
    """NeuRN response of x (N, C, H, W): windowed std per channel over its per-image max, in [0, 1]."""
    _check_args(x, kernel_size, padding, max_over)
    return _normalise(local_std(x, kernel_size, padding), eps, max_over)


def neurn_reference(
    x: torch.Tensor,
    kernel_size: int = 3,
    eps: float = 1e-6,
    padding: str = "zeros",
    max_over: str = "image",
) -> torch.Tensor:
    """Direct O(H·W·k²) NeuRN via ``unfold``: the ground truth the fast kernel is checked against."""
    _check_args(x, kernel_size, padding, max_over)
    n, c, h, w = x.shape
    k = kernel_size
    patches = F.unfold(pad_same(x, k, padding), kernel_size=k)  # (N, C·k², H·W)
    patches = patches.view(n, c, k * k, h, w)
    var = patches.var(dim=2, unbiased=False)
    return _normalise(_safe_sqrt(var), eps, max_over)

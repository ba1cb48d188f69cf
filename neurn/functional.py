"""NeuRN as a function: local contrast (windowed std) normalised by its per-image maximum."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from neurn.errors import InvalidArgument

PADDINGS = ("zeros", "reflect")
MAX_OVER = ("image", "channel")


def _check_args(x: torch.Tensor, kernel_size: int, padding: str, max_over: str) -> None:
    """Raise a ValueError naming the fix for any unsupported argument."""
    if x.dim() != 4:
        raise InvalidArgument(f"neurn expects a 4-D tensor (N, C, H, W); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidArgument(f"neurn expects a floating-point tensor; got {x.dtype} (call .float() first)")
    if not isinstance(kernel_size, int) or kernel_size < 1:
        raise InvalidArgument(f"kernel_size must be a positive int; got {kernel_size!r}")
    if padding not in PADDINGS:
        raise InvalidArgument(f"padding must be one of {PADDINGS}; got {padding!r}")
    if max_over not in MAX_OVER:
        raise InvalidArgument(f"max_over must be one of {MAX_OVER}; got {max_over!r}")
    if padding == "reflect" and kernel_size // 2 >= min(x.shape[-2:]):
        raise InvalidArgument(
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
        n = c.shape[dim] - k + 1
        out = torch.empty_like(c.narrow(dim, 0, n))
        # window i = c[i+k-1] - c[i-1] with c[-1] = 0, written into out to avoid a padded copy of c
        out.narrow(dim, 0, 1).copy_(c.narrow(dim, k - 1, 1))
        torch.sub(c.narrow(dim, k, n - 1), c.narrow(dim, 0, n - 1), out=out.narrow(dim, 1, n - 1))
        x = out
    return x


def _box_sum_adjoint(g: torch.Tensor, k: int) -> torch.Tensor:
    """Transpose of ``_box_sum``: spread each window's value back over its k×k cells ("full" box sum)."""
    return _box_sum(F.pad(g, (k - 1, k - 1, k - 1, k - 1)), k)


class _WindowStd(torch.autograd.Function):
    """Population std of every valid k×k window of a padded tensor, with a hand-written O(H·W) backward."""

    @staticmethod
    def forward(ctx, xp: torch.Tensor, k: int, floor: torch.Tensor) -> torch.Tensor:
        area = float(k * k)
        mean = _box_sum(xp, k).div_(area)
        var = _box_sum(xp * xp, k).div_(area).sub_(mean * mean)
        # At or below the rounding-error floor of the running sums a window is flat: exactly 0.
        flat = var <= floor
        std = var.clamp_min_(0).sqrt_().masked_fill_(flat, 0.0)
        ctx.k = k
        ctx.save_for_backward(xp, mean, std)
        return std

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xp, mean, std = ctx.saved_tensors
        k = ctx.k
        # d std/d var = 1/(2 std); flat windows get 0 instead of inf so nothing turns NaN.
        g_var = (g / (2 * std)).masked_fill_(std == 0, 0.0)
        # d var_w/d x_p = (2/k²)(x_p − mean_w) summed over the windows w that contain p.
        grad = xp * _box_sum_adjoint(g_var, k) - _box_sum_adjoint(g_var * mean, k)
        return grad.mul_(2.0 / (k * k)), None, None


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
    with torch.no_grad():
        # Variance is shift invariant; removing each channel's mean stops E[x²]−E[x]² cancelling
        # (shifted after padding, so zero padding still means "zero").
        shift = xp.mean(dim=(2, 3), keepdim=True)
        peak_sq = (xp - shift).square_().amax(dim=(2, 3), keepdim=True)
        floor = peak_sq.mul_(8 * torch.finfo(torch.float64).eps * (xp.shape[-1] + xp.shape[-2]))
    std = _WindowStd.apply(xp - shift, k, floor)
    return std.to(x.dtype)


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
    return _normalise(var.sqrt(), eps, max_over)

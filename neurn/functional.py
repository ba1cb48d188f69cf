"""NeuRN as a function: local contrast (windowed std) normalised by its per-image maximum."""
from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.nn.functional as F

from neurn.errors import InvalidArgument

PADDINGS = ("zeros", "reflect")
MAX_OVER = ("image", "channel")


def check_kernel_size(kernel_size: object) -> int:
    """``kernel_size`` as a Python int ≥ 1; ints, numpy and 0-d torch integers are accepted, bools are not."""
    bad = isinstance(kernel_size, (bool, np.bool_)) or (
        isinstance(kernel_size, torch.Tensor) and (kernel_size.dtype == torch.bool or kernel_size.dim() != 0))
    try:
        k = None if bad else operator.index(kernel_size)  # int, np.int64, torch.tensor(3); not 2.5 or 3.0
    except TypeError:
        k = None
    if k is None or k < 1:
        raise InvalidArgument(f"kernel_size must be a positive int; got {kernel_size!r}")
    return k


def check_eps(eps: object) -> float:
    """``eps`` as a finite float > 0 (a zero or negative floor would divide by zero or flip signs)."""
    bad = isinstance(eps, (bool, np.bool_, str, bytes)) or (
        isinstance(eps, torch.Tensor) and (eps.dtype == torch.bool or eps.numel() != 1))
    try:
        value = None if bad else float(eps)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"eps must be a finite number > 0; got {eps!r}")
    return value


def check_options(padding: str, max_over: str) -> None:
    """Raise ``InvalidArgument`` for an unknown padding or max_over."""
    if padding not in PADDINGS:
        raise InvalidArgument(f"padding must be one of {PADDINGS}; got {padding!r}")
    if max_over not in MAX_OVER:
        raise InvalidArgument(f"max_over must be one of {MAX_OVER}; got {max_over!r}")


def _check_args(x: torch.Tensor, kernel_size: object, padding: str, max_over: str,
                eps: object = 1e-6) -> tuple[int, float]:
    """Validate every argument (ValueError naming the fix); returns ``(kernel_size, eps)`` as int and float."""
    if not isinstance(x, torch.Tensor):
        raise InvalidArgument(f"neurn expects a torch.Tensor (N, C, H, W); got {type(x).__name__}")
    if x.dim() != 4:
        raise InvalidArgument(f"neurn expects a 4-D tensor (N, C, H, W); got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise InvalidArgument(f"neurn expects a floating-point tensor; got {x.dtype} (call .float() first)")
    k = check_kernel_size(kernel_size)
    eps = check_eps(eps)
    check_options(padding, max_over)
    # An empty H or W has nothing to pad: the caller returns an empty result.
    if padding == "reflect" and min(x.shape[-2:]) > 0 and k // 2 >= min(x.shape[-2:]):
        raise InvalidArgument(
            f"padding='reflect' needs kernel_size//2 < min(H, W); got k={k} for "
            f"{tuple(x.shape[-2:])} (use padding='zeros' or a smaller kernel)"
        )
    return k, eps


def _empty_like(x: torch.Tensor) -> torch.Tensor:
    """The (empty) result for an input with no elements: same shape, dtype and device, still in the graph."""
    return x * 0


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


def _window_std_graph(xp: torch.Tensor, k: int, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of every valid k×k window with ordinary differentiable ops (for double backward)."""
    mean = F.avg_pool2d(xp, k, stride=1)
    var = F.avg_pool2d(xp * xp, k, stride=1) - mean * mean
    flat = (var <= floor).detach()
    # where() on both sides: sqrt's infinite slope at 0 must not reach the graph as 0·inf = NaN
    std = torch.where(flat, torch.zeros_like(var), torch.where(flat, torch.ones_like(var), var).sqrt())
    return mean, std


def _box_sum_adjoint_graph(g: torch.Tensor, k: int) -> torch.Tensor:
    """``_box_sum_adjoint`` with differentiable ops (avg_pool2d over the zero-padded map, times k²)."""
    return F.avg_pool2d(F.pad(g, (k - 1, k - 1, k - 1, k - 1)), k, stride=1) * float(k * k)


class _WindowStd(torch.autograd.Function):
    """Population std of every valid k×k window of a padded tensor, with a hand-written O(H·W) backward.

    The backward is itself differentiable: when a second derivative is asked for (``create_graph=True``)
    it is computed with ordinary autograd ops from the saved input instead of the fast in-place kernels.
    """

    @staticmethod
    def forward(ctx, xp: torch.Tensor, k: int, floor: torch.Tensor) -> torch.Tensor:
        area = float(k * k)
        mean = _box_sum(xp, k).div_(area)
        var = _box_sum(xp * xp, k).div_(area).sub_(mean * mean)
        # At or below the rounding-error floor of the running sums a window is flat: exactly 0.
        flat = var <= floor
        std = var.clamp_min_(0).sqrt_().masked_fill_(flat, 0.0)
        ctx.k = k
        ctx.save_for_backward(xp, mean, std, floor)
        return std

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        xp, mean, std, floor = ctx.saved_tensors
        k = ctx.k
        if torch.is_grad_enabled():
            # create_graph=True: the saved mean/std carry no graph, so recompute them from xp with
            # differentiable ops and apply the same formula out of place (slower, but exact to 2nd order).
            mean, std = _window_std_graph(xp, k, floor)
            flat = std == 0
            g_var = torch.where(flat, torch.zeros_like(std), g / (2 * torch.where(flat, torch.ones_like(std), std)))
            grad = xp * _box_sum_adjoint_graph(g_var, k) - _box_sum_adjoint_graph(g_var * mean, k)
            return grad * (2.0 / (k * k)), None, None
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


# Below 1e100 in magnitude no square or window sum can overflow float64, above 1e-100 none underflows.
_SAFE_RANGE = (1e-100, 1e100)


def _scaled_local_std(x: torch.Tensor, k: int, padding: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(std of the windows of x / s in float64, s), with s = None (meaning 1) for ordinary magnitudes.

    std(x) = s·std(x/s) for any constant s > 0.  When some |x| is beyond 1e100 (or every non-zero
    |x| of an image below 1e-100), each image is divided by its largest |value| s first, so E[x²]
    cannot overflow to inf (inf − inf = NaN) or underflow to 0.  s is a constant (computed without
    grad), which leaves the gradients exact: the identity holds for every s.
    """
    scale = inv_scale = None
    with torch.no_grad():
        peak = torch.maximum(x.detach().amax(dim=(1, 2, 3), keepdim=True),
                             -x.detach().amin(dim=(1, 2, 3), keepdim=True)).to(torch.float64)
        lo, hi = _SAFE_RANGE
        if bool(((peak > hi) | ((peak > 0) & (peak < lo))).any()):
            scale = torch.where(peak > 0, peak, torch.ones_like(peak))
            inv_scale = scale.reciprocal()
    # Running sums lose ~eps·(H+W) relative precision, so accumulate in float64 whatever the input.
    xp = pad_same(x, k, padding).to(torch.float64)
    with torch.no_grad():
        # Variance is shift invariant; removing each channel's mean stops E[x²]−E[x]² cancelling
        # (shifted after padding, so zero padding still means "zero").
        if inv_scale is None:
            shift = xp.mean(dim=(2, 3), keepdim=True)
        else:
            shift = (xp * inv_scale).mean(dim=(2, 3), keepdim=True)
    xs = xp - shift if inv_scale is None else torch.addcmul(-shift, xp, inv_scale)  # xp / s − shift
    with torch.no_grad():
        peak_sq = xs.detach().square().amax(dim=(2, 3), keepdim=True)
        floor = peak_sq.mul_(8 * torch.finfo(torch.float64).eps * (xp.shape[-1] + xp.shape[-2]))
    return _WindowStd.apply(xs, k, floor), scale


def local_std(x: torch.Tensor, kernel_size: int = 3, padding: str = "zeros") -> torch.Tensor:
    """Population std of the k×k window around every pixel, per channel (same H×W), via box filters.

    Finite for any finite input, float64 values near 1e300 included; an input with no elements gives
    an empty result of the same shape.
    """
    k, _ = _check_args(x, kernel_size, padding, "image")
    if x.numel() == 0:
        return _empty_like(x)
    std, scale = _scaled_local_std(x, k, padding)
    return (std if scale is None else std * scale).to(x.dtype)


def neurn(
    x: torch.Tensor,
    kernel_size: int = 3,
    eps: float = 1e-6,
    padding: str = "zeros",
    max_over: str = "image",
) -> torch.Tensor:
    """NeuRN response of x (N, C, H, W): windowed std per channel over its per-image max, in [0, 1].

    Args:
        x: floating-point batch (N, C, H, W); any N, C, H, W ≥ 0 (no elements → empty output).
        kernel_size: window side k ≥ 1 (an int, or a numpy / 0-d torch integer; not a bool).
        eps: floor of the divisor, a finite number > 0: images whose peak contrast is below it are
            divided by ``eps`` instead (so a flat image never divides by zero).
        padding: ``"zeros"`` or ``"reflect"``. A constant image gives all zeros only with
            ``"reflect"`` (or when the constant is 0): zero padding makes the border of a constant,
            non-zero image a contrast edge, so its border responses are 1 and the interior 0.
        max_over: divide by the maximum over each ``"image"`` (all channels) or each ``"channel"``.

    Returns:
        A tensor of x's shape, dtype and device, with values in [0, 1] (finite for finite x).
    """
    k, eps = _check_args(x, kernel_size, padding, max_over, eps)
    if x.numel() == 0:
        return _empty_like(x)
    std, scale = _scaled_local_std(x, k, padding)
    if scale is None:
        return _normalise(std.to(x.dtype), eps, max_over)
    # std(x)/max(peak, eps) = std(x/s)/max(peak/s, eps/s): the per-image scale s cancels, so the
    # scaled std is never multiplied back (which could overflow); an infinite eps/s just gives 0.
    std = std.to(x.dtype)
    dims = (1, 2, 3) if max_over == "image" else (2, 3)
    peak = std.amax(dim=dims, keepdim=True)
    return std / torch.maximum(peak, (eps / scale).to(x.dtype))


def neurn_reference(
    x: torch.Tensor,
    kernel_size: int = 3,
    eps: float = 1e-6,
    padding: str = "zeros",
    max_over: str = "image",
) -> torch.Tensor:
    """Direct O(H·W·k²) NeuRN via ``unfold``: the ground truth the fast kernel is checked against."""
    k, eps = _check_args(x, kernel_size, padding, max_over, eps)
    if x.numel() == 0:
        return _empty_like(x)
    n, c, h, w = x.shape
    patches = F.unfold(pad_same(x, k, padding), kernel_size=k)  # (N, C·k², H·W)
    patches = patches.view(n, c, k * k, h, w)
    var = patches.var(dim=2, unbiased=False)
    return _normalise(var.sqrt(), eps, max_over)

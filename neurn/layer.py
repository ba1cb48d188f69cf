"""The NeuRN layer as an ``nn.Module`` (no learnable parameters)."""
from __future__ import annotations

import torch
from torch import nn

from neurn.functional import check_eps, check_kernel_size, check_options, neurn


class NeuRN(nn.Module):
    """Neural Response Normalization: local k×k contrast divided by its per-image maximum.

    Args:
        kernel_size: window side k ≥ 1 (an int, or a numpy / 0-d torch integer; not a bool).
        eps: floor of the divisor, a finite number > 0.
        padding: ``"zeros"`` or ``"reflect"``. A constant image gives all zeros only with
            ``"reflect"`` (or when the constant is 0): with zero padding the border of a constant,
            non-zero image is a contrast edge.
        max_over: divide by the maximum over each ``"image"`` (all channels) or each ``"channel"``.

    See :func:`neurn.functional.neurn` for the computation.
    """

    def __init__(self, kernel_size: int = 3, eps: float = 1e-6, padding: str = "zeros", max_over: str = "image"):
        super().__init__()
        # Validate eagerly so a bad config fails at model build time, not at the first batch.
        self.kernel_size = check_kernel_size(kernel_size)
        self.eps = check_eps(eps)
        check_options(padding, max_over)
        self.padding = padding
        self.max_over = max_over

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply NeuRN to a (N, C, H, W) batch."""
        return neurn(x, self.kernel_size, self.eps, self.padding, self.max_over)

    def extra_repr(self) -> str:
        """Show the configuration in ``print(model)``."""
        return f"kernel_size={self.kernel_size}, eps={self.eps}, padding={self.padding!r}, max_over={self.max_over!r}"

"""The NeuRN layer as an ``nn.Module`` (no learnable parameters)."""
from __future__ import annotations

import torch
from torch import nn

from neurn.errors import InvalidArgument
from neurn.functional import MAX_OVER, PADDINGS, neurn


class NeuRN(nn.Module):
    """Neural Response Normalization: local k×k contrast divided by its per-image maximum."""

    def __init__(self, kernel_size: int = 3, eps: float = 1e-6, padding: str = "zeros", max_over: str = "image"):
        super().__init__()
        # Validate eagerly so a bad config fails at model build time, not at the first batch.
        if not isinstance(kernel_size, int) or kernel_size < 1:
            raise InvalidArgument(f"kernel_size must be a positive int; got {kernel_size!r}")
        if padding not in PADDINGS:
            raise InvalidArgument(f"padding must be one of {PADDINGS}; got {padding!r}")
        if max_over not in MAX_OVER:
            raise InvalidArgument(f"max_over must be one of {MAX_OVER}; got {max_over!r}")
        self.kernel_size = kernel_size
        self.eps = eps
        self.padding = padding
        self.max_over = max_over

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply NeuRN to a (N, C, H, W) batch."""
        return neurn(x, self.kernel_size, self.eps, self.padding, self.max_over)

    def extra_repr(self) -> str:
        """Show the configuration in ``print(model)``."""
        return f"kernel_size={self.kernel_size}, eps={self.eps}, padding={self.padding!r}, max_over={self.max_over!r}"

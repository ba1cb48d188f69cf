"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015), the original unpadded network."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import register_model


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    # Unpadded 3×3 convolutions, as in the paper: each one trims a pixel from every border.
    return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3), nn.ReLU(inplace=True))


def _center_crop(x, size):
    h, w = x.shape[-2:]
    top, left = (h - size[0]) // 2, (w - size[1]) // 2
    return x[..., top:top + size[0], left:left + size[1]]


class UNet(nn.Module):
    """Contracting path of four 2×2 max-pools, expanding path of 2×2 up-convolutions with cropped skips."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, width: int = 64):
        super().__init__()
        chans = [width * 2 ** i for i in range(5)]  # 64 … 1024
        self.down = nn.ModuleList([_double_conv(in_channels, chans[0])] +
                                  [_double_conv(chans[i], chans[i + 1]) for i in range(4)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in reversed(range(4)))
        self.dec = nn.ModuleList(_double_conv(chans[i + 1], chans[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(chans[0], num_classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < 4:
                skips.append(x)
                x = self.pool(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = up(x)
            x = dec(torch.cat([_center_crop(skip, x.shape[-2:]), x], 1))
        return self.head(x)


@register_model("unet", input_size=(1, 572, 572),
                reference="Ronneberger, Fischer and Brox, U-Net: Convolutional Networks for Biomedical Image "
                          "Segmentation, MICCAI 2015")
def unet(in_channels: int = 1, num_classes: int = 2) -> nn.Module:
    """The original U-Net (572×572 input, 388×388 output map), random init."""
    return UNet(in_channels=in_channels, num_classes=num_classes)

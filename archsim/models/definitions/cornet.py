"""CORnet-S (Kubilius et al., NeurIPS 2019): a shallow recurrent model of the ventral stream."""
from __future__ import annotations

from collections import OrderedDict

import torch.nn as nn

from ..registry import register_model


class CORblockS(nn.Module):
    """One recurrent area: its conv weights are reused ``times`` steps, with a BN set per step."""

    scale = 4  # bottleneck expansion

    def __init__(self, cin: int, cout: int, times: int = 1):
        super().__init__()
        self.times = times
        self.conv_input = nn.Conv2d(cin, cout, 1, bias=False)
        self.skip = nn.Conv2d(cout, cout, 1, stride=2, bias=False)
        self.norm_skip = nn.BatchNorm2d(cout)
        self.conv1 = nn.Conv2d(cout, cout * self.scale, 1, bias=False)
        self.nonlin1 = nn.ReLU(inplace=True)
        # The first step downsamples and later steps do not; the same weights serve both,
        # so the stride is a per-call choice (the reference code switches conv2.stride).
        self.conv2 = nn.Conv2d(cout * self.scale, cout * self.scale, 3, stride=2, padding=1, bias=False)
        self.nonlin2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(cout * self.scale, cout, 1, bias=False)
        self.nonlin3 = nn.ReLU(inplace=True)
        self.output = nn.Identity()
        for t in range(times):
            setattr(self, f"norm1_{t}", nn.BatchNorm2d(cout * self.scale))
            setattr(self, f"norm2_{t}", nn.BatchNorm2d(cout * self.scale))
            setattr(self, f"norm3_{t}", nn.BatchNorm2d(cout))

    def forward(self, inp):
        x = self.conv_input(inp)
        for t in range(self.times):
            if t == 0:
                skip = self.norm_skip(self.skip(x))
                self.conv2.stride = (2, 2)
            else:
                skip = x
                self.conv2.stride = (1, 1)
            x = self.nonlin1(getattr(self, f"norm1_{t}")(self.conv1(x)))
            x = self.nonlin2(getattr(self, f"norm2_{t}")(self.conv2(x)))
            x = getattr(self, f"norm3_{t}")(self.conv3(x))
            x = self.nonlin3(x + skip)
            out = self.output(x)
        return out


@register_model("cornet_s", input_size=(3, 224, 224),
                reference="Kubilius et al., Brain-Like Object Recognition with High-Performing Shallow "
                          "Recurrent ANNs, NeurIPS 2019 (CORnet-S)")
def cornet_s(num_classes: int = 1000) -> nn.Module:
    """CORnet-S (V1, V2×2, V4×4, IT×2 recurrent steps), random init."""
    return nn.Sequential(OrderedDict([
        ("V1", nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
            ("norm1", nn.BatchNorm2d(64)),
            ("nonlin1", nn.ReLU(inplace=True)),
            ("pool", nn.MaxPool2d(3, stride=2, padding=1)),
            ("conv2", nn.Conv2d(64, 64, 3, padding=1, bias=False)),
            ("norm2", nn.BatchNorm2d(64)),
            ("nonlin2", nn.ReLU(inplace=True)),
            ("output", nn.Identity()),
        ]))),
        ("V2", CORblockS(64, 128, times=2)),
        ("V4", CORblockS(128, 256, times=4)),
        ("IT", CORblockS(256, 512, times=2)),
        ("decoder", nn.Sequential(OrderedDict([
            ("avgpool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("linear", nn.Linear(512, num_classes)),
            ("output", nn.Identity()),
        ]))),
    ]))

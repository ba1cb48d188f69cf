"""ProxylessNAS-Mobile (Cai et al., ICLR 2019), the architecture the paper's PyTorch Hub entry loads."""
from __future__ import annotations

import torch.nn as nn

from ..registry import register_model

# The searched mobile architecture, stage by stage: (kernel, expansion, out_channels, stride),
# None where the search chose the zero (skip) operation.
_MOBILE = [
    [(3, 1, 16, 1)],
    [(5, 3, 32, 2), (3, 3, 32, 1), None, None],
    [(7, 3, 40, 2), (3, 3, 40, 1), (5, 3, 40, 1), (5, 3, 40, 1)],
    [(7, 6, 80, 2), (5, 3, 80, 1), (5, 3, 80, 1), (5, 3, 80, 1),
     (5, 6, 96, 1), (5, 3, 96, 1), (5, 3, 96, 1), (5, 3, 96, 1)],
    [(7, 6, 192, 2), (7, 6, 192, 1), (7, 3, 192, 1), (7, 3, 192, 1), (7, 6, 320, 1)],
]


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBInvertedConv(nn.Module):
    """Inverted bottleneck: 1×1 expansion (skipped at ratio 1), k×k depthwise, linear 1×1 projection."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.inverted_bottleneck = _conv_bn(cin, mid, 1) if expand > 1 else None
        self.depth_conv = _conv_bn(mid, mid, k, stride, groups=mid)
        self.point_linear = _conv_bn(mid, cout, 1, act=False)

    def forward(self, x):
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class MobileInvertedResidualBlock(nn.Module):
    """An MBConv with an identity shortcut when shapes allow it."""

    def __init__(self, conv: MBInvertedConv, shortcut: bool):
        super().__init__()
        self.mobile_inverted_conv = conv
        self.shortcut = shortcut

    def forward(self, x):
        y = self.mobile_inverted_conv(x)
        return x + y if self.shortcut else y


class ProxylessNASNet(nn.Module):
    """ProxylessNAS network: stem, searched MBConv blocks, 1×1 feature mix, pooling, classifier."""

    def __init__(self, num_classes: int = 1000, stem: int = 32, last: int = 1280):
        super().__init__()
        self.first_conv = _conv_bn(3, stem, 3, stride=2)
        blocks, cin = [], stem
        for stage in _MOBILE:
            for op in stage:
                if op is None:  # the zero op with a shortcut is the identity: no layer runs
                    continue
                k, e, cout, s = op
                blocks.append(MobileInvertedResidualBlock(MBInvertedConv(cin, cout, k, s, e),
                                                          shortcut=(s == 1 and cin == cout)))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.feature_mix_layer = _conv_bn(cin, last, 1)
        self.global_avg_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x):
        x = self.feature_mix_layer(self.blocks(self.first_conv(x)))
        return self.classifier(self.global_avg_pooling(x).flatten(1))


@register_model("proxylessnas_mobile", input_size=(3, 224, 224),
                reference="Cai, Zhu and Han, ProxylessNAS: Direct Neural Architecture Search on Target Task "
                          "and Hardware, ICLR 2019 (mobile model)")
def proxylessnas_mobile(num_classes: int = 1000) -> nn.Module:
    """ProxylessNAS-Mobile, random init."""
    return ProxylessNASNet(num_classes=num_classes)

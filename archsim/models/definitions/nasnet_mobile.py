"""NASNet-A Mobile (Zoph et al., CVPR 2018): 4 @ 1056, built from timm's NASNet-A cells."""
from __future__ import annotations

import torch.nn as nn

from ..registry import register_model


class NASNetAMobile(nn.Module):
    """NASNet-A 4 @ 1056: stem, three stages of N=4 cells separated by reduction cells."""

    def __init__(self, num_classes: int = 1000, stem_size: int = 32, num_features: int = 1056,
                 channel_multiplier: int = 2, pad_type: str = "same"):
        super().__init__()
        # timm ships only NASNet-A Large (6 @ 4032); its cells are the published NASNet-A
        # cells, so Mobile is those cells with N=4 and 1056 penultimate filters.
        from timm.layers import ConvNormAct
        from timm.models.nasnet import (CellStem0, CellStem1, FirstCell, NormalCell, ReductionCell0,
                                        ReductionCell1)
        c = num_features // 24
        self.conv0 = ConvNormAct(3, stem_size, kernel_size=3, padding=0, stride=2, apply_act=False,
                                 norm_layer=nn.BatchNorm2d)
        self.cell_stem_0 = CellStem0(stem_size, num_channels=c // channel_multiplier ** 2, pad_type=pad_type)
        self.cell_stem_1 = CellStem1(stem_size, num_channels=c // channel_multiplier, pad_type=pad_type)
        # (in_left, out_left, in_right, out_right) in units of c, per cell, in execution order.
        plan = [
            (FirstCell, 1, .5, 2, 1), (NormalCell, 2, 1, 6, 1), (NormalCell, 6, 1, 6, 1), (NormalCell, 6, 1, 6, 1),
            (ReductionCell0, 6, 2, 6, 2),
            (FirstCell, 6, 1, 8, 2), (NormalCell, 8, 2, 12, 2), (NormalCell, 12, 2, 12, 2), (NormalCell, 12, 2, 12, 2),
            (ReductionCell1, 12, 4, 12, 4),
            (FirstCell, 12, 2, 16, 4), (NormalCell, 16, 4, 24, 4), (NormalCell, 24, 4, 24, 4),
            (NormalCell, 24, 4, 24, 4),
        ]
        self.cells = nn.ModuleList(
            cls(in_chs_left=int(il * c), out_chs_left=int(ol * c), in_chs_right=int(ir * c),
                out_chs_right=int(orr * c), pad_type=pad_type)
            for cls, il, ol, ir, orr in plan)
        self.act = nn.ReLU()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(0.5)
        self.last_linear = nn.Linear(24 * c, num_classes)

    def forward(self, x):
        x_conv0 = self.conv0(x)
        x_stem_0 = self.cell_stem_0(x_conv0)
        x_stem_1 = self.cell_stem_1(x_conv0, x_stem_0)
        # Every cell reads the two previous outputs, except that the FirstCell after a
        # reduction cell takes the reduction cell's own "previous" input (as in the paper).
        from timm.models.nasnet import ReductionCell0, ReductionCell1
        prev, cur = x_stem_0, x_stem_1
        for cell in self.cells:
            out = cell(cur, prev)
            prev, cur = (prev, out) if isinstance(cell, (ReductionCell0, ReductionCell1)) else (cur, out)
        x = self.act(cur)
        return self.last_linear(self.dropout(self.flatten(self.global_pool(x))))


@register_model("nasnet_a_mobile", input_size=(3, 224, 224),
                reference="Zoph et al., Learning Transferable Architectures for Scalable Image Recognition, "
                          "CVPR 2018 (NASNet-A 4 @ 1056)")
def nasnet_a_mobile(num_classes: int = 1000) -> nn.Module:
    """NASNet-A Mobile (4 @ 1056), random init."""
    return NASNetAMobile(num_classes=num_classes)

"""MiDaS v2.1 (Ranftl et al., TPAMI 2022): ResNeXt-101 32×8d encoder with a RefineNet-style fusion decoder."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from ..registry import register_model


class Interpolate(nn.Module):
    """Bilinear upsampling as a layer (MiDaS' output head uses it as a module)."""

    def __init__(self, scale_factor: float = 2, mode: str = "bilinear"):
        super().__init__()
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x):
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=False)


class ResidualConvUnit(nn.Module):
    """ReLU-conv-ReLU-conv with an identity skip (one ReLU module applied twice)."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(self.relu(x)))) + x


class FeatureFusionBlock(nn.Module):
    """Adds the refined skip features to the coarser path, refines again and upsamples ×2."""

    def __init__(self, features: int):
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(features)
        self.resConfUnit2 = ResidualConvUnit(features)

    def forward(self, *xs):
        out = xs[0]
        if len(xs) == 2:
            out = out + self.resConfUnit1(xs[1])
        out = self.resConfUnit2(out)
        return F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=True)


class MidasNet(nn.Module):
    """Encoder taps after each ResNeXt stage, 3×3 projections to 256 channels, four fusion blocks, depth head."""

    def __init__(self, features: int = 256):
        super().__init__()
        from torchvision.models import resnext101_32x8d
        enc = resnext101_32x8d(weights=None)
        self.pretrained = nn.Module()
        self.pretrained.layer1 = nn.Sequential(enc.conv1, enc.bn1, enc.relu, enc.maxpool, enc.layer1)
        self.pretrained.layer2, self.pretrained.layer3, self.pretrained.layer4 = enc.layer2, enc.layer3, enc.layer4
        self.scratch = nn.Module()
        for i, cin in enumerate((256, 512, 1024, 2048), 1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(cin, features, 3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(self.scratch, f"refinenet{i}", FeatureFusionBlock(features))
        self.scratch.output_conv = nn.Sequential(
            nn.Conv2d(features, 128, 3, padding=1), Interpolate(2), nn.Conv2d(128, 32, 3, padding=1),
            nn.ReLU(True), nn.Conv2d(32, 1, 1), nn.ReLU(True))

    def forward(self, x):
        p, s = self.pretrained, self.scratch
        l1 = p.layer1(x)
        l2 = p.layer2(l1)
        l3 = p.layer3(l2)
        l4 = p.layer4(l3)
        path = s.refinenet4(s.layer4_rn(l4))
        path = s.refinenet3(path, s.layer3_rn(l3))
        path = s.refinenet2(path, s.layer2_rn(l2))
        path = s.refinenet1(path, s.layer1_rn(l1))
        return s.output_conv(path).squeeze(1)


@register_model("midas_v21", input_size=(3, 384, 384),
                reference="Ranftl et al., Towards Robust Monocular Depth Estimation: Mixing Datasets for "
                          "Zero-shot Cross-dataset Transfer, TPAMI 2022 (MiDaS v2.1, ResNeXt-101 32x8d)")
def midas_v21() -> nn.Module:
    """MiDaS v2.1 large (MidasNet), random init."""
    return MidasNet()

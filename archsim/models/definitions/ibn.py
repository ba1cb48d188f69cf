"""IBN-Net ResNet-50-IBN-a (Pan et al., ECCV 2018): instance + batch norm in the first three stages."""
from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import register_model


class IBN(nn.Module):
    """Instance-normalizes half of the channels and batch-normalizes the rest."""

    def __init__(self, planes: int, ratio: float = 0.5):
        super().__init__()
        self.half = int(planes * ratio)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x):
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], 1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), 1)


@register_model("resnet50_ibn_a", input_size=(3, 224, 224),
                reference="Pan, Luo, Shi and Tang, Two at Once: Enhancing Learning and Generalization "
                          "Capacities via IBN-Net, ECCV 2018 (ResNet-50-IBN-a)")
def resnet50_ibn_a(num_classes: int = 1000) -> nn.Module:
    """ResNet-50-IBN-a, random init: every bottleneck's first BN in layer1-3 becomes an IBN."""
    from torchvision.models import resnet50
    model = resnet50(weights=None, num_classes=num_classes)
    # IBN-a is ResNet-50 with only bn1 of the layer1-3 bottlenecks swapped; layer4 keeps
    # plain BN so the final features stay discriminative (the paper's design rule).
    for stage in (model.layer1, model.layer2, model.layer3):
        for block in stage:
            block.bn1 = IBN(block.bn1.num_features)
    return model

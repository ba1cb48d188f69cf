"""Architecture registry for the NeuRN benchmark: random-init networks adapted to 32x32, 10 classes.

Every builder takes ``(num_classes, in_chans)`` and returns a freshly initialised ``nn.Module``
(no pretrained weights). Stems are adapted the way CIFAR ports usually do it (stride-1 first
convolution, no stem max-pool) so that 32x32 inputs do not shrink to nothing; the body of each
network is the torchvision / timm implementation, unchanged.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from archsim._registry import Registry
from neurn.errors import UnknownName

Builder = Callable[[int, int], nn.Module]


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture: its builder, family (cnn / nas / vit) and a short description."""

    name: str
    family: str
    description: str
    build: Builder


FAMILIES = ("cnn", "nas", "vit")


def _spec(name: str, fn: Builder, family: str = "cnn", description: str = "") -> ArchSpec:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return ArchSpec(name, family, description or (fn.__doc__ or "").strip(), fn)


ARCHS: Registry[ArchSpec] = Registry("architecture", UnknownName)
register_arch = ARCHS.decorator(_spec)
register_arch.__doc__ = """Register ``fn(num_classes, in_chans) -> nn.Module`` (name defaults to the function's).

    Use ``@register_arch(family="nas", description="...")`` or ``@register_arch("name", "cnn")``.
    """


def list_archs(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered architecture names matching ``pattern`` (optionally one family), in registration order.

    >>> list_archs("res*")
    ['resnet18']
    """
    return [n for n in ARCHS.list(pattern) if family is None or ARCHS.get(n).family == family]


def get_arch(name: str) -> ArchSpec:
    """The spec of one architecture; unknown names raise ``UnknownName`` with did-you-mean."""
    return ARCHS.get(name)


def create_arch(name: str, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """Build a randomly initialised architecture (seed torch beforehand for reproducibility)."""
    return get_arch(name).build(num_classes, in_chans)


@functools.lru_cache(maxsize=None)
def arch_digest(name: str, num_classes: int = 10, in_chans: int = 3) -> str:
    """12 hex digits naming the definition of one architecture: sha256 of its module tree as printed.

    The printed tree holds every layer's class, shapes and hyper-parameters (BatchNorm momentum and
    dropout rates included), so a change to a builder, or a torchvision/timm release that builds the net
    differently, changes the digest; code inside ``forward`` does not show. Records and checkpoints carry
    it, so a sweep never resumes or counts runs of an older definition (the MNASNet BatchNorm fix kept
    the layer shapes and the weights' layout, so nothing else would have told the two apart). The net is
    built on the meta device: no weights are allocated and no random numbers drawn.

    >>> d = arch_digest("digitnet"); len(d), d == arch_digest("digitnet"), d == arch_digest("vit_p4")
    (12, True, False)
    """
    with torch.device("meta"):
        tree = repr(create_arch(name, num_classes, in_chans))
    return hashlib.sha256(tree.encode()).hexdigest()[:12]


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _restride(conv: nn.Conv2d, stride: int = 1, kernel_size: int | None = None,
              in_chans: int | None = None) -> nn.Conv2d:
    """A fresh conv like ``conv`` but with another stride (and optionally kernel / input channels)."""
    k = kernel_size or conv.kernel_size[0]
    return nn.Conv2d(in_chans or conv.in_channels, conv.out_channels, k, stride=stride,
                     padding=k // 2, groups=conv.groups, bias=conv.bias is not None)


BN_MOMENTUM = 0.1  # PyTorch's default: BatchNorm running statistics settle within a few dozen iterations


def _short_schedule_bn(model: nn.Module) -> nn.Module:
    """Set every BatchNorm's running-statistics momentum to :data:`BN_MOMENTUM`; returns ``model``.

    torchvision's MNASNet (momentum 0.0003) and EfficientNet (0.01) keep TensorFlow's BatchNorm decay,
    chosen for hundreds of ImageNet epochs. In a 2,000-10,000-iteration run their running statistics are
    still mostly the initial ones (0.9997^6000 = 0.17 of the weight), so in eval mode the net is at chance
    while its training loss falls: MNASNet-1.0 measured 8.7-12.6 % source accuracy for 6,000 iterations
    with its loss down from 6.3 to 0.13. The momentum changes nothing in training mode.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = BN_MOMENTUM
    return model


class DigitNet(nn.Module):
    """conv5x5(64)-ReLU-pool-conv5x5(128)-ReLU-pool-fc1024-ReLU-fc1024-ReLU-fc (Volpi et al. 2018)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 5 * 5, 1024), nn.ReLU(inplace=True),
            nn.Linear(1024, 1024), nn.ReLU(inplace=True), nn.Linear(1024, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_arch("digitnet", "cnn", "the single-source digits ConvNet (Volpi et al. 2018)")
def _digitnet(num_classes: int, in_chans: int) -> nn.Module:
    return DigitNet(num_classes, in_chans)


@register_arch("resnet18", "cnn", "torchvision ResNet-18, 3x3/1 stem conv + max-pool (body at 16x16)")
def _resnet18(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import resnet18

    m = resnet18(num_classes=num_classes)
    # Keeping the stem max-pool runs the body at 16x16: 4x cheaper than the CIFAR port, same final 2x2.
    m.conv1 = _restride(m.conv1, 1, kernel_size=3, in_chans=in_chans)
    return m


@register_arch("vgg11_bn", "cnn", "torchvision VGG-11-BN features, 512->classes linear head (CIFAR VGG)")
def _vgg11_bn(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import vgg11_bn

    m = vgg11_bn(num_classes=num_classes)
    m.features[0] = _restride(m.features[0], 1, in_chans=in_chans)
    # Five pools take 32x32 to 1x1: the 7x7x512 -> 4096 ImageNet head would be 98% of the weights.
    m.avgpool = nn.Identity()
    m.classifier = nn.Linear(512, num_classes)
    return m


@register_arch("densenet_cifar", "cnn",
               "torchvision DenseNet, DenseNet-121 blocks (6,12,24,16), growth 12, 3x3/1 stem + pool")
def _densenet_cifar(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import DenseNet

    m = DenseNet(growth_rate=12, block_config=(6, 12, 24, 16), num_init_features=24,
                 num_classes=num_classes)
    m.features.conv0 = _restride(m.features.conv0, 1, kernel_size=3, in_chans=in_chans)
    return m


@register_arch("mobilenet_v2", "nas", "torchvision MobileNetV2, stride-1 stem")
def _mobilenet_v2(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import mobilenet_v2

    m = mobilenet_v2(num_classes=num_classes)
    m.features[0][0] = _restride(m.features[0][0], 1, in_chans=in_chans)
    return m


@register_arch("mnasnet1_0", "nas", "torchvision MNASNet-1.0 (NAS-derived), stride-1 stem, BatchNorm momentum 0.1")
def _mnasnet(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import mnasnet1_0

    m = mnasnet1_0(num_classes=num_classes)
    m.layers[0] = _restride(m.layers[0], 1, in_chans=in_chans)
    return _short_schedule_bn(m)


@register_arch("efficientnet_b0", "nas", "torchvision EfficientNet-B0 (NAS-derived), stride-1 stem, BatchNorm "
               "momentum 0.1")
def _efficientnet_b0(num_classes: int, in_chans: int) -> nn.Module:
    from torchvision.models import efficientnet_b0

    m = efficientnet_b0(num_classes=num_classes)
    m.features[0][0] = _restride(m.features[0][0], 1, in_chans=in_chans)
    return _short_schedule_bn(m)


@register_arch("regnetx_002", "nas", "timm RegNetX-200MF (design-space search), stride-1 stem")
def _regnetx_002(num_classes: int, in_chans: int) -> nn.Module:
    import timm

    m = timm.create_model("regnetx_002", pretrained=False, num_classes=num_classes, in_chans=in_chans)
    m.stem.conv = _restride(m.stem.conv, 1)
    return m


@register_arch("vit_p4", "vit", "timm VisionTransformer, 32x32 / patch 4 (64 tokens), dim 128, depth 6, 4 heads")
def _vit_p4(num_classes: int, in_chans: int) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=32, patch_size=4, in_chans=in_chans, num_classes=num_classes,
                             embed_dim=128, depth=6, num_heads=4, mlp_ratio=2.0)

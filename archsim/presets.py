"""Named model lists: the paper's 44 architectures (``paper44``) and every torchvision classifier."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ._registry import Registry
from .errors import UnknownNameError


@dataclass(frozen=True)
class PresetEntry:
    """One architecture of a preset: the paper's label, what it resolves to, and how it is tokenized."""

    label: str
    model: str  # a qualified archsim model name: tv:…, timm:… or archsim:…
    profile: str = "torch"
    note: str = ""  # substitution or caveat, empty when the model is the one the paper used

    @property
    def source(self) -> str:
        """Where the model definition comes from: torchvision, timm or archsim."""
        prefix = self.model.partition(":")[0]
        return {"tv": "torchvision", "timm": "timm", "archsim": "archsim", "keras": "keras", "hf": "hf"}[prefix]


PRESETS: Registry[Callable[[], list[PresetEntry]]] = Registry("preset", UnknownNameError)

register_preset = PRESETS.decorator()
register_preset.__doc__ = "Add a preset (a function returning its entries; name defaults to the function's)."


def list_presets(pattern: str = "*") -> list[str]:
    """Names of the registered presets matching ``pattern``.

    >>> list_presets()
    ['paper44', 'paper44-torch', 'torchvision']
    """
    return PRESETS.list(pattern)


def get_preset(name: str) -> list[PresetEntry]:
    """The entries of preset ``name``, in its defined order.

    >>> get_preset("paper44")[13]
    PresetEntry(label='vgg11', model='tv:vgg11', profile='torch', note="the paper's VGG11 string is PyTorch's leaf modules")
    """
    return list(PRESETS.get(name)())


K, KL, T = "keras", "keras-like", "torch"
_FB_SSL = ("Facebook's semi-supervised ImageNet ResNet-50 (PyTorch Hub) is torchvision's ResNet-50 "
           "class with other weights; the architecture is identical")
_EFFNET_KERAS = ("the label's camel case follows Keras's EfficientNetB{i} (torchvision would be efficientnet_b{i}), "
                 "so the paper's entry is read as Keras's")

# The figure's PyTorch half (labels 20-44 except the EfficientNets), shared by both presets.
_PYTORCH_TAIL = [
    PresetEntry("squeezenet", "tv:squeezenet1_0", T, "SqueezeNet 1.0 (PyTorch Hub's default squeezenet)"),
    PresetEntry("shufflenet", "tv:shufflenet_v2_x1_0", T, "ShuffleNet V2 1.0×"),
    PresetEntry("wide resnet", "tv:wide_resnet50_2", T, "Wide ResNet-50-2"),
    PresetEntry("googlenet", "tv:googlenet", T),
    PresetEntry("inception_V3", "tv:inception_v3", T),
    PresetEntry("resnet_ssl_facebook", "tv:resnet50", T, _FB_SSL),
    PresetEntry("proxyless_nas", "archsim:proxylessnas_mobile", T, "defined in archsim (ProxylessNAS-Mobile)"),
    PresetEntry("fcn_resnet101", "tv:fcn_resnet101", T),
    PresetEntry("ibn", "archsim:resnet50_ibn_a", T, "defined in archsim (ResNet-50-IBN-a)"),
    PresetEntry("u-net", "archsim:unet", T,
                "defined in archsim: Ronneberger et al. 2015 (1×572×572, unpadded); the paper's PyTorch Hub "
                "U-Net (brain MRI) is a variant with BatchNorm and padding"),
    PresetEntry("resnest", "timm:resnest50d", T, "timm's ResNeSt-50 (the ResNeSt authors' resnest50)"),
    PresetEntry("ghostnet", "timm:ghostnet_100", T, "timm's GhostNet 1.0×"),
    PresetEntry("resnext", "tv:resnext50_32x4d", T, "ResNeXt-50 32×4d"),
    PresetEntry("midas", "archsim:midas_v21", T,
                "defined in archsim (MiDaS v2.1: ResNeXt-101 32×8d encoder + fusion decoder)"),
    PresetEntry("deeplabv3", "tv:deeplabv3_resnet101", T, "DeepLabV3 with ResNet-101"),
    PresetEntry("vit", "tv:vit_b_16", T, "ViT-B/16"),
    PresetEntry("CORnet", "archsim:cornet_s", T, "defined in archsim (CORnet-S)"),
]

# The figure's order.  The paper tokenized its Keras-labelled entries (the first 19 except
# vgg11, and efficientNetb0-b7) from keras.applications' `model.layers` minus InputLayer and
# Flatten, and the rest from PyTorch leaf modules: paper44 reads exactly that.
_PAPER44 = [
    *(PresetEntry(label, f"keras:{k}", K) for label, k in (
        ("mobilenet", "MobileNet"), ("mobilenetv2", "MobileNetV2"), ("resnet50", "ResNet50"),
        ("resnet101", "ResNet101"), ("resnet152", "ResNet152"), ("resnet50v2", "ResNet50V2"),
        ("resnet101v2", "ResNet101V2"), ("resnet152v2", "ResNet152V2"), ("xception", "Xception"),
        ("inceptionv3", "InceptionV3"), ("inceptionResnetv2", "InceptionResNetV2"), ("vgg16", "VGG16"),
        ("vgg19", "VGG19"))),
    PresetEntry("vgg11", "tv:vgg11", T, "the paper's VGG11 string is PyTorch's leaf modules"),
    *(PresetEntry(label, f"keras:{k}", K) for label, k in (
        ("densenet121", "DenseNet121"), ("densenet169", "DenseNet169"), ("densenet201", "DenseNet201"),
        ("nasnetMobile", "NASNetMobile"), ("nasnetLarge", "NASNetLarge"))),
    *(PresetEntry(f"efficientNetb{i}", f"keras:EfficientNetB{i}", K, _EFFNET_KERAS.format(i=i)) for i in range(8)),
    *_PYTORCH_TAIL,
]

# paper44 as the first round approximated it: PyTorch models for every entry, the Keras-labelled
# ones read with the keras-like fold (measured against the real Keras lists: docs/figure6.md).
_PAPER44_TORCH = [
    PresetEntry("mobilenet", "timm:mobilenetv1_100", KL, "timm's MobileNet v1 (1.0, 224); torchvision has none"),
    PresetEntry("mobilenetv2", "tv:mobilenet_v2", KL),
    PresetEntry("resnet50", "tv:resnet50", KL),
    PresetEntry("resnet101", "tv:resnet101", KL),
    PresetEntry("resnet152", "tv:resnet152", KL),
    PresetEntry("resnet50v2", "timm:resnetv2_50", KL, "timm's pre-activation ResNet v2 (He et al. 2016)"),
    PresetEntry("resnet101v2", "timm:resnetv2_101", KL, "timm's pre-activation ResNet v2 (He et al. 2016)"),
    PresetEntry("resnet152v2", "timm:resnetv2_152", KL, "timm's pre-activation ResNet v2 (He et al. 2016)"),
    PresetEntry("xception", "timm:legacy_xception", KL, "timm's port of Chollet's original Xception (= Keras')"),
    PresetEntry("inceptionv3", "tv:inception_v3", KL),
    PresetEntry("inceptionResnetv2", "timm:inception_resnet_v2", KL),
    PresetEntry("vgg16", "tv:vgg16", KL),
    PresetEntry("vgg19", "tv:vgg19", KL),
    PresetEntry("vgg11", "tv:vgg11", T),
    PresetEntry("densenet121", "tv:densenet121", KL),
    PresetEntry("densenet169", "tv:densenet169", KL),
    PresetEntry("densenet201", "tv:densenet201", KL),
    PresetEntry("nasnetMobile", "archsim:nasnet_a_mobile", KL,
                "defined in archsim (NASNet-A 4@1056) from timm's NASNet-A cells"),
    PresetEntry("nasnetLarge", "timm:nasnetalarge", KL),
    *(PresetEntry(f"efficientNetb{i}", f"tv:efficientnet_b{i}", T) for i in range(8)),
    *_PYTORCH_TAIL,
]


@register_preset
def paper44() -> list[PresetEntry]:
    return list(_PAPER44)


@register_preset(name="paper44-torch")
def paper44_torch() -> list[PresetEntry]:
    return list(_PAPER44_TORCH)


@register_preset
def torchvision() -> list[PresetEntry]:
    import torchvision.models as tvm
    # Classification models only: the ones in torchvision.models itself, not its
    # detection/segmentation/video/optical_flow/quantization submodules.
    return [PresetEntry(n, f"tv:{n}", T) for n in sorted(tvm.list_models(module=tvm))]


def markdown_table(name: str = "paper44") -> str:
    """The preset as a Markdown table: label, model, source, profile, substitution."""
    rows = ["| # | label | model | source | profile | substitution / note |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(get_preset(name), 1):
        rows.append(f"| {i} | {e.label} | `{e.model}` | {e.source} | {e.profile} | {e.note or '—'} |")
    return "\n".join(rows) + "\n"


__all__ = ["PresetEntry", "get_preset", "list_presets", "register_preset", "markdown_table"]

"""Regenerate tests/golden/*.txt from fresh extraction: `make golden` (then review `git diff`)."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
# (model, profile): CNNs, NAS-derived nets and ViTs from both torchvision and timm.
GOLDEN = [
    ("vgg11", "torch"), ("vgg16", "keras-like"), ("vgg19", "keras-like"), ("resnet50", "torch"),
    ("densenet121", "torch"), ("mobilenet_v2", "torch"), ("mnasnet1_0", "torch"),
    ("efficientnet_b0", "torch"), ("regnet_x_400mf", "torch"), ("vit_b_16", "torch"),
    ("inception_v3", "torch"), ("timm:resnet50d", "torch"), ("timm:vit_tiny_patch16_224", "torch"),
    ("timm:efficientnet_b0", "keras-like"), ("timm:convnext_tiny", "torch"), ("squeezenet1_0", "torch"),
    # ops: what the network computes (CNN, NAS-derived, ViT, segmentation; torchvision and timm)
    *((m, "ops") for m in (
        "vgg11", "resnet50", "densenet121", "mobilenet_v2", "mnasnet1_0", "efficientnet_b0", "regnet_x_400mf",
        "vit_b_16", "inception_v3", "squeezenet1_0", "timm:resnet50d", "timm:vit_tiny_patch16_224",
        "timm:convnext_tiny", "lraspp_mobilenet_v3_large", "archsim:unet")),
    # the real Keras lists (shipped: no Keras needed), the paper's rule and the ops they compute
    ("keras:VGG16", "keras"), ("keras:ResNet50", "keras"), ("keras:ResNet50", "ops"), ("keras:MobileNetV2", "keras"),
    ("keras:NASNetMobile", "keras"),
]


def extract_all(model: str) -> dict:
    """Every profile of ``model`` from one forward pass (as the token cache does)."""
    from archsim.tracing import trace
    seqs = trace(model)
    seqs.setdefault("keras-like", seqs["torch"].with_profile("keras-like"))
    return seqs


def golden_path(model: str, profile: str) -> Path:
    """File holding the expected tokens of one (model, profile)."""
    return HERE / f"{model.replace(':', '__')}.{profile}.txt"


def render(seq) -> str:
    """Golden text: the letter string, then one `token path` line per layer."""
    lines = [str(seq), f"# order={seq.order} source={seq.source} input={list(seq.input_size)}"]
    lines += [f"{t} {p}" for t, p in zip(seq.tokens, seq.paths)]
    return "\n".join(lines) + "\n"


def main() -> int:
    for model in dict.fromkeys(m for m, _ in GOLDEN):
        seqs = extract_all(model)
        for profile in (p for m, p in GOLDEN if m == model):
            path = golden_path(model, profile)
            path.write_text(render(seqs[profile]), encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

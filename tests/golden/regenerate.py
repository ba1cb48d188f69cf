"""Regenerate tests/golden/*.txt from fresh extraction: `make golden` (then review `git diff`)."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
# (model, profile): CNNs, NAS-derived nets and ViTs from both torchvision and timm.
GOLDEN = [
    ("vgg11", "torch"), ("vgg16", "keras"), ("vgg19", "keras"), ("resnet50", "torch"),
    ("densenet121", "torch"), ("mobilenet_v2", "torch"), ("mnasnet1_0", "torch"),
    ("efficientnet_b0", "torch"), ("regnet_x_400mf", "torch"), ("vit_b_16", "torch"),
    ("inception_v3", "torch"), ("timm:resnet50d", "torch"), ("timm:vit_tiny_patch16_224", "torch"),
    ("timm:efficientnet_b0", "keras"), ("timm:convnext_tiny", "torch"), ("squeezenet1_0", "torch"),
]


def golden_path(model: str, profile: str) -> Path:
    """File holding the expected tokens of one (model, profile)."""
    return HERE / f"{model.replace(':', '__')}.{profile}.txt"


def render(seq) -> str:
    """Golden text: the letter string, then one `token path` line per layer."""
    lines = [str(seq), f"# order={seq.order} source={seq.source} input={list(seq.input_size)}"]
    lines += [f"{t} {p}" for t, p in zip(seq.tokens, seq.paths)]
    return "\n".join(lines) + "\n"


def main() -> int:
    from archsim.tracing import extract
    for model, profile in GOLDEN:
        path = golden_path(model, profile)
        path.write_text(render(extract(model, profile=profile)), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

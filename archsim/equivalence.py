"""Does a profile measure the architecture? Same architectures from two libraries, and different families.

A similarity index is only useful if the same network written twice scores ≈ 1 and different
families score clearly lower.  :data:`EQUIVALENT` lists architectures that torchvision and timm
(or two spellings in one library) both implement; :data:`DIFFERENT` lists pairs of different
families.  :func:`equivalence_table` scores both from the zoo cache (or fresh), and
:func:`margin` says how far the lowest equivalent pair sits above the highest different one.

``python -m archsim.equivalence [--profile P]`` prints the table that ``docs/equivalence.md`` shows.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

# (a, b, note): the same architecture from two implementations.  A note explains a real
# architectural difference where one exists.
EQUIVALENT: tuple[tuple[str, str, str], ...] = (
    ("tv:resnet50", "timm:resnet50", ""),
    ("tv:resnet101", "timm:resnet101", ""),
    ("tv:resnext50_32x4d", "timm:resnext50_32x4d", ""),
    ("tv:wide_resnet50_2", "timm:wide_resnet50_2", ""),
    ("tv:densenet121", "timm:densenet121", ""),
    ("tv:mobilenet_v2", "timm:mobilenetv2_100", ""),
    ("tv:mobilenet_v3_large", "timm:mobilenetv3_large_100", ""),
    ("tv:mnasnet1_0", "timm:mnasnet_100", ""),
    ("tv:efficientnet_b0", "timm:efficientnet_b0", ""),
    ("tv:regnet_x_400mf", "timm:regnetx_004", ""),
    ("tv:regnet_y_400mf", "timm:regnety_004", ""),
    ("tv:inception_v3", "timm:inception_v3", ""),
    ("tv:convnext_tiny", "timm:convnext_tiny", ""),
    ("tv:vit_b_16", "timm:vit_base_patch16_224", ""),
    ("tv:swin_t", "timm:swin_tiny_patch4_window7_224", ""),
    ("tv:vgg16", "timm:vgg16", "timm's VGG replaces the first two Linear layers of the classifier by a "
     "ConvMlp (`pre_logits`: 7×7 and 1×1 convolutions) and pools after it: a real difference"),
    ("tv:vgg11_bn", "timm:vgg11_bn", "as vgg16: timm's ConvMlp head"),
    # Keras (keras.applications on the torch backend) against PyTorch implementations
    ("keras:ResNet50", "tv:resnet50", ""),
    ("keras:ResNet101", "tv:resnet101", ""),
    ("keras:DenseNet121", "tv:densenet121", ""),
    ("keras:InceptionV3", "tv:inception_v3", ""),
    ("keras:EfficientNetB0", "timm:tf_efficientnet_b0", ""),
    ("keras:EfficientNetV2S", "tv:efficientnet_v2_s", ""),
    ("keras:Xception", "timm:legacy_xception", ""),
    ("keras:InceptionResNetV2", "timm:inception_resnet_v2", ""),
    ("keras:NASNetLarge", "timm:nasnetalarge", ""),
    ("keras:MobileNetV2", "tv:mobilenet_v2", ""),
    ("keras:ConvNeXtTiny", "tv:convnext_tiny", ""),
    ("keras:VGG16", "tv:vgg16", "Keras's classifier has no global pooling and ends in a softmax"),
)
# Pairs of different families (the first four share building blocks, the rest hardly any).
DIFFERENT: tuple[tuple[str, str], ...] = (
    ("tv:resnet50", "tv:regnet_x_400mf"),
    ("tv:mobilenet_v3_large", "tv:mnasnet1_0"),
    ("tv:mobilenet_v2", "tv:resnet50"),
    ("tv:googlenet", "tv:inception_v3"),
    ("tv:vit_b_16", "tv:swin_t"),
    ("tv:inception_v3", "tv:resnet50"),
    ("tv:mobilenet_v2", "tv:efficientnet_b0"),
    ("tv:convnext_tiny", "tv:swin_t"),
    ("tv:resnet18", "tv:vgg11_bn"),
    ("tv:resnet50", "tv:densenet121"),
    ("tv:densenet121", "tv:efficientnet_b0"),
    ("tv:resnet50", "tv:vgg16"),
    ("tv:vgg16", "tv:vit_b_16"),
)


@dataclass(frozen=True)
class Row:
    """One scored pair."""

    a: str
    b: str
    equivalent: bool
    similarity: float
    note: str = ""


def _seqs(names: list[str], profile: str, fresh: bool) -> dict:
    if fresh:
        from .tracing import extract
        return {n: extract(n, profile=profile, cache=True) for n in names}
    from .zoo.store import load_zoo
    zoo = load_zoo()
    return {n: zoo.seq(n, profile) for n in names}


def equivalence_table(profile: str = "ops", fresh: bool = False) -> list[Row]:
    """Score :data:`EQUIVALENT` and :data:`DIFFERENT` pairs under ``profile``.

    Args:
        profile: ``ops``, ``torch`` or ``keras-like``.
        fresh: extract the models (through the token cache) instead of reading the zoo cache.

    Returns:
        One ``Row`` per pair, equivalent pairs first.
    """
    from .alignment import align
    names = sorted({n for p in EQUIVALENT for n in p[:2]} | {n for p in DIFFERENT for n in p})
    seqs = _seqs(names, profile, fresh)
    rows = [Row(a, b, True, align(seqs[a], seqs[b]).similarity, note) for a, b, note in EQUIVALENT]
    rows += [Row(a, b, False, align(seqs[a], seqs[b]).similarity) for a, b in DIFFERENT]
    return rows


def margin(rows: list[Row], noted: bool = False) -> float:
    """Lowest equivalent similarity minus highest different one (pairs with a note left out unless ``noted``)."""
    eq = [r.similarity for r in rows if r.equivalent and (noted or not r.note)]
    diff = [r.similarity for r in rows if not r.equivalent]
    return min(eq) - max(diff)


def markdown(rows_by_profile: dict[str, list[Row]]) -> str:
    """The table of every pair, one similarity column per profile."""
    profiles = list(rows_by_profile)
    first = rows_by_profile[profiles[0]]
    head = "| pair | kind | " + " | ".join(profiles) + " | note |"
    lines = [head, "|" + "---|" * (len(profiles) + 3)]
    for i, r in enumerate(first):
        cells = " | ".join(f"{rows_by_profile[p][i].similarity:.3f}" for p in profiles)
        lines.append(f"| `{r.a}` vs `{r.b}` | {'same' if r.equivalent else 'different'} | {cells} | {r.note} |")
    lines.append("| **margin** (lowest same − highest different, noted pairs aside) | | "
                 + " | ".join(f"**{margin(rows_by_profile[p]):+.3f}**" for p in profiles) + " | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the equivalence table for every profile (from the zoo cache)."""
    argv = sys.argv[1:] if argv is None else argv
    # keras-like, not keras: a PyTorch model has no Keras layer list (a Keras model's is both)
    profiles = [argv[argv.index("--profile") + 1]] if "--profile" in argv else ["torch", "keras-like", "ops"]
    sys.stdout.write(markdown({p: equivalence_table(p) for p in profiles}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

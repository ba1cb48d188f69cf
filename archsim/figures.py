"""The paper's Figure 6: the paper44 correlation heatmaps, the VGG zoom and the three DP matrices."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ._io import check_output_dir
from .alignment import Alignment, align
from .plot import (_RC, FORMATS, _mpl, alignment_strip, check_targets, clustermap, csv_text, dp_matrix, heatmap,
                   legend_tokens, render_figure, write_outputs)
from .tokens import LayerSeq

# The token strings printed in the paper's Figure 6 (VGG16/VGG19 from Keras, VGG11 from PyTorch).
PAPER_TOKENS = {
    "VGG16": "CCMCCMCCCMCCCMCCCMLLL",
    "VGG19": "CCMCCMCCCCMCCCCMCCCCMLLL",
    "VGG11": "CRMCRMCRCRMCRCRMCRCRMALRDLRDL",
}
# Panel (c): rows × columns of each DP matrix, as in the paper.
DP_PAIRS = (("VGG16", "VGG11"), ("VGG16", "VGG19"), ("VGG19", "VGG11"))
VGG_LABELS = ("vgg16", "vgg19", "vgg11")  # their labels in the paper44 preset


def vgg_zoom(corr, seqs: dict[str, LayerSeq], labels: Sequence[str] = VGG_LABELS, title: str | None = None):
    """Panel (b): the VGG block of the correlation heatmap beside the three pairwise alignment strips."""
    matplotlib, plt = _mpl()
    block = corr.loc[list(labels), list(labels)]
    block.attrs.update(corr.attrs)
    pairs = [(labels[0], labels[2]), (labels[0], labels[1]), (labels[1], labels[2])]
    als = [align(seqs[a], seqs[b]) for a, b in pairs]
    width = max(al.length for al in als)
    with matplotlib.rc_context(_RC):
        fig = plt.figure(figsize=(5.2 + 0.34 * width, 6.4))
        gs = fig.add_gridspec(3, 2, width_ratios=[4.2, 0.34 * width], wspace=0.08, hspace=0.9)
        heatmap(block, ax=fig.add_subplot(gs[:, 0]), annot=True, cbar=False,
                title="correlation similarity\n(VGG block of panel a)")
        for k, al in enumerate(als):
            alignment_strip(al, fig.add_subplot(gs[k, 1]), ncols=width)
        fig.legend(handles=legend_tokens(als), loc="lower center", ncol=6, frameon=False,
                   bbox_to_anchor=(0.62, 0.0), fontsize=8.5)
        fig.suptitle(title or "VGG11 / VGG16 / VGG19: correlation block and aligned layers (red: differing layers)",
                     y=1.0)
    return fig


def paper_alignments() -> list[Alignment]:
    """Alignments of the paper's VGG token strings in panel (c)'s order."""
    seqs = {k: LayerSeq.from_letters(v, name=k) for k, v in PAPER_TOKENS.items()}
    return [align(seqs[a], seqs[b]) for a, b in DP_PAIRS]


def figure6(outdir: str | os.PathLike = "figures", preset_name: str = "paper44", cache: bool = True,
            progress: bool | None = None, cmap: str | None = None) -> list[Path]:
    """Regenerate every Figure 6 panel (and the matrices as CSV) into ``outdir``; returns the written paths.

    Panel (a) uses ``cmap`` (default ``rocket``: purple lowest, skin highest, as the paper
    describes it; ``diverging`` for the red/blue map centred on 0).

    The folder and every target file are checked before any model is loaded, and every panel is
    rendered in memory before the first file is replaced, so a bad ``outdir`` or a drawing error
    leaves the existing files as they were.
    """
    from .presets import get_preset
    from .matrices import correlation, load_sequences, reorder, similarity_matrix
    _, plt = _mpl()
    out = check_output_dir(outdir)
    stems = ["fig6a_correlation", "fig6a_correlation_clustered", "fig6b_vgg_zoom",
             *(f"fig6c_dp_{a.lower()}_{b.lower()}" for a, b in DP_PAIRS)]
    check_targets([out / f"{preset_name}_{m}.csv" for m in ("similarity", "correlation")] +
                  [out / f"{stem}.{fmt}" for stem in stems for fmt in FORMATS])
    outputs: dict[Path, str | bytes] = {}
    seqs = load_sequences(get_preset(preset_name), cache=cache, progress=progress)
    sim = similarity_matrix(seqs, progress=progress)
    corr = correlation(sim)
    for df, name in ((sim, "similarity"), (corr, "correlation")):
        outputs[out / f"{preset_name}_{name}.csv"] = csv_text(df)

    def render(fig, stem: str, tight: bool = True) -> None:
        try:
            outputs.update(render_figure(fig, out / stem, tight=tight))
        finally:
            plt.close(fig)

    n = len(corr)
    render(heatmap(corr, title=f"(a) DNN architectural similarity: correlation similarity, {n} models", cmap=cmap),
           "fig6a_correlation")
    render(clustermap(corr, title=f"(a) correlation similarity, {n} models, hierarchically clustered", cmap=cmap),
           "fig6a_correlation_clustered")
    by_name = {s.name: s for s in seqs}
    if all(v in by_name for v in VGG_LABELS):
        render(vgg_zoom(reorder(corr, list(corr.index)), by_name), "fig6b_vgg_zoom")
    for al in paper_alignments():
        render(dp_matrix(al), f"fig6c_dp_{al.name_a.lower()}_{al.name_b.lower()}", tight=False)
    return write_outputs(outputs)


__all__ = ["figure6", "paper_alignments", "vgg_zoom", "PAPER_TOKENS", "DP_PAIRS", "VGG_LABELS"]

"""The paper's Figure 6: the paper44 correlation heatmaps, the VGG zoom and the three DP matrices."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ._io import check_output_dir
from .alignment import Alignment, align
from .plot import _RC, _mpl, alignment_strip, clustermap, dp_matrix, heatmap, legend_tokens, save_csv, save_figure
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
            progress: bool | None = None) -> list[Path]:
    """Regenerate every Figure 6 panel (and the matrices as CSV) into ``outdir``; returns the written paths."""
    from .presets import get_preset
    from .matrices import correlation, load_sequences, reorder, similarity_matrix
    _, plt = _mpl()
    out = check_output_dir(outdir)
    written: list[Path] = []
    seqs = load_sequences(get_preset(preset_name), cache=cache, progress=progress)
    sim = similarity_matrix(seqs, progress=progress)
    corr = correlation(sim)
    for df, name in ((sim, "similarity"), (corr, "correlation")):
        written.append(save_csv(df, out / f"{preset_name}_{name}.csv"))

    n = len(corr)
    fig = heatmap(corr, title=f"(a) DNN architectural similarity: correlation similarity, {n} models")
    written += save_figure(fig, out / "fig6a_correlation")
    plt.close(fig)
    fig = clustermap(corr, title=f"(a) correlation similarity, {n} models, hierarchically clustered")
    written += save_figure(fig, out / "fig6a_correlation_clustered")
    plt.close(fig)

    by_name = {s.name: s for s in seqs}
    if all(v in by_name for v in VGG_LABELS):
        fig = vgg_zoom(reorder(corr, list(corr.index)), by_name)
        written += save_figure(fig, out / "fig6b_vgg_zoom")
        plt.close(fig)

    for al in paper_alignments():
        fig = dp_matrix(al)
        written += save_figure(fig, out / f"fig6c_dp_{al.name_a.lower()}_{al.name_b.lower()}", tight=False)
        plt.close(fig)
    return written


__all__ = ["figure6", "paper_alignments", "vgg_zoom", "PAPER_TOKENS", "DP_PAIRS", "VGG_LABELS"]

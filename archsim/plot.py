"""Figures: similarity/correlation heatmaps, aligned layer strips, NW DP matrices and the Figure 6 set."""
from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ._io import OutputError, Payload, atomic_write, check_output_dir
from .alignment import MATCH, Alignment
from .errors import UnknownNameError
from .tokens import letter

FORMATS = ("png", "pdf")
DPI = 150  # PNGs are previews; the PDFs are the vector, publication versions
_RC = {"font.size": 9, "axes.titlesize": 11, "axes.labelsize": 10, "pdf.fonttype": 42,
       "font.family": "DejaVu Sans"}

# Fixed colours for common layer types so strips read the same in every panel.
_TOKEN_COLORS = {"Conv2d": "#4C72B0", "ReLU": "#DD8452", "MaxPool2d": "#55A868", "Linear": "#8172B3",
                 "Dropout": "#937860", "AdaptiveAvgPool2d": "#DA8BC3", "BatchNorm2d": "#8C8C8C",
                 "Flatten": "#CCB974", "Identity": "#64B5CD"}
_DIFF = "#D62728"


def _mpl():
    import matplotlib
    import matplotlib.pyplot as plt
    return matplotlib, plt


def figure_bytes(fig, fmt: str, dpi: int = DPI, tight: bool = True) -> bytes:
    """``fig`` rendered in memory as ``fmt`` (``png``/``pdf``), so a drawing error touches no file."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, pad_inches=0.15, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def render_figure(fig, stem: str | os.PathLike, formats: Sequence[str] = FORMATS, dpi: int = DPI,
                  tight: bool = True) -> dict[Path, bytes]:
    """``{stem.png: bytes, stem.pdf: bytes}``: every format rendered, nothing written yet."""
    stem = Path(stem)
    return {stem.with_name(f"{stem.name}.{fmt}"): figure_bytes(fig, fmt, dpi, tight) for fmt in formats}


def check_targets(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Make sure every output file can be written (no folder in its place, its folder writable).

    Raises ``OutputError`` naming the first bad one; call it before long work and before
    replacing any file, so a bad output location leaves every existing file as it was.
    """
    paths = [Path(p) for p in paths]
    for p in paths:
        if p.is_dir():
            raise OutputError(f"{p} is a folder; remove it or choose another output folder")
    for parent in dict.fromkeys(p.parent for p in paths):
        check_output_dir(parent)
    return paths


def write_outputs(outputs: Mapping[str | os.PathLike, Payload]) -> list[Path]:
    """Write already-rendered files: all targets are checked first, then each is written atomically."""
    check_targets(outputs)
    return [atomic_write(p, data) for p, data in outputs.items()]


def save_figure(fig, stem: str | os.PathLike, formats: Sequence[str] = FORMATS, dpi: int = DPI,
                tight: bool = True) -> list[Path]:
    """Write ``fig`` as ``stem.png``/``stem.pdf``: all formats rendered first, then each written atomically."""
    return write_outputs(render_figure(fig, stem, formats, dpi, tight))


def csv_text(df) -> str:
    """A matrix as CSV text (six decimals)."""
    return df.to_csv(float_format="%.6f")


def save_csv(df, path: str | os.PathLike) -> Path:
    """Write a matrix as CSV atomically."""
    return atomic_write(Path(path), csv_text(df))


# Colormaps: the paper describes its correlation panel as "purple as the lowest and skin as the
# highest", seaborn's sequential `rocket`; "diverging" is the red/blue map centred on 0.
CMAPS = ("rocket", "diverging", "viridis", "magma", "mako")


def _metric_style(df, cmap: str | None = None) -> dict:
    if cmap not in (None, *CMAPS):
        raise UnknownNameError("colormap", str(cmap), CMAPS)
    if df.attrs.get("metric") == "correlation":
        label = "correlation similarity"
        if cmap == "diverging":
            return {"vmin": -1.0, "vmax": 1.0, "cmap": "RdBu_r", "center": 0.0, "label": label}
        # A sequential map spends its colours on the values present (correlations are mostly > 0).
        low = float(np.nanmin(df.to_numpy(dtype=float))) if df.size else -1.0
        vmin = max(-1.0, np.floor(low * 10) / 10)
        return {"vmin": vmin, "vmax": 1.0, "cmap": cmap or "rocket", "center": None, "label": label}
    if cmap == "diverging":
        return {"vmin": 0.0, "vmax": 1.0, "cmap": "RdBu_r", "center": 0.5, "label": "similarity index"}
    return {"vmin": 0.0, "vmax": 1.0, "cmap": cmap or "viridis", "center": None, "label": "similarity index"}


def heatmap(df, title: str | None = None, ax=None, annot: bool | None = None, cbar: bool = True,
            cmap: str | None = None):
    """Heatmap of a similarity or correlation DataFrame; every row/column labelled (readable at 44).

    ``cmap``: one of :data:`CMAPS` (default: ``rocket`` for correlations, ``viridis`` for similarities).
    """
    import seaborn as sns
    matplotlib, plt = _mpl()
    n = len(df)
    st = _metric_style(df, cmap)
    annot = n <= 12 if annot is None else annot
    with matplotlib.rc_context(_RC):
        if ax is None:
            side = min(4.0 + 0.24 * n, 16.0)
            fig, ax = plt.subplots(figsize=(side + 1.6, side))
        else:
            fig = ax.figure
        with warnings.catch_warnings():  # seaborn's own Colormap.set_bad deprecation, not ours
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(df, ax=ax, vmin=st["vmin"], vmax=st["vmax"], cmap=st["cmap"], center=st["center"],
                        square=True, xticklabels=True, yticklabels=True, annot=annot, fmt=".2f",
                        annot_kws={"size": 8}, linewidths=0.3 if n <= 60 else 0, linecolor="white", cbar=cbar,
                        cbar_kws={"label": st["label"], "shrink": 0.6} if cbar else None)
        fs = 9 if n <= 30 else (7.5 if n <= 60 else 5)
        ax.set_xticklabels(ax.get_xticklabels(), rotation=90, fontsize=fs)
        ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=fs)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if title:
            ax.set_title(title, pad=10)
    return fig


def clustermap(df, title: str | None = None, cmap: str | None = None):
    """Hierarchically clustered heatmap with dendrograms (average linkage on 1 − value); ``cmap`` as in heatmap."""
    import seaborn as sns
    from .matrices import linkage
    matplotlib, plt = _mpl()
    st = _metric_style(df, cmap)
    z = linkage(df)
    n = len(df)
    side = min(5.0 + 0.24 * n, 17.0)
    fs = 9 if n <= 30 else (7.5 if n <= 60 else 5)
    with matplotlib.rc_context(_RC):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            g = sns.clustermap(df, row_linkage=z, col_linkage=z, vmin=st["vmin"], vmax=st["vmax"],
                               cmap=st["cmap"], center=st["center"], xticklabels=True, yticklabels=True,
                               figsize=(side, side), dendrogram_ratio=0.12, linewidths=0.3 if n <= 60 else 0,
                               linecolor="white", cbar_kws={"label": st["label"]},
                               cbar_pos=(0.02, 0.83, 0.025, 0.14))
        g.ax_heatmap.set_xticklabels(g.ax_heatmap.get_xticklabels(), rotation=90, fontsize=fs)
        g.ax_heatmap.set_yticklabels(g.ax_heatmap.get_yticklabels(), rotation=0, fontsize=fs)
        g.ax_heatmap.set_xlabel("")
        g.ax_heatmap.set_ylabel("")
        if title:
            g.figure.suptitle(title, y=1.01)
    return g.figure


def differing_layers(al: Alignment) -> Counter:
    """How often each layer type sits in a non-matching column (either side)."""
    c: Counter = Counter()
    for ta, tb, op in al.pairs:
        if op == MATCH:
            continue
        for t in (ta, tb):
            if t is not None:
                c[t] += 1
    return c


def _diff_text(al: Alignment) -> str:
    parts = [f"{n}× {t}" for t, n in differing_layers(al).most_common()]
    return "differs in: " + (", ".join(parts) if parts else "nothing")


def alignment_strip(al: Alignment, ax, title: str | None = None, ncols: int | None = None) -> None:
    """Draw an alignment as two rows of layer boxes; mismatches and gaps highlighted in red."""
    from matplotlib.patches import Rectangle
    cols = al.pairs
    for x, (ta, tb, op) in enumerate(cols):
        if op != MATCH:  # the column band makes each difference visible at a glance
            ax.add_patch(Rectangle((x - 0.5, -0.62), 1.0, 2.24, color=_DIFF, alpha=0.13, lw=0, zorder=0))
        for y, tok in ((1, ta), (0, tb)):
            if tok is None:
                ax.text(x, y, "–", ha="center", va="center", fontsize=11, color=_DIFF, fontweight="bold")
                continue
            face = _TOKEN_COLORS.get(tok, "#B0B0B0")
            ax.add_patch(Rectangle((x - 0.42, y - 0.42), 0.84, 0.84, facecolor=face,
                                   edgecolor=_DIFF if op != MATCH else "white",
                                   lw=1.6 if op != MATCH else 0.5, zorder=1))
            ax.text(x, y, letter(tok), ha="center", va="center", fontsize=8, color="white",
                    fontweight="bold", zorder=2)
        if op == MATCH:
            ax.plot([x, x], [0.42, 0.58], color="#444444", lw=0.8, zorder=0)
    # A shared column count keeps the boxes of stacked strips the same size and aligned.
    ax.set_xlim(-0.7, max(ncols or 0, len(cols), 8) - 0.3)
    ax.set_ylim(-0.8, 1.8)
    ax.set_yticks([0, 1], [al.name_b, al.name_a])
    ax.set_xticks([])
    ax.tick_params(left=False, axis="y", pad=10)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    head = title or f"{al.name_a} vs {al.name_b}"
    ax.set_title(f"{head}: similarity {al.similarity:.3f} ({al.matches}/{al.length})   {_diff_text(al)}",
                 loc="left", fontsize=9.5)


def legend_tokens(als: Sequence[Alignment]) -> list:
    from matplotlib.patches import Patch
    seen = []
    for al in als:
        for t in (*al.a, *al.b):
            if t not in seen:
                seen.append(t)
    return [Patch(facecolor=_TOKEN_COLORS.get(t, "#B0B0B0"), label=f"{letter(t)} = {t}") for t in seen]


def dp_matrix(al: Alignment, ax=None, title: str | None = None):
    """Panel (c): the NW DP matrix with every cell's value and the traceback path drawn as arrows."""
    matplotlib, plt = _mpl()
    h = al.matrix
    n, m = h.shape
    with matplotlib.rc_context(_RC):
        if ax is None:
            # Fixed margins (inches) instead of a tight bounding box: the figure has ~700
            # text cells, and measuring them for a tight box doubles the drawing time.
            cell, left, right, top, bottom = 0.4, 0.75, 0.2, 1.05, 0.2
            w, hh = left + right + cell * m, top + bottom + cell * n
            fig, ax = plt.subplots(figsize=(w, hh))
            fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / hh, bottom=bottom / hh)
        else:
            fig = ax.figure
        from matplotlib.patches import Rectangle
        ax.imshow(h, cmap="Blues", alpha=0.35, aspect="equal")
        on_path = set(al.path)
        for i, j in on_path:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#FFE9A8", edgecolor="none", zorder=1))
        for i in range(n):
            for j in range(m):
                hit = (i, j) in on_path
                ax.text(j, i, str(int(h[i, j])), ha="center", va="center", fontsize=6.5,
                        color=_DIFF if hit else "#222222", fontweight="bold" if hit else "normal", zorder=3)
        # Traceback runs from the bottom-right corner back to (0, 0): arrows point that way.
        for (i1, j1), (i0, j0) in zip(al.path[1:], al.path[:-1]):
            ax.annotate("", xy=(j0 + 0.28 * (j1 - j0), i0 + 0.28 * (i1 - i0)),
                        xytext=(j1 - 0.28 * (j1 - j0), i1 - 0.28 * (i1 - i0)),
                        arrowprops={"arrowstyle": "-|>", "color": _DIFF, "lw": 1.1, "mutation_scale": 7}, zorder=4)
        ax.set_xticks(range(m), ["–"] + [letter(t) for t in al.b], fontsize=8)
        ax.set_yticks(range(n), ["–"] + [letter(t) for t in al.a], fontsize=8)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.set_xticks(np.arange(-0.5, m, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.6)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel(al.name_b)
        ax.set_ylabel(al.name_a)
        ax.xaxis.set_label_position("top")
        sc = al.scoring
        ax.set_title(title or (f"{al.name_a} × {al.name_b}: score {al.score}, similarity {al.similarity:.3f} "
                               f"= {al.matches}/{al.length}  (match +{sc.match}, mismatch {sc.mismatch}, "
                               f"gap {sc.gap})"), pad=28, fontsize=10)
    return fig


__all__ = ["heatmap", "clustermap", "save_csv", "csv_text", "alignment_strip", "dp_matrix", "save_figure",
           "render_figure", "figure_bytes", "check_targets", "write_outputs", "differing_layers", "legend_tokens"]

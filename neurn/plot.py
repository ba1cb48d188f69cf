"""Figures: originals next to their NeuRN responses per digit domain, the benchmark gain chart, learning curves."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archsim._io import atomic_write, check_output_dir
from neurn.domains import available_domains, load_domain
from neurn.errors import InvalidArgument
from neurn.functional import neurn

EXAMPLES_FILE = "neurn_examples.png"


def default_example_domains(data_root: str | os.PathLike | None = None) -> list[str]:
    """The paper's four domains, using real SVHN/USPS when present and SYN/digits otherwise."""
    have = set(available_domains(data_root, split="test"))
    return ["mnist", "mnistm", "svhn" if "svhn" in have else "syn", "usps" if "usps" in have else "digits"]


def pick_examples(images: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """The first image of each digit 0, 1, ... (n of them; falls back to the first n if a digit is missing)."""
    idx = []
    for digit in range(10):
        hits = torch.nonzero(labels == digit).flatten()
        if len(hits):
            idx.append(int(hits[0]))
    idx = idx[:n] if len(idx) >= n else list(range(min(n, len(labels))))
    return images[idx]


def _montage(batch: torch.Tensor) -> np.ndarray:
    """(n, C, H, W) -> one (H, n·(W+1), 3) strip with 1-pixel white gutters."""
    batch = batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch
    n, _, h, w = batch.shape
    strip = np.ones((h, n * (w + 1) - 1, 3), dtype=np.float32)
    for i, img in enumerate(batch.permute(0, 2, 3, 1).numpy()):
        strip[:, i * (w + 1): i * (w + 1) + w] = img
    return strip


def examples_figure(out_dir: str | os.PathLike = "figures", domains: list[str] | None = None, n: int = 8,
                    kernel_size: int = 3, padding: str = "reflect", size: int = 32, data_root: str | os.PathLike | None = None,
                    filename: str = EXAMPLES_FILE, pool: int = 200) -> Path:
    """Write ``neurn_examples.png``: per domain a row of test originals over their NeuRN versions."""
    import matplotlib

    matplotlib.use("Agg", force=False)  # keep working headless without overriding a notebook backend
    import matplotlib.pyplot as plt

    check_output_dir(out_dir)  # before minutes of domain generation, not after
    domains = domains or default_example_domains(data_root)
    titles = {"mnist": "MNIST", "mnistm": "MNIST-M", "syn": "SYN", "svhn": "SVHN", "usps": "USPS",
              "digits": "Digits (USPS stand-in)", "mnistm-real": "MNIST-M (real)"}
    fig, axes = plt.subplots(len(domains), 1, figsize=(n * 0.9 + 1.2, 2.0 * len(domains)), squeeze=False)
    for ax, name in zip(axes[:, 0], domains):
        images, labels = load_domain(name, "test", size=size, channels=3, limit=pool, data_root=data_root)
        originals = pick_examples(images, labels, n)
        with torch.no_grad():
            # Reflect padding by default: zero padding is the layer's default but paints a bright
            # frame on coloured backgrounds, which would dominate the per-image maximum in a picture.
            responses = neurn(originals, kernel_size=kernel_size, padding=padding)
        gutter = np.ones((1, _montage(originals).shape[1], 3), dtype=np.float32)
        ax.imshow(np.concatenate([_montage(originals), gutter, _montage(responses)]), interpolation="nearest")
        ax.set_title(titles.get(name, name), fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([size / 2, size * 1.5 + 1], ["original", f"NeuRN\n(k={kernel_size},\n{padding})"], fontsize=9)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout()
    path = Path(out_dir) / filename
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format="png"))
    finally:
        plt.close(fig)
    return path


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` through the atomic writer (format from the suffix, png without one) and close it."""
    import matplotlib.pyplot as plt

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format=Path(path).suffix.lstrip(".") or "png"))
    plt.close(fig)
    return Path(path)


def plot_gains(records: list[dict[str, Any]], path: str | Path | None = None, method: str = "neurn",
               baseline: str = "erm"):
    """Grouped bars (architectures x target domains) of the mean paired gain in points, ± std over seeds."""
    import matplotlib

    from neurn.bench.report import AVG, domain_order, gains, records_frame

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gn = gains(records_frame(records), method, baseline)
    if gn.empty or gn["gain"].isna().all():
        # An empty chart would look like "no gain"; say why there is nothing to draw instead.
        raise InvalidArgument(f"no seed has successful runs of both {method} and {baseline} (with finite "
                              "accuracies) in these records: no gain figure")
    source = records[0].get("config", {}).get("source", "mnist")
    # The source's own test split is not domain generalization: show only the unseen targets + avg.
    doms = [d for d in domain_order(records) if d != source]
    archs = list(dict.fromkeys(a for a in gn["arch"] if a != "all")) + ["all"]
    idx = gn.set_index(["arch", "domain"])
    width = 0.8 / max(1, len(doms))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(archs) + 2), 3.8), constrained_layout=True)
    colors = plt.get_cmap("tab10")
    x = np.arange(len(archs))
    for j, d in enumerate(doms):
        vals = [100 * idx.loc[(a, d), "gain"] if (a, d) in idx.index else np.nan for a in archs]
        errs = [100 * idx.loc[(a, d), "gain_std"] if (a, d) in idx.index else np.nan for a in archs]
        color = "black" if d == AVG else colors(j)
        ax.bar(x + (j - (len(doms) - 1) / 2) * width, vals, width, yerr=np.nan_to_num(errs), capsize=2,
               label=d, color=color, alpha=0.85 if d != AVG else 0.6)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, archs, rotation=30, ha="right")
    ax.set_ylabel(f"{method} − {baseline} (accuracy points)")
    iters = records[0].get("config", {}).get("iters")
    # Two lines: on a narrow chart (one or two architectures) one line would run past the figure's edges.
    ax.set_title(f"Gain of {method} over {baseline} on unseen domains ({iters} iters)\n"
                 "bars: mean, whiskers: std over seeds", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="target")
    if path is not None:
        save_figure(fig, path)
    return fig


def _variant_of(method: str) -> tuple[int, str] | None:
    """(kernel size, padding) of a NeuRN ablation method (``neurn``, ``neurn-k5-reflect``, ...), else None."""
    from neurn.bench.protocol import ABLATION_VARIANTS

    return ABLATION_VARIANTS.get(method)


def plot_ablation(records: list[dict[str, Any]], path: str | Path | None = None,
                  reference: list[dict[str, Any]] | None = None):
    """NeuRN window x padding ablation: accuracy per target against k, one line per padding.

    Args:
        records: benchmark records holding NeuRN variants (``neurn``, ``neurn-k5``, ``neurn-k7-reflect``, ...)
            of one architecture; other methods are ignored.
        path: write the PNG there (atomically); None: only return the figure.
        reference: records whose ``erm`` runs of the same architecture are drawn as a dashed line
            (e.g. the cpu-converge sweep, same protocol).

    Returns:
        The matplotlib figure (one panel per unseen target, plus ``avg``; points: seeds; line: mean ± std).
    """
    import matplotlib

    from neurn.bench.report import AVG, domain_order, records_frame

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    df = records_frame(records)
    df = df[df["method"].map(_variant_of).notna()]
    if df.empty:
        raise InvalidArgument("no NeuRN ablation runs (methods neurn, neurn-k5, ..., neurn-k7-reflect) in these records")
    df = df.assign(k=df["method"].map(lambda m: _variant_of(m)[0]), padding=df["method"].map(lambda m: _variant_of(m)[1]))
    arch = df["arch"].iloc[0]
    source = records[0].get("config", {}).get("source", "mnist")
    doms = [d for d in domain_order(records) if d != source]
    ref = None
    if reference:
        r = records_frame(reference)
        ref = r[(r["method"] == "erm") & (r["arch"] == arch)].groupby("domain")["accuracy"].agg(["mean", "count"])
    fig, axes = plt.subplots(1, len(doms), figsize=(2.6 * len(doms) + 0.6, 3.2), constrained_layout=True, squeeze=False)
    styles = {"zeros": ("tab:blue", "o", -0.08), "reflect": ("tab:orange", "s", 0.08)}
    for ax, d in zip(axes[0], doms):
        sub = df[df["domain"] == d]
        for pad, (color, marker, dx) in styles.items():
            s = sub[sub["padding"] == pad]
            if s.empty:
                continue
            ax.scatter(s["k"] + dx, 100 * s["accuracy"], color=color, marker=marker, s=12, alpha=0.45, lw=0)
            m = s.groupby("k")["accuracy"].agg(["mean", "std"]).sort_index()
            ax.errorbar(m.index + dx, 100 * m["mean"], yerr=100 * m["std"].fillna(0), color=color, marker=marker,
                        ms=5, capsize=2, lw=1.2, label=f"{pad} padding")
        if ref is not None and d in ref.index:
            ax.axhline(100 * ref.loc[d, "mean"], color="grey", ls="--", lw=1,
                       label=f"erm ({int(ref.loc[d, 'count'])} seeds)")
        ax.set_title("mean over targets" if d == AVG else d, fontsize=10)
        ax.set_xticks(sorted(df["k"].unique()))
        ax.set_xlabel("NeuRN window k")
    axes[0][0].set_ylabel("top-1 accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    iters = records[0].get("config", {}).get("iters")
    seeds = df["seed"].nunique()
    fig.suptitle(f"NeuRN ablation on {arch} ({iters} iterations, {seeds} seed(s); dots: seeds, bars: mean ± std)",
                 fontsize=9)
    if path is not None:
        save_figure(fig, path)
    return fig


METHOD_COLORS = {"erm": "tab:grey", "neurn": "tab:blue", "randconv": "tab:orange", "neurn+randconv": "tab:green"}


def _curve_runs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful runs that hold a source learning curve (``source_curve``, two points or more)."""
    return [r for r in records if r.get("status") == "ok" and len(r.get("source_curve") or []) >= 2]


def has_curves(records: list[dict[str, Any]]) -> bool:
    """Whether any successful run among ``records`` holds a source learning curve (``source_curve``)."""
    return bool(_curve_runs(records))


def plot_curves(records: list[dict[str, Any]], path: str | Path | None = None):
    """Source learning curves: one panel per architecture, one line per method (mean over seeds).

    Args:
        records: benchmark records; the successful runs with a ``source_curve`` are drawn.
        path: write the PNG there (atomically); None: only return the figure.

    Returns:
        The matplotlib figure. Thin lines: single seeds; thick line: the mean over the seeds that
        reached each iteration. ``InvalidArgument`` when no record has a curve.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from neurn.bench.report import _order

    runs = _curve_runs(records)
    if not runs:
        raise InvalidArgument("no learning curves in these records (run neurn bench with --curve-every N)")
    archs = list(dict.fromkeys(r["arch"] for r in runs))
    fig, axes = plt.subplots(1, len(archs), figsize=(3.4 * len(archs) + 0.6, 3.2), constrained_layout=True,
                             squeeze=False)
    for ax, arch in zip(axes[0], archs):
        mine = [r for r in runs if r["arch"] == arch]
        for method in _order((r["method"] for r in mine), list(METHOD_COLORS)):
            color = METHOD_COLORS.get(method)
            curves = [dict((int(it), float(a)) for it, a in r["source_curve"]) for r in mine if r["method"] == method]
            for c in curves:
                ax.plot(list(c), [100 * a for a in c.values()], color=color, lw=0.6, alpha=0.35)
            its = sorted(set().union(*curves))
            mean = [100 * np.mean([c[i] for c in curves if i in c]) for i in its]
            ax.plot(its, mean, color=color, lw=1.8, label=f"{method} ({len(curves)} seed{'s' * (len(curves) > 1)})")
        ax.set_title(arch, fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("source test accuracy (%)")
    n_eval = runs[0].get("config", {}).get("curve_eval_limit")
    fig.suptitle("Source learning curves" + (f" (first {n_eval:,} source test images)" if n_eval else ""), fontsize=9)
    if path is not None:
        save_figure(fig, path)
    return fig

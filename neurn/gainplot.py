"""Gain chart: NeuRN minus baseline accuracy per architecture and target domain, with seed spread."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neurn.tables import AVG, domain_order, gains, records_frame


def plot_gains(records: list[dict[str, Any]], path: str | Path | None = None, method: str = "neurn",
               baseline: str = "erm"):
    """Grouped bars (architectures x target domains) of the mean paired gain in points, ± std over seeds."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    gn = gains(records_frame(records), method, baseline)
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
    ax.set_title(f"Gain of {method} over {baseline} on unseen domains ({iters} iters; bars: mean, whiskers: std over seeds)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="target")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        plt.close(fig)
    return fig

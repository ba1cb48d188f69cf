"""Gain tables from benchmark records: mean ± std over seeds, NeuRN-vs-baseline gains, paired tests."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from scipy import stats

from neurn.bench.protocol import TABLE_FORMATS
from neurn.bench.records import diff_config, iter_records
from neurn.errors import BenchError, UnknownName

AVG = "avg"  # pseudo-domain: mean over the non-source targets of one run (the headline)
FORMATS = TABLE_FORMATS


def load_records(folder: str | Path) -> list[dict[str, Any]]:
    """Records of a results folder; refuses a folder that mixes protocol configs."""
    recs = iter_records(folder)
    if not recs:
        raise BenchError(f"no records in {folder}")
    base = recs[0].get("config", {})
    for r in recs[1:]:
        d = diff_config(base, r.get("config", {}))
        if d:
            raise BenchError(f"{folder} mixes configs ({'; '.join(d)})")
    return recs


def records_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long frame ``arch, method, seed, domain, accuracy`` of the ok runs, plus the ``avg`` pseudo-domain."""
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        source = r.get("config", {}).get("source", "mnist")
        acc = r["accuracy"]
        for d, a in acc.items():
            rows.append((r["arch"], r["method"], int(r["seed"]), d, float(a)))
        others = [a for d, a in acc.items() if d != source]
        if others:
            rows.append((r["arch"], r["method"], int(r["seed"]), AVG, sum(others) / len(others)))
    return pd.DataFrame(rows, columns=["arch", "method", "seed", "domain", "accuracy"])


def _order(values: Iterable[str], preferred: list[str]) -> list[str]:
    """``values`` sorted by their position in ``preferred`` (unknown ones last, in first-seen order)."""
    seen = list(dict.fromkeys(values))
    rank = {v: i for i, v in enumerate(preferred)}
    return sorted(seen, key=lambda v: (rank.get(v, len(rank)), seen.index(v)))


def domain_order(records: list[dict[str, Any]]) -> list[str]:
    """Target columns in protocol order, then ``avg``."""
    targets = records[0].get("config", {}).get("targets") or []
    df = records_frame(records)
    return _order([d for d in df["domain"].unique() if d != AVG], targets) + [AVG]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and n over seeds per (arch, method, domain)."""
    g = df.groupby(["arch", "method", "domain"], sort=False)["accuracy"]
    return g.agg(mean="mean", std="std", n="count").reset_index()


def gains(df: pd.DataFrame, method: str = "neurn", baseline: str = "erm") -> pd.DataFrame:
    """Per (arch, domain): mean/std of ``method - baseline`` over matched seeds and a paired t-test p-value.

    Seeds pair naturally: a seed fixes the initial weights and the batch order for every method.
    The ``all`` arch row pools every (arch, seed) pair.
    """
    a = df[df.method == method].set_index(["arch", "domain", "seed"])["accuracy"]
    b = df[df.method == baseline].set_index(["arch", "domain", "seed"])["accuracy"]
    both = pd.concat({"m": a, "b": b}, axis=1).dropna().reset_index()
    rows = []
    groups = [(arch, dom, g) for (arch, dom), g in both.groupby(["arch", "domain"], sort=False)]
    groups += [("all", dom, g) for dom, g in both.groupby("domain", sort=False)]
    for arch, dom, g in groups:
        diff = g["m"] - g["b"]
        p = float("nan")
        if len(diff) >= 2 and diff.std(ddof=1) > 0:
            p = float(stats.ttest_rel(g["m"], g["b"]).pvalue)
        rows.append({"arch": arch, "domain": dom, "gain": diff.mean(), "gain_std": diff.std(ddof=1),
                     "n_pairs": len(diff), "p_value": p})
    return pd.DataFrame(rows, columns=["arch", "domain", "gain", "gain_std", "n_pairs", "p_value"])


def protocol_line(records: list[dict[str, Any]]) -> str:
    """One sentence stating the protocol and any deviation, for table headers."""
    c = records[0].get("config", {})
    seeds = sorted({int(r["seed"]) for r in records})
    ev = ("full test splits" if c.get("eval_limit") is None else
          f"the first {c['eval_limit']} test images of each target "
          "(deviation: the protocol uses the full test splits)")
    it = c.get("iters")
    dev = "" if it == 10_000 else " (deviation: the reference protocol trains 10,000)"
    return (f"Protocol {c.get('protocol', '?')}: source {c.get('source', 'mnist')} train[:{c.get('source_limit')}], "
            f"{c.get('size')}x{c.get('size')}x{c.get('channels')}, Adam lr {c.get('lr')}, batch {c.get('batch_size')}, "
            f"{it} iterations{dev}; evaluated on {ev}; seeds {','.join(map(str, seeds))}; "
            f"`{AVG}` = mean over the non-{c.get('source', 'mnist')} targets.")


def _pct(m: float, s: float) -> str:
    return f"{100 * m:.1f} ± {100 * s:.1f}" if not math.isnan(s) else f"{100 * m:.1f}"


def _gain_cell(row: pd.Series) -> str:
    p = "n/a" if math.isnan(row.p_value) else (f"{row.p_value:.2g}")
    sd = "" if math.isnan(row.gain_std) else f" ± {100 * row.gain_std:.1f}"
    return f"{100 * row.gain:+.1f}{sd} (p={p})"


def _frames(records: list[dict[str, Any]], method: str, baseline: str):
    df = records_frame(records)
    if df.empty:
        raise BenchError("no successful runs in these records")
    summ, gn = summary(df), gains(df, method, baseline)
    archs = list(dict.fromkeys(r["arch"] for r in records if r.get("status") == "ok"))
    methods = _order(df["method"].unique(), [baseline, method, "randconv", "neurn+randconv"])
    return df, summ, gn, archs, methods, domain_order(records)


def format_table(records: list[dict[str, Any]], fmt: str = "md", method: str = "neurn",
                 baseline: str = "erm") -> str:
    """Render the accuracy table and the gain table as markdown, CSV or LaTeX."""
    if fmt not in FORMATS:
        raise UnknownName("format", fmt, FORMATS)
    df, summ, gn, archs, methods, domains = _frames(records, method, baseline)
    if fmt == "csv":
        g = gn.rename(columns={"gain": f"gain_vs_{baseline}"}).assign(method=method)
        out = summ.merge(g, on=["arch", "method", "domain"], how="left")
        return out.to_csv(index=False, float_format="%.6g")
    idx = summ.set_index(["arch", "method", "domain"])
    bold = (lambda s: f"**{s}**") if fmt == "md" else (lambda s: f"\\textbf{{{s}}}")
    acc_rows = []
    for arch in archs:
        present = [m for m in methods if (arch, m, AVG) in idx.index or any((arch, m, d) in idx.index for d in domains)]
        best = {d: max((idx.loc[(arch, m, d), "mean"] for m in present if (arch, m, d) in idx.index), default=None)
                for d in domains}
        for m in present:
            cells = []
            for d in domains:
                if (arch, m, d) not in idx.index:
                    cells.append("–")
                    continue
                r = idx.loc[(arch, m, d)]
                s = _pct(r["mean"], r["std"])
                # Mark every method tied at the best mean (rounded as displayed) in this architecture block.
                cells.append(bold(s) if len(present) > 1 and round(100 * r["mean"], 1) == round(100 * best[d], 1) else s)
            acc_rows.append([arch, m] + cells)
    gidx = gn.set_index(["arch", "domain"])
    gain_rows = []
    for arch in archs + ["all"]:
        if not any((arch, d) in gidx.index for d in domains):
            continue
        gain_rows.append([arch] + [_gain_cell(gidx.loc[(arch, d)]) if (arch, d) in gidx.index else "–"
                                   for d in domains])
    failed = [f"{r['arch']}/{r['method']}/s{r['seed']} ({r.get('reason')})" for r in records if r.get("status") != "ok"]
    head_acc = ["arch", "method"] + domains
    head_gain = ["arch"] + domains
    title_acc = "Top-1 accuracy (%), mean ± std over seeds; best method per architecture and column marked"
    title_gain = (f"Gain of `{method}` over `{baseline}` (percentage points, mean ± std of the paired per-seed "
                  f"differences; p = two-sided paired t-test across seeds; `all` pools every (arch, seed) pair)")
    if fmt == "md":
        parts = [protocol_line(records), "", f"**{title_acc}**", "", _md(head_acc, acc_rows), "",
                 f"**{title_gain}**", "", _md(head_gain, gain_rows)]
        if failed:
            parts += ["", "Failed runs (excluded): " + "; ".join(failed)]
        return "\n".join(parts) + "\n"
    parts = [f"% {protocol_line(records)}", f"% {title_acc}", _latex(head_acc, acc_rows), "",
             f"% {title_gain}", _latex(head_gain, gain_rows)]
    if failed:
        parts.append("% Failed runs (excluded): " + "; ".join(failed))
    return "\n".join(parts) + "\n"


def _md(head: list[str], rows: list[list[str]]) -> str:
    left = 2 if len(head) > 1 and head[1] == "method" else 1
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * left + ["---:"] * (len(head) - left)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _latex_escape(s: str) -> str:
    return (s.replace("\\textbf{", "\x00").replace("_", "\\_").replace("%", "\\%").replace("±", "$\\pm$")
            .replace("&", "\\&").replace("–", "--").replace("\x00", "\\textbf{"))


def _latex(head: list[str], rows: list[list[str]]) -> str:
    spec = "ll" + "r" * (len(head) - 2) if head[1] == "method" else "l" + "r" * (len(head) - 1)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(map(_latex_escape, head)) + " \\\\", "\\midrule"]
    lines += [" & ".join(map(_latex_escape, r)) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)

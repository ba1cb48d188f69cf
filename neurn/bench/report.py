"""Gain tables from benchmark records: mean ± std over seeds, NeuRN-vs-baseline gains, paired tests."""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
from scipy import stats

from archsim.errors import shorten
from neurn.bench.protocol import TABLE_FORMATS
from neurn.bench.records import RecordWarning, diff_config, is_finite_number, iter_records
from neurn.errors import BenchError, ConfigMismatch, InvalidArgument, UnknownName

AVG = "avg"  # pseudo-domain: mean over the non-source targets of one run (the headline)
FORMATS = TABLE_FORMATS


def _warn(message: str) -> None:
    warnings.warn(message, RecordWarning, stacklevel=4)


def load_records(folder: str | Path, notify: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Valid records of a results folder; refuses a folder that mixes protocol configs.

    Damaged record files are named through ``notify`` (default: a ``RecordWarning``) and left out.
    """
    damaged: list[str] = []

    def note(message: str) -> None:
        damaged.append(message)
        (notify or _warn)(message)

    recs = iter_records(folder, notify=note)
    if not recs:
        extra = f" ({len(damaged)} damaged file(s), named above)" if damaged else ""
        raise BenchError(f"no records in {folder}{extra}")
    base = recs[0].get("config", {})
    for r in recs[1:]:
        d = diff_config(base, r.get("config", {}))
        if d:
            raise BenchError(f"{folder} mixes configs ({'; '.join(d)})")
    return recs


def records_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Long frame ``arch, method, seed, domain, accuracy`` of the ok runs, plus the ``avg`` pseudo-domain.

    A NaN, infinite or missing (null) accuracy stays in the frame as NaN (so it can be flagged, see
    :func:`flagged_values`); a run's ``avg`` is NaN when any of its target accuracies is.
    """
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        source = r.get("config", {}).get("source", "mnist")
        acc = {d: (float(a) if is_finite_number(a) else math.nan) for d, a in r["accuracy"].items()}
        for d, a in acc.items():
            rows.append((r["arch"], r["method"], int(r["seed"]), d, a))
        others = [a for d, a in acc.items() if d != source]
        if others:
            rows.append((r["arch"], r["method"], int(r["seed"]), AVG, sum(others) / len(others)))
    return pd.DataFrame(rows, columns=["arch", "method", "seed", "domain", "accuracy"])


def flagged_values(records: Iterable[dict[str, Any]]) -> list[str]:
    """``arch/method/sSEED on DOMAIN = value`` for every ok run's accuracy that is not a finite number."""
    out = []
    for r in records:
        if r.get("status") == "ok":
            out += [f"{r['arch']}/{r['method']}/s{r['seed']} on {d} = {a!r}"
                    for d, a in r["accuracy"].items() if not is_finite_number(a)]
    return out


def definition_conflicts(records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per arch whose records were trained on more than one definition of it (``arch_digest``).

    Their numbers do not compare (e.g. MNASNet before and after its BatchNorm fix); records without a
    digest (written before records carried one) are not counted.

    >>> definition_conflicts([{"arch": "a", "arch_digest": "x"}, {"arch": "a", "arch_digest": "y"},
    ...                       {"arch": "b", "arch_digest": "z"}, {"arch": "b"}])
    ['a: the records come from 2 definitions of the arch (digests x, y); their numbers do not compare']
    """
    digests: dict[str, dict[str, None]] = {}
    for r in records:
        if r.get("arch_digest"):
            digests.setdefault(r["arch"], {})[r["arch_digest"]] = None
    return [f"{arch}: the records come from {len(d)} definitions of the arch (digests {', '.join(d)}); "
            "their numbers do not compare" for arch, d in digests.items() if len(d) > 1]


def precision_mixes(records: Iterable[dict[str, Any]]) -> list[str]:
    """One line per arch whose successful runs were trained at more than one precision (the record's ``amp``).

    The precision is recorded in each run, not fixed by the protocol (the GPU reference sweep's first runs
    trained in bf16 autocast, its grouped runs in fp32), so a table over such a folder pools them; the line
    says so instead of averaging them silently. Records from before ``amp`` was recorded are not counted.

    >>> precision_mixes([{"arch": "a", "status": "ok", "amp": "bfloat16"}, {"arch": "a", "status": "ok", "amp": False},
    ...                  {"arch": "a", "status": "ok", "amp": False}, {"arch": "b", "status": "ok", "amp": False}])
    ['a: 1 run trained in bfloat16 autocast, 2 in fp32; the table pools them']
    """
    counts: dict[str, dict[str, int]] = {}
    for r in records:
        if r.get("status") == "ok" and "amp" in r:
            label = f"{r['amp']} autocast" if r["amp"] else "fp32"
            per = counts.setdefault(r["arch"], {})
            per[label] = per.get(label, 0) + 1
    lines = []
    for arch, per in counts.items():
        if len(per) > 1:
            (first, n), *rest = per.items()
            lines.append(f"{arch}: {n} run{'s' if n > 1 else ''} trained in {first}, "
                         + ", ".join(f"{k} in {label}" for label, k in rest) + "; the table pools them")
    return lines


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
    """Mean, std (ddof=1) and n over the finite accuracies per (arch, method, domain); ``n_nan``: the others."""
    g = df.groupby(["arch", "method", "domain"], sort=False)["accuracy"]
    return g.agg(mean="mean", std="std", n="count", n_nan=lambda v: int(v.isna().sum())).reset_index()


ZERO_SPREAD = 1e-12  # std of paired differences at or below this counts as zero (identical gains)


def gains(df: pd.DataFrame, method: str = "neurn", baseline: str = "erm") -> pd.DataFrame:
    """Per (arch, domain): mean/std of ``method - baseline`` over matched seeds and a paired t-test p-value.

    Seeds pair naturally: a seed fixes the initial weights and the batch order for every method.
    The ``all`` arch row pools every (arch, seed) pair. ``p_value`` is NaN with fewer than 2 pairs, and
    when every pair has the same difference (zero spread: the t statistic does not exist).
    """
    a = df[df.method == method].set_index(["arch", "domain", "seed"])["accuracy"]
    b = df[df.method == baseline].set_index(["arch", "domain", "seed"])["accuracy"]
    # Inner join: seeds where both runs exist; a pair with a NaN accuracy is flagged (n_nan), not used.
    pairs = pd.concat({"m": a, "b": b}, axis=1, join="inner").reset_index()
    pairs["flagged"] = pairs["m"].isna() | pairs["b"].isna()
    rows = []
    groups = [(arch, dom, g) for (arch, dom), g in pairs.groupby(["arch", "domain"], sort=False)]
    groups += [("all", dom, g) for dom, g in pairs.groupby("domain", sort=False)]
    for arch, dom, g in groups:
        n_nan = int(g["flagged"].sum())
        g = g[~g["flagged"]]
        diff = g["m"] - g["b"]
        p = float("nan")
        # A spread at float-rounding level (e.g. 0.33 - 0.31 vs 0.32 - 0.30) is no spread: testing it would
        # give a meaningless p near 0. Accuracies are fractions, so an absolute tolerance fits.
        if len(diff) >= 2 and diff.std(ddof=1) > ZERO_SPREAD:
            p = float(stats.ttest_rel(g["m"], g["b"]).pvalue)
        rows.append({"arch": arch, "domain": dom, "gain": diff.mean() if len(diff) else math.nan,
                     "gain_std": diff.std(ddof=1) if len(diff) > 1 else math.nan,
                     "n_pairs": len(diff), "p_value": p, "n_nan": n_nan})
    return pd.DataFrame(rows, columns=["arch", "domain", "gain", "gain_std", "n_pairs", "p_value", "n_nan"])


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


FLAG = "†"  # marks a cell that leaves out NaN / missing accuracies (listed under the table)


def _pct(m: float, s: float, n_nan: int = 0) -> str:
    flag = FLAG if n_nan else ""
    if math.isnan(m):
        return f"n/a{flag}"
    return (f"{100 * m:.1f} ± {100 * s:.1f}" if not math.isnan(s) else f"{100 * m:.1f}") + flag


def _gain_cell(row: pd.Series, with_n: bool = False) -> str:
    """``+1.2 ± 0.3 (p=0.04)``; with ``with_n``: ``(p=0.04, n=3)``, n being the number of pairs."""
    flag = FLAG if row.n_nan else ""
    if math.isnan(row.gain):
        return f"n/a{flag}"
    p = "n/a" if math.isnan(row.p_value) else (f"{row.p_value:.2g}")
    sd = "" if math.isnan(row.gain_std) else f" ± {100 * row.gain_std:.1f}"
    n = f", n={int(row.n_pairs)}" if with_n else ""
    return f"{100 * row.gain:+.1f}{sd}{flag} (p={p}{n})"


def check_methods(records: list[dict[str, Any]], method: str, baseline: str) -> None:
    """Refuse a ``--method``/``--baseline`` that is neither registered nor in the records (exit code 2)."""
    from neurn.bench.methods import list_methods

    known = list(dict.fromkeys(list_methods() + [r["method"] for r in records]))
    for name in (method, baseline):
        if name not in known:
            raise UnknownName("method", name, known)
    if method == baseline:
        raise InvalidArgument(f"--method and --baseline are both {shorten(method)!r}; a gain needs two methods")


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
    check_methods(records, method, baseline)
    df, summ, gn, archs, methods, domains = _frames(records, method, baseline)
    flagged = flagged_values(records)
    if fmt == "csv":
        g = gn.rename(columns={"gain": f"gain_vs_{baseline}", "n_nan": "n_nan_pairs"}).assign(method=method)
        out = summ.merge(g, on=["arch", "method", "domain"], how="left")
        # The pooled `all` gains have no accuracy summary of their own: appended with empty mean/std/n.
        out = pd.concat([out, g[g["arch"] == "all"]], ignore_index=True)
        for col in ("n", "n_nan", "n_pairs", "n_nan_pairs"):
            out[col] = out[col].astype("Int64")  # counts stay integers next to the empty cells
        return out.to_csv(index=False, float_format="%.6g")
    idx = summ.set_index(["arch", "method", "domain"])
    bold = (lambda s: f"**{s}**") if fmt == "md" else (lambda s: f"\\textbf{{{s}}}")
    acc_rows = []
    few_seeds = False  # some cell is a mean over fewer seeds than its architecture's other cells
    for arch in archs:
        present = [m for m in methods if (arch, m, AVG) in idx.index or any((arch, m, d) in idx.index for d in domains)]
        best = {d: max((idx.loc[(arch, m, d), "mean"] for m in present
                        if (arch, m, d) in idx.index and not math.isnan(idx.loc[(arch, m, d), "mean"])), default=None)
                for d in domains}
        most = max((int(idx.loc[(arch, m, d), "n"]) for m in present for d in domains if (arch, m, d) in idx.index),
                   default=0)
        for m in present:
            cells = []
            for d in domains:
                if (arch, m, d) not in idx.index:
                    cells.append("–")
                    continue
                r = idx.loc[(arch, m, d)]
                s = _pct(r["mean"], r["std"], r["n_nan"])
                # Mark every method tied at the best mean (rounded as displayed) in this architecture block.
                top = (len(present) > 1 and best[d] is not None and not math.isnan(r["mean"])
                       and round(100 * r["mean"], 1) == round(100 * best[d], 1))
                # A mean over fewer seeds can look best by luck: say how many it has.
                fewer = not math.isnan(r["mean"]) and int(r["n"]) < most
                few_seeds |= fewer
                cells.append((bold(s) if top else s) + (f" (n={int(r['n'])})" if fewer else ""))
            acc_rows.append([arch, m] + cells)
    gidx = gn.set_index(["arch", "domain"])
    gain_rows = []
    for arch in archs + ["all"]:
        if not any((arch, d) in gidx.index for d in domains):
            continue
        gain_rows.append([arch] + [_gain_cell(gidx.loc[(arch, d)], with_n=True) if (arch, d) in gidx.index else "–"
                                   for d in domains])
    failed = [f"{r['arch']}/{r['method']}/s{r['seed']} ({r.get('reason')})" for r in records if r.get("status") != "ok"]
    flag_note = (f"{FLAG} NaN or missing accuracy, left out of the marked means and gains: " + "; ".join(flagged)
                 if flagged else "")
    no_pairs = f"No seed has runs of both `{method}` and `{baseline}`: no gains."
    n_note = ("(n=k): a mean over only k seeds, fewer than other cells of the same architecture have "
              "(the other runs failed, are missing or have a NaN accuracy)" if few_seeds else "")
    head_acc = ["arch", "method"] + domains
    head_gain = ["arch"] + domains
    title_acc = "Top-1 accuracy (%), mean ± std over seeds; best method per architecture and column marked"
    title_gain = (f"Gain of `{method}` over `{baseline}` (percentage points, mean ± std of the paired per-seed "
                  f"differences; p = two-sided paired t-test across seeds, n = number of seed pairs; `all` pools "
                  f"every (arch, seed) pair)")
    if fmt == "md":
        parts = [protocol_line(records), "", f"**{title_acc}**", "", _md(head_acc, acc_rows), ""]
        if n_note:
            parts += [n_note, ""]
        parts += [f"**{title_gain}**", "", _md(head_gain, gain_rows)]
        if gn.empty:
            parts += ["", no_pairs]
        if flag_note:
            parts += ["", flag_note]
        if failed:
            parts += ["", "Failed runs (excluded): " + "; ".join(failed)]
        return "\n".join(parts) + "\n"
    parts = [f"% {protocol_line(records)}", f"% {title_acc}", _latex(head_acc, acc_rows)]
    if n_note:
        parts.append(f"% {n_note}")
    parts += ["", f"% {title_gain}", _latex(head_gain, gain_rows)]
    if gn.empty:
        parts.append(f"% {no_pairs}")
    if flag_note:
        parts.append(f"% {flag_note}")
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
            .replace("&", "\\&").replace("–", "--").replace("†", "$^\\dagger$").replace("\x00", "\\textbf{"))


def _latex(head: list[str], rows: list[list[str]]) -> str:
    spec = "ll" + "r" * (len(head) - 2) if head[1] == "method" else "l" + "r" * (len(head) - 1)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(map(_latex_escape, head)) + " \\\\", "\\midrule"]
    lines += [" & ".join(map(_latex_escape, r)) + " \\\\" for r in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


# Config keys that may differ between folders combined by :func:`combine_folders`: the training length (the
# reason to combine) and the learning-curve settings (they leave the trained weights and accuracies unchanged).
COMBINABLE_KEYS = ("iters", "curve_every", "curve_eval_limit")


def _has_pair(recs: list[dict[str, Any]], method: str, baselines: tuple[str, ...]) -> bool:
    """Whether some seed has an ok run of ``method`` and an ok run of one of ``baselines``."""
    ok = {(r["method"], r["seed"]) for r in recs if r.get("status") == "ok"}
    return any(m == method and any((b, s) in ok for b in baselines) for m, s in ok)


def combine_folders(folders: list[str | Path], notify: Callable[[str], None] | None = None,
                    method: str = "neurn", baselines: tuple[str, ...] = ("erm", "randconv"),
                    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Records of several results folders, each architecture taken from the folder that trained it longest.

    Each folder must hold one protocol config (see :func:`load_records`), and the folders' configs may
    differ only in :data:`COMBINABLE_KEYS` (else ``ConfigMismatch``, exit code 2: their numbers do not
    compare). A folder given twice (by any spelling of its path) is read once. An architecture found in
    more than one folder comes from the one where it has usable runs (some seed with ok runs of both
    ``method`` and a baseline) and, among those, the most iterations (the earlier folder on a tie): the
    longer runs are the ones closer to convergence, but a longer folder whose runs all failed, or a sweep
    still in progress, must not hide finished shorter ones. Nothing is mixed within one architecture.

    Args:
        folders: results folders, in order of preference on a tie.
        notify: receives one line per damaged record file (default: a ``RecordWarning``).
        method: the method to be judged (see :func:`family_verdicts`).
        baselines: the methods it is compared with.

    Returns:
        (records, notes): the chosen records, and for each architecture found in more than one folder
        a line saying where it came from (and why, when a longer folder was passed over).
    """
    unique: dict[Path, str | Path] = {}
    for folder in folders:
        unique.setdefault(Path(folder).resolve(), folder)  # the first spelling names it
    # arch -> (usable, iters, folder, records)
    found: dict[str, list[tuple[bool, int, str, list[dict[str, Any]]]]] = {}
    first: tuple[str, dict[str, Any]] | None = None
    for folder in unique.values():
        recs = load_records(folder, notify=notify)
        config = recs[0].get("config", {})
        if first is None:
            first = (str(folder), config)
        else:
            diffs = diff_config({k: v for k, v in first[1].items() if k not in COMBINABLE_KEYS},
                                {k: v for k, v in config.items() if k not in COMBINABLE_KEYS})
            if diffs:
                raise ConfigMismatch(
                    f"cannot combine {first[0]} and {folder}: their configs differ in {'; '.join(diffs)} "
                    f"(only {', '.join(COMBINABLE_KEYS)} may differ)")
        iters = int(config.get("iters", 0))
        for arch in dict.fromkeys(r["arch"] for r in recs):
            mine = [r for r in recs if r["arch"] == arch]
            found.setdefault(arch, []).append((_has_pair(mine, method, baselines), iters, str(folder), mine))
    # max() keeps the first of equal keys: the earlier folder wins a tie.
    chosen = {arch: max(runs, key=lambda run: (run[0], run[1])) for arch, runs in found.items()}
    why = f"no seed there has ok runs of both {method} and {' or '.join(baselines)}"
    notes = {}
    for arch, runs in found.items():
        if len(runs) < 2:
            continue
        _, long_iters, folder, _ = chosen[arch]
        others = [f"{f} ({it:,} iterations{f'; longer, but {why}' if it > long_iters else ''})"
                  for _, it, f, _ in runs if f != folder]
        notes[arch] = f"{arch}: from {folder}; also in " + ", ".join(others) + ", not used"
    return [r for _, _, _, rs in chosen.values() for r in rs], notes


def select_archs(records: list[dict[str, Any]], archs: list[str] | None) -> list[dict[str, Any]]:
    """The records of the named architectures (all records when ``archs`` is None or empty).

    A name with no record is refused (``UnknownName``, exit code 2) rather than silently giving a
    smaller table.
    """
    if not archs:
        return records
    have = list(dict.fromkeys(r["arch"] for r in records))
    for a in archs:
        if a not in have:
            raise UnknownName("architecture in these records", a, have)
    return [r for r in records if r["arch"] in archs]


def source_plateau(records: list[dict[str, Any]], method: str = "erm",
                   tail: float = 0.25) -> dict[str, tuple[float, int]]:
    """Per architecture: how much ``method``'s source accuracy still rose over the last ``tail`` of training.

    From each run's ``source_curve`` (``[iteration, accuracy]`` pairs): the last point's accuracy minus
    the accuracy at exactly ``(1 - tail) * iters``, linearly interpolated between the two curve points
    around that iteration (the first point when the curve starts after it), averaged over seeds. Near
    zero means the run had plateaued; a few points means it was still learning. On a learning curve that
    flattens (concave), the interpolated start lies at or below the true one, so the rise is, if
    anything, overstated: a "flat" verdict is safe. A curve whose last point is not after the cut is
    left out.

    Args:
        records: benchmark records.
        method: whose curves are read (ERM: the question is whether the baseline had converged).
        tail: the fraction of training at the end that is compared.

    Returns:
        ``{arch: (mean rise as a fraction, number of curves)}`` for the archs with at least one curve.

    A curve point every 700 iterations of 2,000: the last quarter starts at 1,500, between 1,400 and
    2,000, where the interpolated accuracy is 0.7 + 0.2 * 100 / 600:

    >>> rec = {"arch": "a", "method": "erm", "status": "ok", "iters": 2000,
    ...        "source_curve": [[700, 0.5], [1400, 0.7], [2000, 0.9]]}
    >>> rise, n = source_plateau([rec])["a"]
    >>> round(rise, 4), n
    (0.1667, 1)
    """
    rises: dict[str, list[float]] = {}
    for r in records:
        curve = r.get("source_curve") or []
        if r.get("status") != "ok" or r.get("method") != method or len(curve) < 2:
            continue
        points = sorted((float(it), float(a)) for it, a in curve)
        iters = int(r.get("iters") or points[-1][0])
        cut = (1 - tail) * iters
        end_it, end_acc = points[-1]
        if end_it <= cut:
            continue  # the curve stops before the last quarter: nothing to compare
        before = [p for p in points if p[0] <= cut]
        if before:
            (i0, a0), (i1, a1) = before[-1], next(p for p in points if p[0] > cut)
            start = a0 + (a1 - a0) * (cut - i0) / (i1 - i0)  # i1 > cut >= i0: no division by zero
        else:
            start = points[0][1]
        rises.setdefault(r["arch"], []).append(end_acc - start)
    return {a: (sum(v) / len(v), len(v)) for a, v in rises.items()}


PLATEAU_TOL = 0.01  # a rise under 1 point over the last quarter counts as plateaued (the curve's own noise)


def family_verdicts(records: list[dict[str, Any]], method: str = "neurn",
                    baselines: tuple[str, ...] = ("erm", "randconv"), alpha: float = 0.05) -> str:
    """Markdown: per architecture family, does ``method`` beat each baseline on the unseen targets?

    The gain is on ``avg`` (the mean over the non-source targets), paired by (arch, seed) and pooled
    over the family's architectures; p is the two-sided paired t-test over those pairs. The verdict
    is "beats" / "loses to" when p < ``alpha``, "no significant difference" otherwise, "not enough
    runs" with fewer than 2 pairs and "identical gain on every pair" when the paired differences do not
    vary (no p-value exists in either case); without pairs it says why (no runs of one method, no seed
    with both, or only NaN accuracies). A column gives each architecture's
    iterations and how much ERM's source accuracy still rose over the last quarter of training (from
    the records' learning curves, see :func:`source_plateau`); a verdict on runs whose ERM was still
    learning (a rise of 1 point or more) says so.

    Args:
        records: benchmark records (each has ``family``: cnn, nas, vit).
        method: the method judged.
        baselines: the methods it is compared with.
        alpha: the significance level of the verdict.

    Returns:
        The table, one row per family, with the architectures and seeds behind each row.

    Raises:
        InvalidArgument: ``method`` is one of ``baselines``.
        UnknownName: a method neither registered nor in the records.
        BenchError: no record is a successful run.
    """
    if method in baselines:
        raise InvalidArgument(f"--method is {shorten(method)!r}, one of the baselines --by-family compares with "
                              f"({', '.join(baselines)}); choose another method, e.g. neurn")
    for b in baselines:
        check_methods(records, method, b)
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        raise BenchError("no successful runs in these records")
    family = {r["arch"]: r.get("family", "?") for r in ok}
    iters = {r["arch"]: int(r.get("iters") or r.get("config", {}).get("iters", 0)) for r in ok}
    plateau = source_plateau(ok)
    df = records_frame(ok)
    df = df[df["domain"] == AVG]
    # Pool a family's archs: the pairing key becomes (arch, seed), the grouping key the family.
    df = df.assign(seed=df["arch"] + "/s" + df["seed"].astype(str), arch=df["arch"].map(family))
    rows = []
    for fam in dict.fromkeys(family[a] for a in family):
        archs = [a for a in family if family[a] == fam]
        n_seeds = {a: len({r["seed"] for r in ok if r["arch"] == a and r["method"] == method}) for a in archs}
        runs = ", ".join(f"{a} ({n} seed{'' if n == 1 else 's'}, {iters[a]:,} it)" for a, n in n_seeds.items())
        learning = [a for a in archs if a in plateau and plateau[a][0] >= PLATEAU_TOL]

        def rise(a: str) -> str:
            if a not in plateau:
                return f"{a} no curve"
            return f"{a} {100 * plateau[a][0]:+.1f} ({'still learning' if a in learning else 'flat'})"

        conv = ", ".join(rise(a) for a in archs)
        ran = {r["method"] for r in ok if r["arch"] in archs}
        cells, verdicts = [], []
        if method not in ran:
            cells, verdicts = ["–"] * len(baselines), [f"no {method} runs"]  # said once, not per baseline
        for b in baselines if method in ran else ():
            g = gains(df[df["arch"] == fam], method, b)
            g = g[g["arch"] == fam]
            # No usable pair: say which of the causes it is.
            cause = (f"no {b} runs" if b not in ran else
                     f"no seed has both {method} and {b}" if g.empty else
                     f"vs {b}: all pairs have NaN accuracies" if g.iloc[0]["n_pairs"] == 0 else None)
            if cause:
                cells.append("–")
                verdicts.append(cause)
                continue
            row = g.iloc[0]
            cells.append(_gain_cell(row) + f", n={int(row.n_pairs)}")
            if row.n_pairs < 2:
                verdicts.append(f"vs {b}: not enough runs")
            elif math.isnan(row.p_value):  # 2+ pairs, zero spread: the t statistic does not exist
                verdicts.append(f"vs {b}: identical gain on every pair ({100 * row.gain:+.1f}), no test possible")
            elif row.p_value < alpha:
                verdicts.append(f"{'beats' if row.gain > 0 else 'loses to'} {b}")
            else:
                verdicts.append(f"no significant difference from {b}")
        verdict = "; ".join(verdicts)
        if learning:
            verdict += f" (ERM still learning: {', '.join(learning)})"
        rows.append([fam, runs, conv] + cells + [verdict])
    head = ["family", "architectures (seeds, iterations)", "ERM source rise, last quarter (points)"] + \
        [f"{method} − {b}, avg (points)" for b in baselines] + [f"verdict (p < {alpha:g})"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * len(baselines) + "---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    flagged = flagged_values(ok)
    if flagged:  # the same legend as the full table's, so a flagged gain cell is explained
        lines += ["", f"{FLAG} NaN or missing accuracy, left out of the gains: " + "; ".join(flagged)]
    return "\n".join(lines) + "\n"

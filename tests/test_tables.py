"""Gain tables and chart from the fixture records: numbers recomputed independently, formats, refusals."""
from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from neurn.cli import cli
from neurn.plot import plot_gains
from neurn.errors import BenchError
from neurn.bench.records import read_record, write_json_atomic
from neurn.bench.report import format_table, gains, load_records, records_frame, summary

FIXTURES = Path(__file__).parent / "fixtures" / "records"


@pytest.fixture(scope="module")
def records():
    return load_records(FIXTURES)


def _acc(arch, method, dom):
    return [read_record(FIXTURES / f"{arch}-{method}-s{s}.json")["accuracy"][dom] for s in range(3)]


def test_gain_and_paired_p_value_match_a_direct_computation(records):
    g = gains(records_frame(records)).set_index(["arch", "domain"])
    a, b = _acc("resnet18", "neurn", "mnistm"), _acc("resnet18", "erm", "mnistm")
    row = g.loc[("resnet18", "mnistm")]
    assert row.gain == pytest.approx(sum(x - y for x, y in zip(a, b)) / 3)
    assert row.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert row.n_pairs == 3
    # avg = per-run mean of the non-source targets, then paired across seeds.
    avg = lambda arch, m: [sum(read_record(FIXTURES / f"{arch}-{m}-s{s}.json")["accuracy"][d]  # noqa: E731
                               for d in ("mnistm", "syn", "digits")) / 3 for s in range(3)]
    assert g.loc[("digitnet", "avg")].p_value == pytest.approx(stats.ttest_rel(avg("digitnet", "neurn"),
                                                                               avg("digitnet", "erm")).pvalue)
    assert g.loc[("all", "syn")].n_pairs == 9


def test_summary_mean_std_and_failed_runs_are_excluded(records):
    s = summary(records_frame(records)).set_index(["arch", "method", "domain"])
    vals = pd.Series(_acc("vit_p4", "erm", "syn"))
    assert s.loc[("vit_p4", "erm", "syn"), "mean"] == pytest.approx(vals.mean())
    assert s.loc[("vit_p4", "erm", "syn"), "std"] == pytest.approx(vals.std(ddof=1))
    assert s.loc[("vit_p4", "randconv", "syn"), "n"] == 2  # seed 2 failed


def test_markdown_table_marks_best_and_reports_gains(records):
    md = format_table(records, "md")
    assert "200 iterations (deviation" in md and "first 500 test images" in md
    lines = md.splitlines()
    erm = next(l for l in lines if l.startswith("| digitnet | erm |"))
    rc = next(l for l in lines if l.startswith("| digitnet | randconv |"))
    assert erm.split(" | ")[2].startswith("**")  # erm is best on the source test split
    assert "**" in rc.split(" | ")[3] and "**" not in erm.split(" | ")[3]  # randconv best on mnistm
    gain_row = next(l for l in lines if l.startswith("| resnet18 | ") and "(p=" in l)
    g = gains(records_frame(records)).set_index(["arch", "domain"]).loc[("resnet18", "mnistm")]
    assert f"{100 * g.gain:+.1f}" in gain_row and f"p={g.p_value:.2g}" in gain_row
    assert "| all |" in md
    assert "Failed runs (excluded): vit_p4/randconv/s2 (non-finite loss" in md


def test_csv_and_latex(records):
    df = pd.read_csv(io.StringIO(format_table(records, "csv")))
    assert {"arch", "method", "domain", "mean", "std", "n", "gain_vs_erm", "p_value"} <= set(df.columns)
    row = df[(df.arch == "digitnet") & (df.method == "neurn") & (df.domain == "syn")].iloc[0]
    assert row.gain_vs_erm == pytest.approx(sum(x - y for x, y in zip(_acc("digitnet", "neurn", "syn"),
                                                                      _acc("digitnet", "erm", "syn"))) / 3, abs=1e-5)
    tex = format_table(records, "latex")
    assert tex.count("\\begin{tabular}") == 2 and "\\textbf{" in tex and "$\\pm$" in tex and "vit\\_p4" in tex


def test_mixed_configs_and_empty_folders_are_refused(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "r")
    rec = read_record(tmp_path / "r" / "digitnet-erm-s0.json")
    rec["config"] = dict(rec["config"], iters=999)
    write_json_atomic(tmp_path / "r" / "digitnet-erm-s0.json", rec)
    with pytest.raises(BenchError, match="mixes configs.*iters"):
        load_records(tmp_path / "r")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no records"):
        load_records(tmp_path / "empty")


def test_gain_chart_is_written(records, tmp_path):
    fig = plot_gains(records, tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["digitnet", "resnet18", "vit_p4", "all"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["mnistm", "syn", "digits", "avg"]  # the source's own test split is not a target


def test_cli_table_formats_and_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["table", str(FIXTURES), "--format", "csv"])
    assert res.exit_code == 0 and res.output.startswith("arch,method,domain,mean,std,n")
    res = runner.invoke(cli, ["table", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["table", str(FIXTURES), "--format", "html"])
    assert res.exit_code == 2


# --- issue #9: NaN accuracies flagged, damaged records named, unknown --method/--baseline refused ------------

def _raw_write(path, rec):
    """Write a record as another tool might: NaN allowed (write_json_atomic refuses it)."""
    path.write_text(json.dumps(rec))


def test_nan_and_missing_accuracies_are_flagged_not_dropped(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "r")
    p0, p1 = tmp_path / "r" / "digitnet-erm-s0.json", tmp_path / "r" / "digitnet-neurn-s1.json"
    _raw_write(p0, dict(read_record(p0), accuracy=dict(read_record(p0)["accuracy"], syn=float("nan"))))
    _raw_write(p1, dict(read_record(p1), accuracy=dict(read_record(p1)["accuracy"], mnistm=None)))
    recs = load_records(tmp_path / "r")
    s = summary(records_frame(recs)).set_index(["arch", "method", "domain"])
    assert s.loc[("digitnet", "erm", "syn"), "n"] == 2 and s.loc[("digitnet", "erm", "syn"), "n_nan"] == 1
    assert s.loc[("digitnet", "erm", "avg"), "n_nan"] == 1  # the run's avg is unknown too
    g = gains(records_frame(recs)).set_index(["arch", "domain"])
    assert g.loc[("digitnet", "syn"), "n_pairs"] == 2 and g.loc[("digitnet", "syn"), "n_nan"] == 1
    md = format_table(recs, "md")
    erm = next(line for line in md.splitlines() if line.startswith("| digitnet | erm |"))
    assert "†" in erm.split(" | ")[4]  # the syn cell
    assert "† NaN or missing accuracy, left out of the marked means and gains: " in md
    assert "digitnet/erm/s0 on syn = nan" in md and "digitnet/neurn/s1 on mnistm = None" in md
    csv = pd.read_csv(io.StringIO(format_table(recs, "csv")))
    row = csv[(csv.arch == "digitnet") & (csv.method == "erm") & (csv.domain == "syn")].iloc[0]
    assert row.n_nan == 1 and row.n == 2
    assert "$^\\dagger$" in format_table(recs, "latex")
    res = CliRunner().invoke(cli, ["table", str(tmp_path / "r")])
    assert res.exit_code == 0 and "digitnet/erm/s0 on syn = nan" in res.output
    res = CliRunner().invoke(cli, ["table", str(tmp_path / "r"), "--by-family"])
    cnn = next(line for line in res.output.splitlines() if line.startswith("| cnn |"))
    assert res.exit_code == 0 and "†" in cnn  # the digitnet pairs with a NaN avg are left out ...
    assert "† NaN or missing accuracy, left out of the gains: digitnet/erm/s0 on syn = nan" in res.output  # ... said


def test_table_names_damaged_records_and_continues(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "r")
    bad = tmp_path / "r" / "vit_p4-neurn-s2.json"
    bad.write_text(bad.read_text()[:100])
    (tmp_path / "r" / "copy.json").write_text((tmp_path / "r" / "vit_p4-erm-s0.json").read_text())
    res = CliRunner().invoke(cli, ["table", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert f"warning: skipping {bad} is damaged: not valid JSON" in res.output
    assert "copy.json is not a valid benchmark record: it holds vit_p4/erm/s0, whose file is vit_p4-erm-s0.json" \
        in res.output
    assert "| vit_p4 | neurn |" in res.output and "Traceback" not in res.output
    s = summary(records_frame(load_records(tmp_path / "r", notify=lambda m: None))).set_index(
        ["arch", "method", "domain"])
    assert s.loc[("vit_p4", "neurn", "syn"), "n"] == 2 and s.loc[("vit_p4", "erm", "syn"), "n"] == 3
    for f in (tmp_path / "r").glob("*.json"):
        if f.name != "config.json":
            f.write_text("")
    res = CliRunner().invoke(cli, ["table", str(tmp_path / "r")])
    assert res.exit_code == 1 and "neurn: error: no records in" in res.output and "28 damaged file(s), named above" in res.output


def test_table_warns_when_an_arch_was_trained_on_two_definitions(tmp_path):
    """E.g. MNASNet records from before and after its BatchNorm fix in one folder: named, never silently averaged."""
    shutil.copytree(FIXTURES, tmp_path / "r")
    for s, digest in ((0, "aaaaaaaaaaaa"), (1, "bbbbbbbbbbbb")):
        p = tmp_path / "r" / f"vit_p4-erm-s{s}.json"
        write_json_atomic(p, dict(read_record(p), arch_digest=digest))
    for args in ([], ["--by-family"]):
        res = CliRunner().invoke(cli, ["table", str(tmp_path / "r"), *args])
        assert res.exit_code == 0, res.output
        assert ("warning: vit_p4: the records come from 2 definitions of the arch (digests aaaaaaaaaaaa, "
                "bbbbbbbbbbbb); their numbers do not compare") in res.output
    res = CliRunner().invoke(cli, ["table", str(FIXTURES)])
    assert "definitions of the arch" not in res.output


def test_table_warns_when_an_arch_was_trained_at_two_precisions(tmp_path):
    """E.g. the GPU sweep's first bf16 runs beside its fp32 grouped ones: pooled, but said so on stderr."""
    shutil.copytree(FIXTURES, tmp_path / "r")
    for s, amp in ((0, "bfloat16"), (1, False), (2, False)):
        p = tmp_path / "r" / f"vit_p4-erm-s{s}.json"
        write_json_atomic(p, dict(read_record(p), amp=amp))
    p = tmp_path / "r" / "vit_p4-neurn-s0.json"
    write_json_atomic(p, dict(read_record(p), amp=False))
    for args in ([], ["--by-family"]):
        res = CliRunner().invoke(cli, ["table", str(tmp_path / "r"), *args])
        assert res.exit_code == 0, res.output
        lines = [line for line in res.output.splitlines() if "autocast" in line]
        assert lines == ["warning: vit_p4: 1 run trained in bfloat16 autocast, 3 in fp32; the table pools them"]
    # One precision throughout (or records that do not say): no line.
    p = tmp_path / "r" / "vit_p4-erm-s0.json"
    write_json_atomic(p, dict(read_record(p), amp=False))
    assert "autocast" not in CliRunner().invoke(cli, ["table", str(tmp_path / "r")]).output
    assert "autocast" not in CliRunner().invoke(cli, ["table", str(FIXTURES)]).output


@pytest.mark.parametrize("args, msg", [
    (["--baseline", "nosuch"], "unknown method 'nosuch'"),
    (["--method", "nosuch"], "unknown method 'nosuch'"),
    (["--method", "neurn", "--baseline", "randcnv"], "unknown method 'randcnv'; did you mean randconv"),
    (["--method", "erm", "--baseline", "erm"], "--method and --baseline are both 'erm'"),
])
def test_table_unknown_method_or_baseline_exits_2(args, msg):
    res = CliRunner().invoke(cli, ["table", str(FIXTURES), *args])
    assert res.exit_code == 2, res.output
    assert f"neurn: error: {msg}" in res.output and "Traceback" not in res.output


def test_table_registered_method_without_runs_says_so():
    md = format_table(load_records(FIXTURES), "md", method="neurn+randconv")
    assert "No seed has runs of both `neurn+randconv` and `erm`: no gains." in md


def _ablation_records(records):
    """The fixture's digitnet neurn runs relabelled as the six NeuRN variants, accuracy shifted by variant."""
    from neurn.bench.methods import ABLATION_METHODS

    out = []
    for i, m in enumerate(ABLATION_METHODS):
        for r in records:
            if r["arch"] == "digitnet" and r["method"] == "neurn" and r["status"] == "ok":
                out.append(dict(r, method=m, accuracy={d: a + 0.01 * i for d, a in r["accuracy"].items()}))
    return out


def test_ablation_figure_plots_the_seed_means_per_window_and_padding(records, tmp_path):
    from neurn.plot import _variant_of, plot_ablation

    assert [_variant_of(m) for m in ("neurn", "neurn-k5", "neurn-k7-reflect", "erm", "neurn+randconv")] == \
        [(3, "zeros"), (5, "zeros"), (7, "reflect"), None, None]
    abl = _ablation_records(records)
    fig = plot_ablation(abl, tmp_path / "a.png", reference=records)
    assert (tmp_path / "a.png").stat().st_size > 10_000
    ax = fig.axes[0]  # first unseen target
    dom = ax.get_title()
    base = pd.Series(_acc("digitnet", "neurn", dom)).mean()
    # The mean lines: zeros then reflect, x = k (+ a small offset), y = 100 * the seed mean.
    bars = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar containers: (data line, caps, bars)
    zeros, reflect = bars["zeros padding"], bars["reflect padding"]
    assert list(zeros.get_ydata()) == pytest.approx([100 * (base + 0.01 * i) for i in range(3)])
    assert list(reflect.get_ydata()) == pytest.approx([100 * (base + 0.01 * i) for i in range(3, 6)])
    erm = pd.Series(_acc("digitnet", "erm", dom)).mean()
    assert any(list(l.get_ydata()) == pytest.approx([100 * erm] * 2) for l in ax.get_lines())


def test_ablation_figure_refuses_records_without_variants(records):
    from neurn.errors import InvalidArgument
    from neurn.plot import plot_ablation

    with pytest.raises(InvalidArgument, match="no NeuRN ablation runs"):
        plot_ablation([r for r in records if r["method"] == "erm"])


def test_family_verdicts_pool_the_family_and_match_a_direct_t_test(records):
    """cnn pools digitnet and resnet18 (6 (arch, seed) pairs); verdicts follow p < 0.05; CLI prints it."""
    from neurn.bench.report import family_verdicts

    def avg(arch, m, s):
        acc = read_record(FIXTURES / f"{arch}-{m}-s{s}.json")["accuracy"]
        return sum(acc[d] for d in ("mnistm", "syn", "digits")) / 3

    pairs = [(a, s) for a in ("digitnet", "resnet18") for s in range(3)]
    p = stats.ttest_rel([avg(a, "neurn", s) for a, s in pairs], [avg(a, "erm", s) for a, s in pairs]).pvalue
    md = family_verdicts(records)
    cnn = next(l for l in md.splitlines() if l.startswith("| cnn |"))
    assert f"(p={p:.2g}), n=6" in cnn and "digitnet (3 seeds, 200 it), resnet18 (3 seeds, 200 it)" in cnn
    assert cnn.endswith("beats erm; loses to randconv |")
    vit = next(l for l in md.splitlines() if l.startswith("| vit |"))
    assert "no significant difference from randconv" in vit  # vit_p4/randconv/s2 failed: 2 pairs, p = 0.21
    one = [r for r in records if r["seed"] == 0]
    assert "not enough runs" in family_verdicts(one)
    res = CliRunner().invoke(cli, ["table", str(FIXTURES), "--by-family"])
    assert res.exit_code == 0 and res.output == md


def _with_curves(records, rises):
    """Copies of the records where each arch's ERM runs get a 4-point source curve rising by ``rises[arch]``."""
    import copy

    out = copy.deepcopy(records)
    for r in out:
        if r["method"] == "erm" and r["arch"] in rises and r["status"] == "ok":
            n = r["iters"]
            end = 0.9 + 0.001 * r["seed"]
            r["source_curve"] = [[n // 4, 0.5], [n // 2, 0.7], [3 * n // 4, end - rises[r["arch"]]], [n, end]]
    return out


def test_source_plateau_reads_the_last_quarter_of_each_erm_curve(records):
    from neurn.bench.report import source_plateau

    recs = _with_curves(records, {"digitnet": 0.002, "vit_p4": 0.05})
    got = source_plateau(recs)
    assert set(got) == {"digitnet", "vit_p4"}  # resnet18 has no curve
    assert got["digitnet"] == (pytest.approx(0.002), 3) and got["vit_p4"] == (pytest.approx(0.05), 3)
    # A curve that stops before the last quarter says nothing about the plateau.
    short = [dict(r, source_curve=[[10, 0.5], [r["iters"] // 2, 0.9]]) for r in recs if r["arch"] == "digitnet"]
    assert source_plateau(short) == {}


def test_family_verdicts_say_when_erm_was_still_learning(records):
    from neurn.bench.report import family_verdicts

    md = family_verdicts(_with_curves(records, {"digitnet": 0.002, "vit_p4": 0.05}))
    cnn = next(l for l in md.splitlines() if l.startswith("| cnn |"))
    vit = next(l for l in md.splitlines() if l.startswith("| vit |"))
    assert "| digitnet +0.2 (flat), resnet18 no curve |" in cnn and "still learning" not in cnn
    assert "| vit_p4 +5.0 (still learning) |" in vit and vit.endswith("(ERM still learning: vit_p4) |")


def test_table_by_family_combines_folders_taking_each_arch_from_its_longest_run(tmp_path):
    """vit_p4 trained longer in the second folder comes from there, named in a note; one folder otherwise."""
    short, long = tmp_path / "short", tmp_path / "long"
    shutil.copytree(FIXTURES, short)
    long.mkdir()
    cfg = json.loads((FIXTURES / "config.json").read_text())
    cfg["iters"] = 400
    write_json_atomic(long / "config.json", cfg)
    for p in sorted(FIXTURES.glob("vit_p4-*.json")):
        rec = read_record(p)
        rec["config"]["iters"], rec["iters"] = 400, 400
        if rec["status"] == "ok" and rec["method"] == "neurn":
            rec["accuracy"] = {d: 0.0 for d in rec["accuracy"]}  # so the long runs' verdict differs visibly
        write_json_atomic(long / p.name, rec)
    res = CliRunner().invoke(cli, ["table", str(short), str(long), "--by-family"])
    assert res.exit_code == 0, res.output
    vit = next(l for l in res.output.splitlines() if l.startswith("| vit |"))
    assert "vit_p4 (3 seeds, 400 it)" in vit and "loses to erm" in vit
    assert f"- vit_p4: from {long}; also in {short} (200 iterations), not used" in res.output
    assert "| cnn | digitnet (3 seeds, 200 it), resnet18 (3 seeds, 200 it) |" in res.output
    res = CliRunner().invoke(cli, ["table", str(short), str(long)])
    assert res.exit_code == 2 and "several RESULTS folders combine only with --by-family" in res.output
    # --archs keeps only the named architectures (and their notes); a name without records is refused.
    res = CliRunner().invoke(cli, ["table", str(short), str(long), "--by-family", "--archs", "digitnet,resnet18"])
    assert res.exit_code == 0 and "| vit |" not in res.output and "- vit_p4" not in res.output
    assert "| cnn | digitnet (3 seeds, 200 it), resnet18 (3 seeds, 200 it) |" in res.output
    res = CliRunner().invoke(cli, ["table", str(short), "--archs", "vit_p4"])
    assert res.exit_code == 0 and "| vit_p4 | erm |" in res.output and "| digitnet |" not in res.output
    res = CliRunner().invoke(cli, ["table", str(short), "--archs", "vit_p5"])
    assert res.exit_code == 2 and "vit_p5" in res.output and "vit_p4" in res.output


def test_learning_curve_figure_draws_the_seed_mean_per_method(records, tmp_path):
    from neurn.errors import InvalidArgument
    from neurn.plot import has_curves, plot_curves

    assert not has_curves(records)
    with pytest.raises(InvalidArgument, match="no learning curves"):
        plot_curves(records)
    recs = _with_curves(records, {"digitnet": 0.002, "vit_p4": 0.05})
    fig = plot_curves(recs, tmp_path / "c.png")
    assert [ax.get_title() for ax in fig.axes] == ["digitnet", "vit_p4"]  # resnet18 has no curve
    mean = next(l for l in fig.axes[1].get_lines() if l.get_label().startswith("erm (3 seeds)"))
    n = next(r["iters"] for r in recs if r["arch"] == "vit_p4")
    assert list(mean.get_xdata()) == [n // 4, n // 2, 3 * n // 4, n]
    assert mean.get_ydata()[-1] == pytest.approx(100 * (0.9 + 0.001))  # mean of 0.900, 0.901, 0.902
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_figures_cli_writes_the_curves_only_when_records_have_them(tmp_path):
    folder = tmp_path / "runs"
    shutil.copytree(FIXTURES, folder)
    res = CliRunner().invoke(cli, ["figures", "-o", str(tmp_path / "a"), "-n", "1", "--results", str(folder)])
    assert res.exit_code == 0, res.output
    assert "neurn_gains.png" in res.output and not (tmp_path / "a" / "neurn_curves.png").exists()
    for r in _with_curves(load_records(folder), {"digitnet": 0.0}):
        if "source_curve" in r:
            write_json_atomic(folder / f"{r['arch']}-{r['method']}-s{r['seed']}.json", r)
    res = CliRunner().invoke(cli, ["figures", "-o", str(tmp_path / "b"), "-n", "1", "--results", str(folder)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b" / "neurn_curves.png").stat().st_size > 10_000


# --- bug review: combine_folders choice and config check, plateau window, verdict wording, csv/md details ------

_TARGETS = ["mnist", "svhn", "usps"]


def _rec(arch, method, seed, svhn=0.3, status="ok", config=None, family="cnn"):
    """A minimal valid record; ``svhn`` is its one unseen-target accuracy besides a fixed usps 0.6."""
    from neurn.bench.protocol import default_protocol

    config = config or default_protocol(100, None, _TARGETS)
    return {"arch": arch, "method": method, "seed": seed, "status": status, "iters": config["iters"],
            "family": family, "config": config, "reason": None if status == "ok" else "boom",
            "accuracy": {"mnist": 0.9, "svhn": svhn, "usps": 0.6} if status == "ok" else {}}


def _folder(path, recs):
    from neurn.bench.records import record_name

    path.mkdir(parents=True)
    for r in recs:
        write_json_atomic(path / record_name(r["arch"], r["method"], r["seed"]), r)
    return path


def _done(path, arch="digitnet", iters=2000, family="cnn"):
    """A finished folder: erm and neurn on seeds 0-2, neurn ahead by a varying gain."""
    from neurn.bench.protocol import default_protocol

    c = default_protocol(iters, None, _TARGETS)
    return _folder(path, [_rec(arch, m, s, 0.3 + 0.01 * s * s + (0.05 if m == "neurn" else 0), config=c,
                               family=family) for m in ("erm", "neurn") for s in range(3)])


@pytest.mark.parametrize("long_runs", [
    [("erm", s, "failed") for s in range(3)] + [("neurn", s, "failed") for s in range(3)],  # every run failed
    [("erm", 0, "ok")],  # a sweep in progress: only erm s0 so far
])
def test_combine_folders_passes_over_a_longer_folder_without_a_usable_pair(tmp_path, long_runs):
    from neurn.bench.protocol import default_protocol
    from neurn.bench.report import combine_folders, family_verdicts

    c6 = default_protocol(6000, None, _TARGETS)
    long = _folder(tmp_path / "long", [_rec("digitnet", m, s, status=st, config=c6) for m, s, st in long_runs])
    short = _done(tmp_path / "short")
    recs, notes = combine_folders([long, short])
    assert {r["iters"] for r in recs} == {2000} and len(recs) == 6
    assert notes == {"digitnet": f"digitnet: from {short}; also in {long} (6,000 iterations; longer, but no seed "
                                 "there has ok runs of both neurn and erm or randconv), not used"}
    assert "digitnet (3 seeds, 2,000 it)" in family_verdicts(recs)
    # The pair that counts is the judged method's: with --method randconv neither folder has one; longest wins.
    recs, _ = combine_folders([long, short], method="randconv", baselines=("erm",))
    assert {r["iters"] for r in recs} == {6000}


def test_combine_folders_reads_a_folder_given_twice_once(tmp_path):
    from neurn.bench.report import combine_folders

    f = _done(tmp_path / "runs")
    recs, notes = combine_folders([f, tmp_path / "runs" / ".." / "runs"])
    assert notes == {} and len(recs) == 6
    res = CliRunner().invoke(cli, ["table", "--by-family", str(f), str(f)])
    assert res.exit_code == 0 and "also in" not in res.output and "n=3" in res.output


def test_combine_folders_refuses_configs_that_differ_beyond_iters_and_curves(tmp_path):
    from neurn.bench.protocol import default_protocol
    from neurn.errors import ConfigMismatch
    from neurn.bench.report import combine_folders

    a = _done(tmp_path / "a")
    # Another length and learning-curve settings: these combine.
    b = _folder(tmp_path / "b", [_rec("vit_p4", m, 0, config=default_protocol(500, None, _TARGETS, curve_every=100,
                                                                             curve_eval_limit=500))
                                 for m in ("erm", "neurn")])
    recs, _ = combine_folders([a, b])
    assert {r["arch"] for r in recs} == {"digitnet", "vit_p4"}
    c = _folder(tmp_path / "c", [_rec("vit_p4", m, 0, config=default_protocol(80, 300, _TARGETS))
                                 for m in ("erm", "neurn")])
    with pytest.raises(ConfigMismatch) as exc:
        combine_folders([a, c])
    assert str(exc.value) == (f"cannot combine {a} and {c}: their configs differ in eval_limit: None != 300 "
                              "(only iters, curve_every, curve_eval_limit may differ)")
    res = CliRunner().invoke(cli, ["table", "--by-family", str(a), str(c)])
    assert res.exit_code == 2 and "eval_limit: None != 300" in res.output and "Traceback" not in res.output


def test_source_plateau_measures_from_the_interpolated_accuracy_at_the_cut():
    from neurn.bench.report import source_plateau

    def rise(curve, iters=2000):
        got = source_plateau([{"arch": "a", "method": "erm", "status": "ok", "iters": iters, "source_curve": curve}])
        return got["a"][0] if got else None

    # A point every 200 of 2,000, rising 1 point per 100 iterations: 5 points over the last 500.
    assert rise([[i, 0.80 + i / 10000] for i in range(200, 2001, 200)]) == pytest.approx(0.05)
    # Points at 700, 1400, 2000: the cut (1,500) lies between the last two.
    assert rise([[700, 0.5], [1400, 0.7], [2000, 0.9]]) == pytest.approx(0.2 * 500 / 600)
    assert rise([[1600, 0.8], [2000, 0.9]]) == pytest.approx(0.1)  # starts after the cut: from its first point
    assert rise([[500, 0.5], [1500, 0.9]]) is None  # ends at the cut: no last quarter


@pytest.mark.parametrize("runs, verdict", [
    ([("erm", 0, 0.3), ("erm", 1, 0.3)], "| no neurn runs |"),
    ([("neurn", 0, 0.3), ("neurn", 1, 0.3)], "| no erm runs |"),
    ([("neurn", 0, 0.3), ("erm", 1, 0.3)], "| no seed has both neurn and erm |"),
    ([("neurn", 0, 0.3), ("neurn", 1, 0.3), ("erm", 0, None), ("erm", 1, None)],
     "| vs erm: all pairs have NaN accuracies |"),
])
def test_family_verdicts_say_why_there_is_no_pair(runs, verdict):
    from neurn.bench.report import family_verdicts

    md = family_verdicts([_rec("digitnet", m, s, svhn) for m, s, svhn in runs], baselines=("erm",))
    row = next(line for line in md.splitlines() if line.startswith("| cnn |"))
    assert row.endswith(verdict), md


def test_family_verdicts_name_identical_gains_instead_of_not_enough_runs():
    from neurn.bench.report import family_verdicts, gains, records_frame

    recs = [_rec("digitnet", m, s, 0.30 + 0.01 * s + (0.02 if m == "neurn" else 0))
            for m in ("erm", "neurn") for s in range(3)]
    g = gains(records_frame(recs)).set_index(["arch", "domain"]).loc[("digitnet", "avg")]
    assert g.n_pairs == 3 and math.isnan(g.p_value)  # float rounding is no spread: no t-test
    assert family_verdicts(recs, baselines=("erm",)).splitlines()[-1].endswith(
        "| vs erm: identical gain on every pair (+1.0), no test possible |")


def test_by_family_without_successful_runs_fails_like_the_full_table(tmp_path):
    from neurn.bench.report import family_verdicts

    recs = [_rec("digitnet", m, s, status="failed") for m in ("erm", "neurn") for s in range(2)]
    with pytest.raises(BenchError, match="no successful runs in these records"):
        family_verdicts(recs)
    f = _folder(tmp_path / "failed", recs)
    for args in ([], ["--by-family"]):
        res = CliRunner().invoke(cli, ["table", str(f), *args])
        assert res.exit_code == 1 and "neurn: error: no successful runs in these records" in res.output, args


@pytest.mark.parametrize("args, msg", [
    (["--baseline", "randconv"], "--baseline does not apply with --by-family, which compares --method with both "
                                 "erm and randconv"),
    (["--baseline", "erm"], "--baseline does not apply with --by-family"),
    (["--format", "csv"], "--format does not apply with --by-family, whose table is markdown only"),
    (["--method", "erm"], "--method is 'erm', one of the baselines --by-family compares with (erm, randconv); "
                          "choose another method, e.g. neurn"),
])
def test_table_by_family_refuses_options_it_cannot_honour(args, msg):
    res = CliRunner().invoke(cli, ["table", str(FIXTURES), "--by-family", *args])
    assert res.exit_code == 2 and f"neurn: error: {msg}" in res.output and "Traceback" not in res.output
    assert "--baseline" not in res.output or "--baseline" in args


def test_csv_keeps_the_pooled_all_gain_rows(records):
    text = format_table(records, "csv")
    df = pd.read_csv(io.StringIO(text))
    pooled = df[df.arch == "all"].set_index("domain")
    g = gains(records_frame(records)).set_index(["arch", "domain"])
    assert list(pooled.index) == ["mnist", "mnistm", "syn", "digits", "avg"]
    assert pooled.loc["syn", "gain_vs_erm"] == pytest.approx(g.loc[("all", "syn"), "gain"], abs=1e-5)
    assert pooled.loc["syn", "n_pairs"] == 9 and pooled["mean"].isna().all()
    assert all(line.split(",")[5].isdigit() for line in text.splitlines()[1:] if not line.startswith("all,"))


def test_markdown_names_cells_with_fewer_seeds_than_the_block(records):
    recs = [_rec("digitnet", "erm", s, [0.30, 0.40, 0.20][s]) for s in range(3)] + \
        [_rec("digitnet", "neurn", 0, 0.33)] + [_rec("digitnet", "neurn", s, status="failed") for s in (1, 2)]
    md = format_table(recs, "md")
    neurn = next(line for line in md.splitlines() if line.startswith("| digitnet | neurn |"))
    assert neurn.split(" | ")[3] == "**33.0** (n=1)"  # bold as the best mean, but over 1 seed against 3
    assert "(n=k): a mean over only k seeds, fewer than other cells of the same architecture have" in md
    assert "| digitnet | +0.0 (p=n/a, n=1) | +3.0 (p=n/a, n=1) |" in md
    assert "\\textbf{33.0} (n=1)" in format_table(recs, "latex")
    # Equal seed counts: no hint anywhere.
    assert "(n=" not in next(l for l in format_table(records, "md").splitlines() if l.startswith("| digitnet | erm"))

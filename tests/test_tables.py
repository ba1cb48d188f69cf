"""Gain tables and chart from the fixture records: numbers recomputed independently, formats, refusals."""
from __future__ import annotations

import io
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

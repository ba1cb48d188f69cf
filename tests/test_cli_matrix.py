"""`archsim matrix` and `archsim figures` through click's runner."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from archsim.cli import cli


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _wrote(output: str) -> list[Path]:
    return [Path(line.split("wrote ", 1)[1]) for line in output.splitlines() if line.startswith("wrote ")]


def test_matrix_of_models_writes_csv_png_pdf(tmp_path):
    res = _run("matrix", "vgg11", "vgg16", "vgg19", "-o", str(tmp_path))
    assert res.exit_code == 0, res.output
    paths = _wrote(res.output)
    assert sorted(p.name for p in paths) == ["matrix_similarity.csv", "matrix_similarity.pdf",
                                             "matrix_similarity.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    df = pd.read_csv(tmp_path / "matrix_similarity.csv", index_col=0)
    assert list(df.index) == ["vgg11", "vgg16", "vgg19"] and (df.values.diagonal() == 1).all()


def test_matrix_correlation_clustered_keras(tmp_path):
    res = _run("matrix", "vgg11", "vgg16", "vgg19", "vit_b_16", "--metric", "correlation", "--cluster",
               "--profile", "keras-like", "-o", str(tmp_path))
    assert res.exit_code == 0, res.output
    df = pd.read_csv(tmp_path / "matrix_correlation_clustered.csv", index_col=0)
    assert sorted(df.index) == sorted(["vgg11", "vgg16", "vgg19", "vit_b_16"])
    assert ((df.values >= -1) & (df.values <= 1)).all()
    assert "4×4 correlation matrix" in res.output


def test_matrix_input_errors_exit_2():
    for args, msg in ((["matrix"], "either MODEL names or --preset"),
                      (["matrix", "vgg11", "--preset", "paper44"], "either MODEL names or --preset"),
                      (["matrix", "--preset", "nope"], "unknown preset 'nope'"),
                      (["matrix", "vgg11"], "at least two models"),
                      (["matrix", "vgg11", "vgg11"], "repeated: vgg11"),
                      (["matrix", "vgg11", "vggg16"], "unknown model 'vggg16'")):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output and "Traceback" not in res.output


def test_figures_prints_each_written_path(tmp_path, monkeypatch):
    import archsim.figures as plot
    calls = []

    def fake_figure6(outdir, cache=True, **kw):
        calls.append((outdir, cache))
        p = Path(outdir) / "fig6a_correlation.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
        return [p]

    monkeypatch.setattr(plot, "figure6", fake_figure6)
    res = _run("figures", "-o", str(tmp_path / "figs"), "--no-cache")
    assert res.exit_code == 0, res.output
    assert calls == [(str(tmp_path / "figs"), False)]
    assert _wrote(res.output) == [tmp_path / "figs" / "fig6a_correlation.png"]


def _bad_outputs(tmp_path) -> list[str]:
    """A file where a folder is expected, a folder under a file, /proc: portable even as root."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    return [str(afile), str(afile / "sub"), "/proc", "/proc/archsim-out"]


def test_matrix_bad_output_fails_before_work_in_one_line(tmp_path, monkeypatch):
    import archsim.matrices as matrices
    monkeypatch.setattr(matrices, "similarity_matrix", lambda *a, **k: pytest.fail("work started"))
    for out in _bad_outputs(tmp_path):
        res = CliRunner().invoke(cli, ["matrix", "vgg11", "vgg13", "-o", out])
        assert res.exit_code == 1, (out, res.output)
        assert res.stderr.startswith("archsim: error: ") and len(res.stderr.splitlines()) == 1, res.stderr
        assert "Traceback" not in res.output


def test_matrix_replaces_no_file_when_one_output_cannot_be_written(tmp_path):
    """A folder sits where the PNG goes: the CSV from an earlier run must stay as it was."""
    (tmp_path / "matrix_similarity.csv").write_text("old")
    (tmp_path / "matrix_similarity.png").mkdir()
    res = CliRunner().invoke(cli, ["matrix", "vgg11", "vgg13", "-o", str(tmp_path)])
    assert res.exit_code == 1 and "matrix_similarity.png is a folder" in res.stderr, res.output
    assert (tmp_path / "matrix_similarity.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix_similarity.csv", "matrix_similarity.png"]


def test_matrix_bad_output_e2e(tmp_path):
    import subprocess
    import sys
    exe = str(Path(sys.executable).parent / "archsim")
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = subprocess.run([exe, "matrix", "vgg11", "vgg13", "-o", str(afile / "sub")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"archsim: error: cannot create the output folder {afile / 'sub'}: Not a directory"


def test_figures_bad_output_fails_before_work_in_one_line(tmp_path, monkeypatch):
    import archsim.matrices as matrices
    monkeypatch.setattr(matrices, "load_sequences", lambda *a, **k: pytest.fail("work started"))
    for out in _bad_outputs(tmp_path):
        res = CliRunner().invoke(cli, ["figures", "-o", out])
        assert res.exit_code == 1, (out, res.output)
        assert res.stderr.startswith("archsim: error: ") and len(res.stderr.splitlines()) == 1, res.stderr
    # a folder in place of one panel: refused before any work, earlier files untouched
    out = tmp_path / "figs"
    (out / "fig6b_vgg_zoom.pdf").mkdir(parents=True)
    (out / "paper44_similarity.csv").write_text("old")
    res = CliRunner().invoke(cli, ["figures", "-o", str(out)])
    assert res.exit_code == 1 and "fig6b_vgg_zoom.pdf is a folder" in res.stderr
    assert (out / "paper44_similarity.csv").read_text() == "old"


def test_figures_bad_output_e2e(tmp_path):
    import subprocess
    import sys
    exe = str(Path(sys.executable).parent / "archsim")
    r = subprocess.run([exe, "figures", "-o", "/proc/archsim-figures"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("archsim: error: cannot create the output folder /proc/")

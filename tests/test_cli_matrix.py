"""`archsim matrix` and `archsim figures` through click's runner."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
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
               "--profile", "keras", "-o", str(tmp_path))
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

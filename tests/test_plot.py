"""Figures: every Figure 6 file produced and non-empty; strip and DP-matrix content."""
from __future__ import annotations

import pandas as pd
import pytest

from archsim.alignment import align
from archsim.figures import PAPER_TOKENS, figure6, paper_alignments
from archsim.plot import differing_layers, dp_matrix, save_figure
from archsim.tokens import LayerSeq

EXPECTED = [
    "paper44_similarity.csv", "paper44_correlation.csv",
    *(f"{stem}.{ext}" for stem in ("fig6a_correlation", "fig6a_correlation_clustered", "fig6b_vgg_zoom",
                                    "fig6c_dp_vgg16_vgg11", "fig6c_dp_vgg16_vgg19", "fig6c_dp_vgg19_vgg11")
      for ext in ("png", "pdf")),
]


@pytest.fixture(scope="module")
def figures_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, figure6(out, progress=False)


def test_every_panel_is_written_and_non_empty(figures_dir):
    out, written = figures_dir
    assert sorted(p.name for p in written) == sorted(EXPECTED)
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED)  # no temp files left behind
    for p in written:
        head = p.read_bytes()[:8]
        assert p.stat().st_size > 1000, p
        if p.suffix == ".png":
            assert head.startswith(b"\x89PNG")
        elif p.suffix == ".pdf":
            assert head.startswith(b"%PDF")


def test_csvs_round_trip(figures_dir):
    out, _ = figures_dir
    corr = pd.read_csv(out / "paper44_correlation.csv", index_col=0)
    assert corr.shape == (44, 44) and list(corr.index) == list(corr.columns)
    assert corr.loc["vgg16", "vgg19"] > corr.loc["vgg16", "vit"]


def test_paper_alignments_and_differences():
    v16_11, v16_19, v19_11 = paper_alignments()
    assert (v16_11.name_a, v16_11.name_b) == ("VGG16", "VGG11")
    assert (v16_19.matches, v16_19.length, v16_19.score) == (21, 24, 15)
    assert dict(differing_layers(v16_19)) == {"Conv2d": 3}  # VGG19 has three more convolutions
    assert differing_layers(v16_11).most_common(1)[0][0] == "ReLU"  # PyTorch's separate ReLUs
    assert v19_11.similarity == align(LayerSeq.from_letters(PAPER_TOKENS["VGG19"]),
                                      LayerSeq.from_letters(PAPER_TOKENS["VGG11"])).similarity


def test_dp_matrix_draws_every_value_and_the_path():
    import matplotlib.pyplot as plt
    al = paper_alignments()[1]
    fig = dp_matrix(al)
    ax = fig.axes[0]
    n, m = al.matrix.shape
    assert len(ax.texts) == n * m + len(al.path) - 1  # one label per cell + one arrow per traceback step
    values = [t.get_text() for t in ax.texts[:n * m]]
    assert values == [str(int(v)) for v in al.matrix.ravel()]
    plt.close(fig)


def test_save_figure_is_atomic_and_writes_each_format(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    paths = save_figure(fig, tmp_path / "sub" / "x")
    plt.close(fig)
    assert [p.name for p in paths] == ["x.png", "x.pdf"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.pdf", "x.png"]


def test_save_figure_renders_every_format_before_writing_any(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    (tmp_path / "x.png").write_bytes(b"old")
    with pytest.raises(ValueError):  # the second format cannot be drawn
        save_figure(fig, tmp_path / "x", formats=("png", "no-such-format"))
    plt.close(fig)
    assert (tmp_path / "x.png").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temp file left either


def test_figure6_checks_every_output_before_loading_models(tmp_path, monkeypatch):
    import archsim.matrices as matrices
    from archsim._io import OutputError
    monkeypatch.setattr(matrices, "load_sequences", lambda *a, **k: pytest.fail("work started"))
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub", "/proc/archsim-figures"):
        with pytest.raises(OutputError):
            figure6(out, progress=False)
    (tmp_path / "figs" / "fig6c_dp_vgg19_vgg11.png").mkdir(parents=True)
    with pytest.raises(OutputError, match="fig6c_dp_vgg19_vgg11.png is a folder"):
        figure6(tmp_path / "figs", progress=False)


def test_colormaps_follow_the_paper_and_stay_in_sync():
    import pandas as pd

    from archsim import cli
    from archsim.errors import UnknownNameError
    from archsim.plot import CMAPS, _metric_style
    assert cli.CMAPS == CMAPS
    df = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]])
    df.attrs["metric"] = "correlation"
    assert _metric_style(df)["cmap"] == "rocket" and _metric_style(df)["vmin"] == 0.2
    assert _metric_style(df, "diverging")["cmap"] == "RdBu_r" and _metric_style(df, "diverging")["center"] == 0.0
    with pytest.raises(UnknownNameError, match="colormap"):
        _metric_style(df, "jet")

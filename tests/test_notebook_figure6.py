"""The Figure 6 notebook executes end to end (nbclient) and writes every panel."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "figure6_architecture_similarity.ipynb"


def test_notebook_builds_all_panels(tmp_path, monkeypatch, session_cache_dir):
    out = tmp_path / "figures"
    # The kernel inherits this environment: panels go to tmp, tokens come from the session cache.
    monkeypatch.setenv("ARCHSIM_FIGURES_DIR", str(out))
    monkeypatch.setenv("ARCHSIM_FIGURE_FORMATS", "png")
    monkeypatch.setenv("ARCHSIM_FIGURE_DPI", "72")  # the test checks that panels are built, not their resolution
    monkeypatch.setenv("ARCHSIM_CACHE", session_cache_dir)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["fig6a_correlation.png", "fig6a_correlation_clustered.png", "fig6b_vgg_zoom.png",
                            "fig6c_dp_vgg16_vgg11.png", "fig6c_dp_vgg16_vgg19.png", "fig6c_dp_vgg19_vgg11.png"])
    assert all((out / n).stat().st_size > 1000 for n in names)
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
    assert images == 6

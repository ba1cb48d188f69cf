"""Execute notebooks/neurn_examples.ipynb and check it writes the examples figure."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "neurn_examples.ipynb"


@pytest.mark.timeout(300)
def test_notebook_writes_neurn_examples(tmp_path, monkeypatch):
    out = tmp_path / "figures"
    # The kernel inherits this environment: private cache, output folder, few examples for speed.
    monkeypatch.setenv("NEURN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NEURN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NEURN_FIG_DIR", str(out))
    monkeypatch.setenv("NEURN_EXAMPLES_N", "4")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(tmp_path)}}).execute()
    png = out / "neurn_examples.png"
    assert png.is_file() and png.stat().st_size > 10_000
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "gain/offset invariant: True" in outputs and f"wrote {png}" in outputs
    assert not list(NOTEBOOK.parent.glob("*.png"))  # nothing written next to the notebook

"""notebooks/neurn_gains.ipynb runs top to bottom on the fixture records and shows table and chart."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]


def test_notebook_rebuilds_table_and_chart_from_records(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURN_RESULTS", str(ROOT / "tests" / "fixtures" / "records"))
    monkeypatch.setenv("NEURN_FIGURE", str(tmp_path / "gains.png"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(ROOT / "notebooks" / "neurn_gains.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "27 records" in text and "(26 ok)" in text
    assert "| digitnet | erm |" in text and "Gain of `neurn` over `erm`" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "gains.png").stat().st_size > 10_000

"""The dask executor: a tiny sweep on a LocalCluster writes the same records as the local executor."""
from __future__ import annotations

import pytest

distributed = pytest.importorskip("dask.distributed")

from neurn.bench.sweep import run_sweep  # noqa: E402
from neurn.bench.records import read_record  # noqa: E402
from test_bench import TOY  # noqa: E402


def test_tiny_sweep_on_a_local_cluster(tmp_path):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        recs = run_sweep("digitnet", "erm,neurn", "0", tmp_path / "dask", iters=2, executor="dask",
                         scheduler=cluster.scheduler_address, threads=1, provider=TOY, progress=False,
                         notify=lambda m: None)
    assert sorted(r["method"] for r in recs) == ["erm", "neurn"]
    for m in ("erm", "neurn"):
        rec = read_record(tmp_path / "dask" / f"digitnet-{m}-s0.json")
        assert rec["status"] == "ok" and set(rec["accuracy"]) == {"mnist", "mnistm", "syn", "digits"}
    # Same seed, same protocol: the cluster run reproduces the in-process run exactly.
    local = run_sweep("digitnet", "erm", "0", tmp_path / "local", iters=2, threads=1, provider=TOY,
                      progress=False, notify=lambda m: None)
    assert local[0]["accuracy"] == read_record(tmp_path / "dask" / "digitnet-erm-s0.json")["accuracy"]
    assert local[0]["loss_curve"] == read_record(tmp_path / "dask" / "digitnet-erm-s0.json")["loss_curve"]

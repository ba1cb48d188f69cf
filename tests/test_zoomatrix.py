"""Whole-zoo matrix (local and dask) and nearest-neighbour search against the shipped zoo cache."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archsim.alignment import align
from archsim.zoo.store import PACKAGED, load_zoo as load
from archsim.zoo.matrix import similarity_array

needs_zoo = pytest.mark.skipif(not PACKAGED.exists(), reason="no shipped zoo cache")


@pytest.fixture(scope="module")
def zoo_sample():
    z = load(str(PACKAGED))
    names = z.names("torchvision")[:12] + z.names("timm")[:12]
    return [z.seq(n) for n in names]


@needs_zoo
def test_local_matrix_equals_pairwise_align(zoo_sample):
    sim = similarity_array(zoo_sample)
    assert sim.dtype == np.float32 and np.allclose(sim, sim.T) and np.all(np.diag(sim) == 1)
    for i, j in [(0, 1), (3, 17), (5, 20), (12, 23)]:
        assert sim[i, j] == pytest.approx(align(zoo_sample[i], zoo_sample[j]).similarity, abs=1e-6)


@needs_zoo
def test_dask_local_cluster_equals_local(zoo_sample):
    distributed = pytest.importorskip("dask.distributed")
    local = similarity_array(zoo_sample)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = similarity_array(zoo_sample, executor="dask", scheduler=cluster.scheduler_address,
                                  block=7, progress=False)
    assert np.array_equal(local, remote)


@needs_zoo
def test_nearest_finds_family_members():
    from archsim.zoo.neighbours import nearest
    rows = nearest("resnet50", zoo="torchvision", k=5)
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    assert all("resnet50" != r["name"].split(":")[1] for r in rows)  # the query itself is left out
    assert rows[0]["similarity"] >= rows[-1]["similarity"]
    assert any("resnet" in r["name"] or "resnext" in r["name"] for r in rows[:3])


@needs_zoo
def test_nearest_cli_json_and_zoo_matrix_cli(tmp_path):
    exe = str(Path(sys.executable).parent / "archsim")
    r = subprocess.run([exe, "nearest", "vgg16", "--zoo", "torchvision", "-k", "3", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert len(d["neighbours"]) == 3 and d["neighbours"][0]["name"].startswith("tv:vgg")
    r = subprocess.run([exe, "matrix", "--zoo", "torchvision", "-o", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sim = np.load(tmp_path / "zoo_torchvision_torch_similarity.npy")
    names = (tmp_path / "zoo_torchvision_torch_similarity_names.txt").read_text().split()
    assert sim.shape == (len(names), len(names)) == (80, 80)
    assert (tmp_path / "zoo_torchvision_torch_similarity.png").stat().st_size > 10_000

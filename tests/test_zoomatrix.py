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
    sim = np.load(tmp_path / "zoo_torchvision_ops_similarity.npy")
    names = (tmp_path / "zoo_torchvision_ops_similarity_names.txt").read_text().split()
    assert sim.shape == (len(names), len(names)) == (80, 80)
    assert (tmp_path / "zoo_torchvision_ops_similarity.png").stat().st_size > 10_000


def test_nearest_k_must_be_at_least_one():
    from click.testing import CliRunner

    from archsim.cli import cli
    from archsim.errors import UsageError
    from archsim.zoo.neighbours import nearest
    for k in (0, -1, True, 2.5, "3"):
        with pytest.raises(UsageError, match="k must be a whole number ≥ 1"):
            nearest("vgg16", k=k)
    for k in ("0", "-1"):
        res = CliRunner().invoke(cli, ["nearest", "vgg16", "-k", k])
        assert res.exit_code == 2 and "Invalid value for '-k'" in res.stderr and "Traceback" not in res.output


@needs_zoo
def test_user_model_named_like_a_zoo_model_is_not_excluded(tmp_path):
    """`mine.py:resnet50` is the user's model: tv:resnet50 (identical here) must be its first neighbour."""
    from archsim.tokens import LayerSeq
    from archsim.zoo.neighbours import nearest
    f = tmp_path / "mine.py"
    f.write_text("import torch, torchvision\n\ndef resnet50():\n"
                 "    with torch.device('meta'):\n        return torchvision.models.resnet50()\n")
    rows = nearest(f"{f}:resnet50", zoo="torchvision", k=3)
    assert rows[0]["name"] == "tv:resnet50" and rows[0]["similarity"] == 1.0
    # a LayerSeq named like a zoo model but not from the zoo's sources is not excluded either
    z = load(str(PACKAGED))
    mine = LayerSeq("resnet50", z.seq("tv:resnet50").tokens, source="custom")
    assert nearest(mine, zoo="torchvision", k=1)[0]["name"] == "tv:resnet50"
    # the zoo model itself (by name or as its cached LayerSeq) is still left out
    for query in ("resnet50", "tv:resnet50", z.seq("tv:resnet50")):
        assert "tv:resnet50" not in [r["name"] for r in nearest(query, zoo="torchvision", k=5)]
    # tv:resnet50 is not timm:resnet50: the other library's model stays a candidate
    assert "timm:resnet50" in [r["name"] for r in nearest(z.seq("tv:resnet50"), zoo="all", k=1500)]


@needs_zoo
def test_shipped_zoo_still_serves_list_info_and_nearest():
    from click.testing import CliRunner

    from archsim.cli import cli
    res = CliRunner().invoke(cli, ["list", "--zoo", "all", "--count"])
    assert res.exit_code == 0 and int(res.stdout) == 1933  # 80 torchvision + 1371 timm + 40 keras + 442 hf
    res = CliRunner().invoke(cli, ["zoo", "info"])
    assert res.exit_code == 0 and "1933 models" in res.stdout
    res = CliRunner().invoke(cli, ["nearest", "vgg16", "-k", "1", "--zoo", "torchvision"])
    assert res.exit_code == 0 and res.stdout.splitlines()[1].split()[1].startswith("tv:vgg")


@needs_zoo
def test_zoo_matrix_bad_output_fails_before_computing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from archsim.cli import cli
    from archsim.zoo import matrix as zm
    monkeypatch.setattr(zm, "similarity_array", lambda *a, **k: pytest.fail("the matrix was computed"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "out" / "zoo_torchvision_ops_similarity.png").mkdir(parents=True)
    (tmp_path / "out" / "zoo_torchvision_ops_similarity.npy").write_bytes(b"old")
    for out in (afile, afile / "sub", "/proc", tmp_path / "out"):
        res = CliRunner().invoke(cli, ["matrix", "--zoo", "torchvision", "-o", str(out)])
        assert res.exit_code == 1, res.output
        assert res.stderr.startswith("archsim: error: ") and len(res.stderr.splitlines()) == 1
    assert (tmp_path / "out" / "zoo_torchvision_ops_similarity.npy").read_bytes() == b"old"

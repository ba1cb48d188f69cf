"""benchmarks/gpu_sweep.sh on CPU: the budget stops the sweep, and what comes back from the device fits its limits."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_sweep.sh"


def test_every_record_comes_back_in_one_archive_within_the_devices_eight_files(tmp_path):
    # The device returns at most 8 files from $OUT; the first GPU call copied records one by one and lost one.
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    for seed in range(12):
        (work / f"digitnet-erm-s{seed}.json").write_text("{}")  # more records than the device returns as files
    (work / "README.md").write_text("the local README, which unpacking must not overwrite")
    (work / ".ckpt").mkdir()
    (work / ".ckpt" / "digitnet-erm-s0.pt").write_bytes(b"x")  # checkpoints never travel back
    env = dict(os.environ, SWEEP_WORK=str(work), SWEEP_BUDGET_S="1", SWEEP_GRACE_S="1", OUT=str(out),
               SWEEP_PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--workers", "1"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0, proc.stderr  # stopped by its budget (124), or refused the damaged records
    returned = sorted(p.name for p in out.iterdir())
    assert "ref-gpu-i10000.tar.gz" in returned and len(returned) <= 8, returned
    with tarfile.open(out / "ref-gpu-i10000.tar.gz") as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {f"digitnet-erm-s{seed}.json" for seed in range(12)} <= names
    assert "sweep.log" in names and "README.md" not in names and not any(n.endswith(".pt") for n in names)
    assert "packed" in proc.stdout


def test_the_whole_device_call_measures_then_sweeps_within_its_budget(tmp_path):
    """benchmarks/gpu_call.sh on CPU: bench_train's JSON and table, then the sweep's archive, all in $OUT."""
    work, out = tmp_path / "work", tmp_path / "out"
    env = dict(os.environ, GPU_CALL_DEVICE="cpu", BENCH_ARCHS="digitnet", BENCH_ITERS="2", BENCH_WARMUP="1",
               CALL_BUDGET_S="90", BENCH_BUDGET_S="60", MIN_SWEEP_S="5", SWEEP_BUDGET_S="4", SWEEP_GRACE_S="1",
               SWEEP_WORK=str(work),
               OUT=str(out), SWEEP_PYTHON=sys.executable)
    call = SCRIPT.parent / "gpu_call.sh"
    proc = subprocess.run(["bash", str(call), "--workers", "1"], env=env, capture_output=True, text=True, timeout=300)
    returned = sorted(p.name for p in out.iterdir())
    assert {"bench_gpu.json", "bench_gpu.md", "ref-gpu-i10000.tar.gz", "sweep.log"} <= set(returned), proc.stderr
    assert len(returned) <= 8
    assert "| digitnet | erm | 1 |" in (out / "bench_gpu.md").read_text()
    assert "group of 6 it/s" in (out / "bench_gpu.md").read_text()
    assert "gpu_call: bench_train exit status 0" in proc.stdout
    assert "--preset reference-gpu" in (out / "sweep.log").read_text()

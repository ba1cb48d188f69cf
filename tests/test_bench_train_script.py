"""Smoke tests for benchmarks/bench_train.py (issue #12 item 5): tiny settings, a few seconds each."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_bench_train_reports_harness_and_bare_rates_per_config(tmp_path):
    out = tmp_path / "r.json"
    proc = _run("--archs", "digitnet", "--methods", "erm", "--threads", "1", "--iters", "2", "--warmup", "1",
                "--repeats", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "| digitnet | erm | 1 |" in proc.stdout and "load average" in proc.stdout
    assert "channels_last" in proc.stdout  # digitnet/erm also gets the layout/precision variants
    assert "| digitnet | erm | 1 |" in proc.stdout.split("Bare loop variants")[1]
    res = json.loads(out.read_text())
    (row,) = res["rows"]
    assert row["threads"] == 1 and row["iters"] == 2 and row["device"] == "cpu" and row["amp"] is False
    assert row["harness_its"] > 0 and row["bare_its"] > 0
    assert set(row["variants"]) == {"fp32", "channels_last", "bf16"}
    assert len(res["loadavg_before"]) == 3


def test_bench_train_rejects_unknown_names_before_measuring():
    proc = _run("--archs", "digitnet,nosuchnet", "--json")
    assert proc.returncode == 2
    assert "nosuchnet" in proc.stderr and "Traceback" not in proc.stderr


def test_bench_train_refuses_cuda_options_it_cannot_honour():
    proc = _run("--archs", "digitnet", "--amp")
    assert proc.returncode == 2 and "--amp needs --device cuda" in proc.stderr
    import torch

    if not torch.cuda.is_available():
        proc = _run("--archs", "digitnet", "--device", "cuda")
        assert proc.returncode == 2 and "no CUDA GPU is available here" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_bench_train_times_a_group_of_runs_against_one_run(tmp_path):
    out = tmp_path / "g.json"
    proc = _run("--archs", "digitnet", "--methods", "randconv", "--threads", "1", "--iters", "2", "--warmup", "1",
                "--repeats", "1", "--group", "2", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "group of 2 it/s | group x |" in proc.stdout
    (row,) = json.loads(out.read_text())["rows"]
    assert row["group"] == 2 and row["group_its"] > 0 and len(row["group_times_s"]) == 1
    assert abs(row["group_speedup"] - row["group_its"] / row["harness_its"]) < 1e-9
    proc = _run("--archs", "digitnet", "--group", "1")
    assert proc.returncode == 2 and "--group must be 2 or more" in proc.stderr

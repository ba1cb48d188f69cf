"""The sweep runner: records, resume, determinism, failures, config refusal, CLI errors (tiny in-memory domains)."""
from __future__ import annotations

import contextlib
import json
import os
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from neurn.bench import methods as methods_mod
from neurn.bench.sweep import parse_seeds, plan, resolve_targets, run_sweep
from neurn.cli import cli
from neurn.errors import BenchError, InvalidArgument, NeurnError
from neurn.bench.records import read_record, record_name


class DomainUnavailable(FileNotFoundError):
    """Stand-in for neurn.domains.DomainUnavailable."""


class ToyDomains:
    """Tiny learnable digit-like domains: a bright bar whose row encodes the label; targets recolour it."""

    names = ("mnist", "mnistm", "syn", "digits", "usps")
    sizes = {"train": 96, "test": 40}

    def list_domains(self) -> list[str]:
        return list(self.names)

    def available_domains(self, data_root=None) -> list[str]:
        return [n for n in self.names if n != "usps"]  # usps is "user-supplied" and absent

    def load_domain(self, name, split="train", size=32, channels=3, limit=None, data_root=None):
        if name == "usps":
            raise DomainUnavailable("usps.npz not found")
        g = torch.Generator().manual_seed(len(name) * 7 + len(split))
        n = self.sizes[split] if limit is None else min(limit, self.sizes[split])
        y = torch.arange(n) % 10
        x = 0.1 * torch.rand(n, channels, size, size, generator=g)
        for i in range(n):
            r = 2 + 3 * int(y[i])
            x[i, :, r:r + 2, 4:28] += 0.8
        if name != "mnist":  # a colour/contrast shift per target domain
            x = x * torch.linspace(0.5, 1.0, channels).view(1, -1, 1, 1) + 0.05 * self.names.index(name)
        return x.clamp(0, 1).float(), y.long()


TOY = ToyDomains()


def _sweep(out, **kw):
    args = dict(archs="digitnet", methods="erm,neurn", seeds="0", iters=3, provider=TOY, progress=False, threads=1,
                notify=lambda m: None)
    args.update(kw)
    return run_sweep(out=out, **args)


def test_sweep_writes_one_complete_record_per_run(tmp_path):
    notices = []
    recs = _sweep(tmp_path, seeds="0,1", notify=notices.append)
    assert len(recs) == 4
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == sorted(["config.json"] + [record_name("digitnet", m, s) for m in ("erm", "neurn") for s in (0, 1)])
    rec = read_record(tmp_path / "digitnet-neurn-s1.json")
    assert rec["status"] == "ok" and rec["reason"] is None
    assert (rec["arch"], rec["method"], rec["seed"], rec["iters"]) == ("digitnet", "neurn", 1, 3)
    assert list(rec["accuracy"]) == ["mnist", "mnistm", "syn", "digits"]  # source test split first, usps skipped
    assert all(0.0 <= a <= 1.0 for a in rec["accuracy"].values())
    assert rec["n_eval"]["syn"] == 40
    assert rec["train_time_s"] > 0 and rec["versions"]["torch"] == torch.__version__
    assert rec["config"]["lr"] == 1e-4 and rec["config"]["batch_size"] == 32 and rec["config"]["source_limit"] == 10_000
    assert any("usps" in n and "skipping" in n for n in notices)
    assert json.loads((tmp_path / "config.json").read_text()) == rec["config"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files behind


def test_rerun_skips_finished_records_and_resumes_missing_ones(tmp_path):
    _sweep(tmp_path)
    before = (tmp_path / "digitnet-erm-s0.json").stat().st_mtime_ns
    (tmp_path / "digitnet-neurn-s0.json").unlink()  # as if the sweep was killed during this run
    notices = []
    recs = _sweep(tmp_path, notify=notices.append)
    assert [(r["method"], r["seed"]) for r in recs] == [("neurn", 0)]
    assert (tmp_path / "digitnet-erm-s0.json").stat().st_mtime_ns == before
    assert any("skipping" in n and "already recorded" in n for n in notices)
    assert _sweep(tmp_path) == []


def test_runs_are_deterministic_per_seed_and_paired_across_methods(tmp_path):
    a = _sweep(tmp_path / "a", iters=4)
    b = _sweep(tmp_path / "b", iters=4)
    for ra, rb in zip(a, b):
        assert ra["loss_curve"] == rb["loss_curve"] and ra["accuracy"] == rb["accuracy"]
    c = _sweep(tmp_path / "c", iters=4, seeds="1")
    assert c[0]["loss_curve"] != a[0]["loss_curve"]


def test_different_config_in_out_folder_is_refused(tmp_path):
    _sweep(tmp_path, iters=3)
    with pytest.raises(BenchError, match=r"different config.*iters: 3 != 4"):
        _sweep(tmp_path, iters=4)
    with pytest.raises(BenchError, match="eval_limit"):
        _sweep(tmp_path, iters=3, eval_limit=10)
    # Records without config.json are checked too.
    (tmp_path / "config.json").unlink()
    with pytest.raises(BenchError, match="different config"):
        _sweep(tmp_path, iters=5)


def test_a_record_copied_from_another_sweep_is_refused_even_with_a_matching_config_json(tmp_path):
    """config.json matches, but one record holds another protocol: never counted as a finished run."""
    _sweep(tmp_path / "a", iters=3, methods="erm")
    _sweep(tmp_path / "b", iters=4, methods="erm", seeds="1")
    (tmp_path / "a" / "digitnet-erm-s1.json").write_text((tmp_path / "b" / "digitnet-erm-s1.json").read_text())
    with pytest.raises(BenchError, match=r"different config \(iters: 4 != 3, in digitnet-erm-s1.json\)"):
        _sweep(tmp_path / "a", iters=3, methods="erm", seeds="0,1")


def test_a_second_sweep_on_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    """Two sweeps on one --out would run the same jobs twice: the second one gets one line naming the first."""
    import fcntl
    import subprocess
    import sys
    import time

    from neurn.bench.sweep import LOCK_NAME

    tmp_path.joinpath(LOCK_NAME).write_text("")
    # Another process holds the lock, as a running sweep does.
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"f = open({str(tmp_path / LOCK_NAME)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
        "f.write(str(os.getpid())); f.flush(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BenchError, match=rf"another sweep \(process {holder.pid}\) is running in {tmp_path}; "
                                             "wait for it, stop it, or use another --out folder"):
            _sweep(tmp_path, methods="erm")
        assert not list(tmp_path.glob("digitnet-*.json"))
        assert _sweep(tmp_path, methods="erm", dry_run=True) == []  # --plan reads without the lock
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert len(_sweep(tmp_path, methods="erm")) == 1  # the kernel released the dead holder's lock
    with open(tmp_path / LOCK_NAME) as f:  # and the finished sweep released its own
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_non_finite_loss_marks_run_failed_and_sweep_continues(tmp_path):
    def nan_loss(model, x, y, gen, cfg):
        return model(x).sum() * float("nan")

    methods_mod.register_method("nan-test")(nan_loss)
    try:
        recs = _sweep(tmp_path, methods="nan-test,erm")
    finally:
        methods_mod.METHODS.remove("nan-test")
    by = {r["method"]: r for r in recs}
    assert by["nan-test"]["status"] == "failed"
    assert "non-finite loss" in by["nan-test"]["reason"] and "iteration 0" in by["nan-test"]["reason"]
    assert by["erm"]["status"] == "ok"
    # A failed run counts as finished unless asked to retry it.
    pending, _ = plan(["digitnet"], ["nan-test", "erm"], [0], tmp_path)
    assert pending == []
    pending, _ = plan(["digitnet"], ["nan-test", "erm"], [0], tmp_path, retry_failed=True)
    assert [j.method for j in pending] == ["nan-test"]


def test_a_loss_that_turns_non_finite_later_is_named_at_its_own_iteration(tmp_path):
    # The loop reads its losses from the device in batches (every iters/50 steps); the first bad one is named.
    calls = {"n": 0}

    def late_nan_loss(model, x, y, gen, cfg):
        calls["n"] += 1
        loss = F.cross_entropy(model(x), y)
        return loss * float("nan") if calls["n"] > 7 else loss

    methods_mod.register_method("late-nan-test")(late_nan_loss)
    try:
        (rec,) = _sweep(tmp_path, methods="late-nan-test", iters=100)
    finally:
        methods_mod.METHODS.remove("late-nan-test")
    assert rec["status"] == "failed" and rec["reason"] == "non-finite loss (nan) at iteration 7"
    assert [it for it, _ in rec["loss_curve"]] == [2, 4, 6]  # the windows before the bad step


def test_the_training_loop_waits_for_the_device_only_at_its_curve_points(tmp_path, monkeypatch):
    # A per-step `.item()` (or a CPU -> GPU copy of the batch indices) makes a GPU finish each step before
    # Python queues the next. Count the harness's reads (Adam's own reads of its CPU step counter do not
    # wait for the GPU): one batch of losses per loss-curve point (iters/50 steps).
    import sys

    from neurn.bench import train as train_mod

    reads = {"item": 0, "tolist": 0}
    item, tolist = torch.Tensor.item, torch.Tensor.tolist

    def counted(name, fn):
        def wrapper(self, *a, **k):
            reads[name] += sys._getframe(1).f_code.co_filename == train_mod.__file__
            return fn(self, *a, **k)
        return wrapper

    monkeypatch.setattr(torch.Tensor, "item", counted("item", item))
    monkeypatch.setattr(torch.Tensor, "tolist", counted("tolist", tolist))
    (rec,) = _sweep(tmp_path, methods="erm", iters=100)
    assert rec["status"] == "ok" and len(rec["loss_curve"]) == 50
    assert reads == {"item": 0, "tolist": 50}


def test_exception_in_a_run_is_recorded_not_raised(tmp_path):
    def boom(model, x, y, gen, cfg):
        raise RuntimeError("exploded")

    methods_mod.register_method("boom-test")(boom)
    try:
        (rec,) = _sweep(tmp_path, methods="boom-test")
    finally:
        methods_mod.METHODS.remove("boom-test")
    assert rec["status"] == "failed" and rec["reason"] == "RuntimeError: exploded"


@pytest.mark.parametrize("kw, msg", [
    ({"archs": "digitnet,nope"}, r"unknown architecture 'nope' \(choose from: digitnet, resnet18"),
    ({"methods": "erm,randcnv"}, r"unknown method 'randcnv'; did you mean randconv"),
    ({"domains": "syn,mars"}, r"unknown domain 'mars' \(choose from: mnist, mnistm"),
    ({"seeds": "a,b"}, "seeds must be non-negative integers"),
    ({"iters": 0}, "--iters must be >= 1"),
    ({"executor": "dask"}, "needs --scheduler"),
])
def test_bad_input_raises_one_clear_error(tmp_path, kw, msg):
    with pytest.raises(NeurnError, match=msg):
        _sweep(tmp_path, **kw)
    assert not (tmp_path / "config.json").exists()


def test_targets_and_seeds_parsing():
    notes = []
    assert resolve_targets(None, provider=TOY, notify=notes.append) == ["mnist", "mnistm", "syn", "digits"]
    assert resolve_targets("syn,usps", provider=TOY, notify=notes.append) == ["syn"]
    assert sum("usps" in n for n in notes) == 2
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]


def test_local_worker_processes(tmp_path):
    recs = _sweep(tmp_path, methods="erm,neurn", workers=2, threads=1, iters=2)
    assert sorted(r["method"] for r in recs) == ["erm", "neurn"]
    assert all(r["status"] == "ok" and r["threads"] == 1 for r in recs)
    assert len(list(tmp_path.glob("digitnet-*.json"))) == 2


def test_cli_bench_and_bad_input(tmp_path, monkeypatch):
    monkeypatch.setattr("neurn.bench.train.default_provider", lambda: TOY)
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "--archs", "resnet99", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "neurn: error: unknown architecture 'resnet99'; did you mean resnet18?" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(cli, ["bench", "--domains", "mars", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown domain 'mars'" in res.output
    out = tmp_path / "run"
    args = ["bench", "--archs", "digitnet", "--methods", "erm", "--seeds", "0", "--iters", "2", "--out", str(out)]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "1 new run(s) recorded" in res.output and "skipping domain 'usps'" in res.output
    res = runner.invoke(cli, args[:-3] + ["3", "--out", str(out)])
    assert res.exit_code == 2 and "different config" in res.output and "Traceback" not in res.output
    res = runner.invoke(cli, ["table", str(out)])
    assert res.exit_code == 0 and "| digitnet | erm |" in res.output


def test_record_accuracy_matches_a_direct_evaluation(tmp_path):
    """The recorded accuracy is the real top-1 of the trained weights (recomputed independently)."""
    from neurn.bench.archs import create_arch
    from neurn.bench.methods import get_method

    (rec,) = _sweep(tmp_path, methods="erm", iters=3)
    torch.manual_seed(0)
    model = get_method("erm").wrap(create_arch("digitnet"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x, y = TOY.load_domain("mnist", "train", limit=10_000)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    model.train()
    for it in range(3):
        idx = order[32 * it:32 * (it + 1)]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt, yt = TOY.load_domain("syn", "test")
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert math.isclose(rec["accuracy"]["syn"], acc, abs_tol=1e-6)


@pytest.mark.slow
def test_end_to_end_on_the_registered_domains(tmp_path):
    """A real (tiny) sweep on the generated digit domains via the CLI, then its table."""
    out = tmp_path / "real"
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "--archs", "digitnet", "--methods", "erm,neurn", "--seeds", "0",
                              "--iters", "20", "--eval-limit", "100", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = read_record(out / "digitnet-neurn-s0.json")
    assert rec["status"] == "ok" and {"mnist", "mnistm", "syn", "digits"} <= set(rec["accuracy"])
    assert rec["n_eval"]["mnistm"] == 100
    res = runner.invoke(cli, ["table", str(out)])
    assert res.exit_code == 0 and "| digitnet | neurn |" in res.output


# --- issue #9: damaged records, seeds, workers, threads, target checks, output folder, --quick ---------------

def test_damaged_record_is_named_and_rerun_not_counted_as_done(tmp_path):
    """A truncated record, one missing fields and one holding another run are all rerun (not 'done' forever)."""
    _sweep(tmp_path, seeds="0,1")
    erm0, neurn0, erm1 = (tmp_path / record_name("digitnet", m, s) for m, s in (("erm", 0), ("neurn", 0), ("erm", 1)))
    text = erm0.read_text()
    erm0.write_text(text[: len(text) // 2])  # killed mid-write by something other than our atomic writer
    rec = json.loads(neurn0.read_text())
    del rec["status"]
    neurn0.write_text(json.dumps(rec))
    erm1.write_text(json.dumps(dict(json.loads(erm1.read_text()), seed=7)))
    notices = []
    recs = _sweep(tmp_path, seeds="0,1", notify=notices.append)
    assert sorted((r["method"], r["seed"]) for r in recs) == [("erm", 0), ("erm", 1), ("neurn", 0)]
    damaged = [n for n in notices if n.startswith("warning:")]
    assert len(damaged) == 3 and all("running it again" in n for n in damaged)
    assert any(str(erm0) in n and "not valid JSON" in n for n in damaged)
    assert any(str(neurn0) in n and "missing status" in n for n in damaged)
    assert any(str(erm1) in n and "holds digitnet/erm/s7" in n for n in damaged)
    assert read_record(erm0)["status"] == "ok" and read_record(neurn0)["status"] == "ok"
    assert _sweep(tmp_path, seeds="0,1") == []  # now all four are valid and done


def test_retry_failed_and_table_never_crash_on_a_damaged_record(tmp_path):
    _sweep(tmp_path, methods="erm,neurn")
    bad = tmp_path / record_name("digitnet", "neurn", 0)
    bad.write_bytes(b'{"arch": "digitnet", "meth')
    (tmp_path / "notes.json").write_text("[1, 2]")  # a stray JSON file in the results folder
    with pytest.warns(UserWarning, match="digitnet-neurn-s0.json is damaged"):
        pending, finished = plan(["digitnet"], ["erm", "neurn"], [0], tmp_path, retry_failed=True)
    assert [j.method for j in pending] == ["neurn"] and [j.method for j in finished] == ["erm"]
    res = CliRunner().invoke(cli, ["table", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert f"warning: skipping {bad} is damaged: not valid JSON" in res.output
    assert "notes.json is damaged: expected a JSON object" in res.output
    assert "| digitnet | erm |" in res.output and "Traceback" not in res.output


def test_damaged_config_json_is_one_line_naming_it(tmp_path):
    _sweep(tmp_path)
    (tmp_path / "config.json").write_text('{"protocol": ')
    with pytest.raises(BenchError, match=r"config\.json is damaged: not valid JSON.*delete it"):
        _sweep(tmp_path)
    res = CliRunner().invoke(cli, ["bench", "--archs", "digitnet", "--methods", "erm", "--seeds", "0",
                                   "--iters", "3", "--domains", "digits", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().splitlines()[-1].startswith(f"neurn: error: {tmp_path / 'config.json'} is damaged")


@pytest.mark.parametrize("text, msg", [
    ("0-999999999", "at most 1000 seeds"),
    ("0-4,2147483648", r"seeds must be in 0\.\.2147483647"),
    ("5-3", "seed range 5-3 is empty"),
    ("-1", "non-negative integers"),
    ("", "non-negative integers"),
])
def test_seeds_are_bounded_without_expanding_huge_ranges(text, msg):
    with pytest.raises(InvalidArgument, match=msg):
        parse_seeds(text)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.integers(0, 2**40)), min_size=1, max_size=4))
def test_parse_seeds_is_bounded_for_any_ranges(ranges):
    """Any list of ranges either parses into <= 1000 distinct seeds below 2**31, or is refused, at once."""
    text = ",".join(f"{a}-{b}" for a, b in ranges)
    try:
        seeds = parse_seeds(text)
    except InvalidArgument:
        return
    assert 0 < len(seeds) <= 1000 and len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**31 for s in seeds)


def test_default_threads_is_one_per_worker(tmp_path):
    """Measured (see DEFAULT_THREADS in neurn/bench/sweep.py): 1 thread per run unless --threads is given."""
    (rec,) = _sweep(tmp_path, methods="erm", iters=1, threads=None)
    assert rec["threads"] == 1


class DamagedTarget(ToyDomains):
    """TOY with one damaged target file (``syn``), counting the source loads."""

    def __init__(self, how: str):
        self.how, self.source_loads = how, 0

    def load_domain(self, name, split="train", size=32, channels=3, limit=None, data_root=None):
        if name == "mnist" and split == "train":
            self.source_loads += 1
        if name == "syn" and split == "test":
            if self.how == "raise":
                raise ValueError("syn_test.npz: bad CRC-32 for file 'images.npy'")
            x, y = super().load_domain(name, split, size, channels, limit, data_root)
            if self.how == "nan":
                x[3] = float("nan")
            if self.how == "labels":
                y[0] = 54
            return x, y
        return super().load_domain(name, split, size, channels, limit, data_root)


@pytest.mark.parametrize("how, msg", [("raise", "bad CRC-32"), ("nan", "NaN or infinite pixels"),
                                      ("labels", r"labels 0\.\.54 are outside 0\.\.9")])
def test_damaged_target_fails_before_training(tmp_path, how, msg):
    steps = []

    def counting(model, x, y, gen, cfg):
        steps.append(1)
        return torch.nn.functional.cross_entropy(model(x), y)

    methods_mod.register_method("count-test")(counting)
    try:
        with pytest.raises(BenchError, match=rf"domain 'syn' \(test\) cannot .*{msg}"):
            _sweep(tmp_path, methods="count-test", provider=DamagedTarget(how), eval_limit=30)
    finally:
        methods_mod.METHODS.remove("count-test")
    assert steps == []  # not one training iteration
    assert not list(tmp_path.glob("digitnet-*.json"))


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_unwritable_out_fails_before_any_training(tmp_path, where):
    out = "/proc/neurn-bench-out" if where == "proc" else tmp_path / "file.txt" / "results"
    (tmp_path / "file.txt").write_text("not a folder")
    prov = DamagedTarget("none")
    with pytest.raises(OSError, match="neurn-bench-out|file.txt"):
        _sweep(out, provider=prov)
    assert prov.source_loads == 0
    res = CliRunner().invoke(cli, ["bench", "--archs", "digitnet", "--methods", "erm", "--seeds", "0",
                                   "--iters", "1", "--domains", "digits", "--out", str(out)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("neurn: error: cannot ") and str(out) in res.output


def test_quick_refuses_explicit_preset_options_and_states_its_folder(tmp_path, monkeypatch):
    runner = CliRunner()
    for extra in (["--iters", "5"], ["--archs", "digitnet"], ["--seeds", "0", "--eval-limit", "10"]):
        res = runner.invoke(cli, ["bench", "--quick", *extra, "--out", str(tmp_path / "q")])
        assert res.exit_code == 2, res.output
        assert "neurn: error: --quick sets " + extra[0] in res.output
    assert not (tmp_path / "q").exists()
    seen = {}

    def fake_sweep(archs, methods, seeds, out, **kw):
        seen.update(archs=archs, methods=methods, seeds=seeds, out=out, **kw)
        raise BenchError("stopped by the test")

    monkeypatch.setattr("neurn.bench.sweep.run_sweep", fake_sweep)
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(cli, ["bench", "--quick"])
    assert "--quick: a smoke run, not a result; writing to results/_scratch/quick" in res.output
    assert (seen["archs"], seen["methods"], seen["seeds"], seen["iters"], seen["eval_limit"]) == (
        "digitnet", "erm,neurn", "0", 300, 1000)
    res = runner.invoke(cli, ["bench", "--quick", "--out", str(tmp_path / "mine"), "--domains", "digits"])
    assert f"writing to {tmp_path / 'mine'}" in res.output and seen["out"] == str(tmp_path / "mine")


def test_cli_workers_2_on_the_real_domains(tmp_path):
    """The real CLI path with spawned workers (the default provider is a module: it must reach them by name)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "w2"
    env = dict(os.environ, NEURN_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "neurn.cli", "bench", "--workers", "2", "--archs", "digitnet",
                           "--methods", "erm,neurn", "--seeds", "0", "--iters", "2", "--eval-limit", "40",
                           "--domains", "digits", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 new run(s) recorded" in proc.stdout and "pickle" not in proc.stderr
    for m in ("erm", "neurn"):
        rec = read_record(out / record_name("digitnet", m, 0))
        assert rec["status"] == "ok" and rec["n_eval"] == {"digits": 40} and rec["threads"] == 1


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                     max_leaves=12)


@settings(max_examples=80, deadline=None)
@given(st.one_of(st.binary(max_size=40), _json.map(lambda v: json.dumps(v).encode()),
                 st.fixed_dictionaries({"arch": _json, "method": _json, "seed": _json, "status": _json,
                                        "accuracy": _json}).map(lambda v: json.dumps(v).encode())))
def test_any_file_content_is_a_valid_record_or_named_never_a_crash(content):
    """Whatever bytes a record file holds, listing and planning either use it or name it; nothing raises."""
    import tempfile
    from pathlib import Path

    from neurn.bench.records import iter_records, load_record

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / record_name("digitnet", "erm", 0)
        p.write_bytes(content)
        notes = []
        recs = iter_records(d, notify=notes.append)
        assert len(recs) + len(notes) == 1
        assert all(str(p) in n for n in notes)
        pending, finished = plan(["digitnet"], ["erm"], [0], d, retry_failed=True, notify=notes.append)
        assert len(pending) + len(finished) == 1
        if recs:
            assert load_record(p)["status"] in ("ok", "failed")


# --- issue #12: presets, checkpoints, learning curves, devices -------------------------------------------------

def test_reference_gpu_preset_plan_orders_erm_neurn_pairs_first():
    """The preset's 108 runs: every arch x 4 methods x seeds 0-2; for each seed and arch erm then neurn, then RandConv."""
    from neurn.bench.archs import get_arch, list_archs
    from neurn.bench.protocol import get_preset
    from neurn.bench.sweep import job_order

    spec = get_preset("reference-gpu")
    fixed = spec["fixed"]
    assert fixed["iters"] == 10_000 and fixed["eval_limit"] is None and fixed["seeds"] == [0, 1, 2]
    assert fixed["curve_every"] == 1_000  # the verdict's plateau column needs ERM's learning curve
    assert spec["defaults"]["device"] == "cuda" and spec["defaults"]["workers"] == 8
    # Grouped (6 runs of an arch per batched model), so fp32: autocast does not reach vmap's convolutions.
    assert spec["defaults"]["group"] == 6 and spec["defaults"]["amp"] is False
    archs = list_archs()
    assert len(archs) >= 8 and {"cnn", "nas", "vit"} <= {get_arch(a).family for a in archs}
    jobs = job_order(archs, fixed["methods"], fixed["seeds"], spec["pairs_first"])
    assert len(jobs) == len(set(jobs)) == len(archs) * 4 * 3
    n_pairs = len(archs) * 2 * 3
    assert [(j.seed, j.arch, j.method) for j in jobs[:n_pairs]] == [
        (s, a, m) for s in (0, 1, 2) for a in archs for m in ("erm", "neurn")]
    assert {j.method for j in jobs[n_pairs:]} == {"randconv", "neurn+randconv"}
    # RandConv arch-major: all three seeds of the first arch (a whole comparison) before the second arch.
    assert jobs[n_pairs:][:7] == [(archs[0], m, s) for s in (0, 1, 2) for m in ("randconv", "neurn+randconv")] + [
        (archs[1], "randconv", 0)]


def test_reference_gpu_preset_dry_run_on_cpu_writes_each_record_as_its_run_ends(tmp_path, monkeypatch):
    """The preset's sweep with tiny iterations on CPU (one CNN and the ViT, grouped as the preset groups them):
    order, records written one by one."""
    import neurn.bench.sweep as sweep_mod
    from neurn.bench.protocol import get_preset

    spec = get_preset("reference-gpu")
    written = []
    real_write = sweep_mod.write_json_atomic

    def spy(path, rec):
        # When a record is written, every earlier run's record is already on disk (nothing is batched).
        assert all((tmp_path / name).exists() for name in written)
        written.append(path.name)
        return real_write(path, rec)

    monkeypatch.setattr(sweep_mod, "write_json_atomic", spy)
    fixed = dict(spec["fixed"], archs=["digitnet", "vit_p4"], seeds=[0], iters=1)
    recs = _sweep(tmp_path, archs=fixed["archs"], methods=fixed["methods"], seeds=fixed["seeds"],
                  iters=fixed["iters"], eval_limit=fixed["eval_limit"], curve_every=fixed["curve_every"],
                  device="cpu", checkpoint_every=spec["defaults"]["checkpoint_every"],
                  pairs_first=spec["pairs_first"], group=spec["defaults"]["group"])
    assert written == [record_name(a, m, 0) for a, m in [
        ("digitnet", "erm"), ("digitnet", "neurn"), ("vit_p4", "erm"), ("vit_p4", "neurn"),
        ("digitnet", "randconv"), ("digitnet", "neurn+randconv"), ("vit_p4", "randconv"),
        ("vit_p4", "neurn+randconv")]]
    assert all(r["status"] == "ok" for r in recs), [r["reason"] for r in recs]
    assert all((r["device"], r["amp"], r["channels_last"]) == ("cpu", False, False) for r in recs)
    # Each arch's erm/neurn runs trained as one batched model, then its two RandConv methods.
    assert recs[0]["group"] == recs[1]["group"] == ["digitnet/erm/s0", "digitnet/neurn/s0"]
    assert recs[6]["group"] == ["vit_p4/randconv/s0", "vit_p4/neurn+randconv/s0"]
    assert all(k not in recs[0]["config"] for k in ("device", "amp", "channels_last", "checkpoint_every", "group"))


def test_cli_preset_fills_the_sweep_and_refuses_explicit_conflicts(tmp_path, monkeypatch):
    from neurn.bench.archs import list_archs

    runner = CliRunner()
    res = runner.invoke(cli, ["bench", "--preset", "cpu-converge", "--iters", "5", "--curve-every", "1",
                              "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "neurn: error: --preset cpu-converge sets --iters, --curve-every itself" in res.output
    res = runner.invoke(cli, ["bench", "--preset", "quick", "--quick"])
    assert res.exit_code == 2 and "--quick is --preset quick" in res.output
    assert not (tmp_path / "c").exists()
    seen = {}

    def fake_sweep(archs, methods, seeds, out, **kw):
        seen.clear()
        seen.update(archs=archs, methods=methods, seeds=seeds, out=out, **kw)
        return []

    monkeypatch.setattr("neurn.bench.sweep.run_sweep", fake_sweep)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    res = runner.invoke(cli, ["bench", "--preset", "reference-gpu", "--device", "auto", "--workers", "3"])
    assert res.exit_code == 0, res.output
    assert seen["archs"] == ",".join(list_archs()) and seen["methods"] == "erm,neurn,randconv,neurn+randconv"
    assert (seen["seeds"], seen["iters"], seen["eval_limit"], seen["out"]) == ("0,1,2", 10_000, None,
                                                                            "results/ref-gpu-i10000")
    assert (seen["workers"], seen["device"], seen["amp"], seen["checkpoint_every"]) == (3, "auto", False, 500)
    assert seen["pairs_first"] == ["erm", "neurn"] and seen["group"] == 6
    res = runner.invoke(cli, ["bench", "--preset", "cpu-converge"])
    assert res.exit_code == 0, res.output
    assert seen["archs"] == "digitnet,mobilenet_v2,vit_p4" and seen["iters"] == 2000 and seen["eval_limit"] is None
    assert (seen["device"], seen["threads"], seen["checkpoint_every"], seen["curve_every"]) == ("cpu", 1, 250, 200)
    res = runner.invoke(cli, ["bench", "--preset", "cpu-long"])
    assert res.exit_code == 0, res.output
    assert (seen["archs"], seen["iters"], seen["curve_every"], seen["out"]) == ("vit_p4,mnasnet1_0", 6000, 500,
                                                                              "results/cpu-long-i6000")
    assert seen["pairs_first"] == ["erm", "neurn"] and (seen["device"], seen["workers"]) == ("cpu", 2)
    res = runner.invoke(cli, ["bench", "--out", str(tmp_path / "d")])
    assert res.exit_code == 0 and (seen["checkpoint_every"], seen["device"], seen["curve_every"]) == (500, "cpu", 0)


def test_device_cuda_is_refused_in_one_line_without_cuda(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    for args in (["--device", "cuda"], ["--preset", "reference-gpu"]):
        res = CliRunner().invoke(cli, ["bench", *args, "--out", str(tmp_path / "g")])
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert res.output.strip().splitlines()[-1] == (
            "neurn: error: --device cuda: no CUDA GPU is available here (torch.cuda.is_available() is False); "
            "use --device cpu or --device auto")
    res = CliRunner().invoke(cli, ["bench", "--amp", "--out", str(tmp_path / "g")])
    assert res.exit_code == 2 and "neurn: error: --amp needs --device cuda" in res.output
    assert not (tmp_path / "g").exists()  # refused before the output folder is made


_KILL = {"at": None, "calls": 0}


def _killable_loss(model, x, y, gen, cfg):
    """RandConv's loss (it draws from the augmentation generator), killed like Ctrl-C at call ``_KILL['at']``."""
    if _KILL["calls"] == _KILL["at"]:
        raise KeyboardInterrupt
    _KILL["calls"] += 1
    return methods_mod.randconv_loss(model, x, y, gen, cfg)


def test_killed_run_resumes_from_its_checkpoint_with_the_same_record(tmp_path):
    """6 iterations, checkpoint every 2, killed during iteration 6 (after 5): resumes from 4, same record."""
    from neurn.bench.sweep import Job, checkpoint_path

    methods_mod.register_method("kill-test")(_killable_loss)
    try:
        kw = dict(methods="kill-test", iters=6, checkpoint_every=2, curve_every=2)
        _KILL.update(at=None, calls=0)
        (whole,) = _sweep(tmp_path / "whole", **kw)
        _KILL.update(at=5, calls=0)
        with pytest.raises(KeyboardInterrupt):
            _sweep(tmp_path / "cut", **kw)
        ckpt = checkpoint_path(tmp_path / "cut", Job("digitnet", "kill-test", 0))
        assert torch.load(ckpt, weights_only=True)["iter"] == 4  # at most checkpoint_every iterations lost
        assert not (tmp_path / "cut" / record_name("digitnet", "kill-test", 0)).exists()
        _KILL.update(at=None, calls=0)
        notes = []
        (resumed,) = _sweep(tmp_path / "cut", notify=notes.append, **kw)
    finally:
        methods_mod.METHODS.remove("kill-test")
    assert _KILL["calls"] == 2 and resumed["resumed_from"] == 4  # only iterations 5 and 6 were trained again
    assert any("resume from their checkpoint" in n for n in notes)
    assert resumed["status"] == whole["status"] == "ok"
    for key in ("accuracy", "loss_curve", "source_curve", "final_loss", "n_eval", "config"):
        assert resumed[key] == whole[key], key
    assert [i for i, _ in whole["source_curve"]] == [2, 4, 6] and len(whole["loss_curve"]) == 6
    assert not ckpt.exists() and not list(ckpt.parent.glob("*.pt"))  # removed once the record is written
    assert not list((tmp_path / "whole" / ".ckpt").glob("*.pt"))
    # What stays is each finished run's last state, for --extend-from.
    for folder in ("whole", "cut"):
        assert torch.load(tmp_path / folder / ".ckpt" / "final" / ckpt.name, weights_only=True)["iter"] == 6


def test_damaged_or_foreign_checkpoint_starts_the_run_over(tmp_path):
    from neurn.bench.sweep import Job, checkpoint_path

    (ref,) = _sweep(tmp_path / "ref", methods="erm", iters=4, checkpoint_every=2)
    ckpt = checkpoint_path(tmp_path / "bad", Job("digitnet", "erm", 0))
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="cannot be read.*from scratch"):
        (rec,) = _sweep(tmp_path / "bad", methods="erm", iters=4, checkpoint_every=2)
    assert "resumed_from" not in rec and rec["loss_curve"] == ref["loss_curve"] and rec["accuracy"] == ref["accuracy"]


def test_arch_digest_names_the_definition_and_draws_no_random_numbers(monkeypatch):
    """The MNASNet BatchNorm fix kept every weight's shape, yet its digest changes; building it draws no RNG."""
    import neurn.bench.archs as archs_mod

    rng = torch.get_rng_state()
    fixed = archs_mod.arch_digest("mnasnet1_0")
    assert torch.equal(rng, torch.get_rng_state())
    archs_mod.arch_digest.cache_clear()
    try:
        with monkeypatch.context() as mp:
            mp.setattr(archs_mod, "BN_MOMENTUM", 0.0003)  # torchvision's own, the pre-fix definition
            assert archs_mod.arch_digest("mnasnet1_0") != fixed
    finally:
        archs_mod.arch_digest.cache_clear()
    assert archs_mod.arch_digest("mnasnet1_0") == fixed
    assert archs_mod.arch_digest("mnasnet1_0", in_chans=1) != fixed  # other stem, other net


def test_sweep_refuses_records_of_another_arch_definition(tmp_path):
    """A finished run of an older net never counts as done: one line naming the arch, both digests, the fix."""
    from neurn.bench.archs import arch_digest
    from neurn.bench.records import write_json_atomic
    from neurn.errors import ConfigMismatch

    (rec,) = _sweep(tmp_path, methods="erm")
    assert rec["arch_digest"] == arch_digest("digitnet")
    path = tmp_path / record_name("digitnet", "erm", 0)
    write_json_atomic(path, dict(rec, arch_digest="0123456789ab"))
    with pytest.raises(ConfigMismatch) as err:
        _sweep(tmp_path, methods="erm")
    msg = str(err.value)
    assert "\n" not in msg and "1 run(s) of digitnet (e.g. digitnet-erm-s0.json)" in msg
    assert f"digest 0123456789ab; this checkout builds {arch_digest('digitnet')}" in msg
    assert msg.endswith("use another --out folder, or delete those records to run them again")
    # A record from before records carried the digest is taken as it is.
    write_json_atomic(path, {k: v for k, v in rec.items() if k != "arch_digest"})
    assert _sweep(tmp_path, methods="erm") == []


_CUT_RUN = dict(methods="kill-test", iters=4, checkpoint_every=2)


@contextlib.contextmanager
def _kill_test_method():
    """The ``kill-test`` method (:func:`_killable_loss`) registered for the duration of the block."""
    methods_mod.register_method("kill-test")(_killable_loss)
    try:
        yield
    finally:
        methods_mod.METHODS.remove("kill-test")


def _cut_after_first_checkpoint(out):
    """digitnet/kill-test/s0 (:data:`_CUT_RUN`) killed after 3 of 4 iterations: (its checkpoint, the state in it).

    The kill counter is reset, so the resumed run trains undisturbed.
    """
    from neurn.bench.sweep import Job, checkpoint_path

    _KILL.update(at=3, calls=0)
    with pytest.raises(KeyboardInterrupt):
        _sweep(out, **_CUT_RUN)
    _KILL.update(at=None, calls=0)
    ckpt = checkpoint_path(out, Job("digitnet", "kill-test", 0))
    return ckpt, torch.load(ckpt, weights_only=True)


def test_a_run_resumed_on_another_device_says_so_in_its_record(tmp_path):
    """A checkpoint written on CUDA with AMP resumed on CPU: allowed, and the record's warnings say where each part ran."""
    with _kill_test_method():
        ckpt, state = _cut_after_first_checkpoint(tmp_path)
        assert (state["device"], state["amp"]) == ("cpu", False)
        torch.save(dict(state, device="cuda", amp="bfloat16"), ckpt)
        (rec,) = _sweep(tmp_path, **_CUT_RUN)
    assert rec["resumed_from"] == 2 and rec["device"] == "cpu"
    assert rec["warnings"] == ["iterations 1-2 ran on cuda (amp bfloat16), the rest on cpu (amp False)"]


def test_checkpoint_of_another_arch_definition_starts_the_run_over(tmp_path):
    with _kill_test_method():
        ckpt, state = _cut_after_first_checkpoint(tmp_path)
        assert state["iter"] == 2 and state["arch_digest"]
        torch.save(dict(state, arch_digest="0123456789ab"), ckpt)
        with pytest.warns(UserWarning, match="another definition of digitnet.*0123456789ab.*from scratch"):
            (rec,) = _sweep(tmp_path, **_CUT_RUN)
    assert "resumed_from" not in rec and _KILL["calls"] == 4


def test_plan_lists_recorded_resumable_and_new_runs_with_estimates_and_writes_nothing(tmp_path):
    """--plan: recorded runs counted, a checkpoint's iteration shown, costs from finished runs, no file touched."""
    from neurn.bench.sweep import Job, checkpoint_path

    out = tmp_path / "results" / "sweep"
    methods_mod.register_method("kill-test")(_killable_loss)
    try:
        kw = dict(methods="erm,kill-test", iters=4, checkpoint_every=2, seeds="0,1")
        _KILL.update(at=3, calls=0)
        with pytest.raises(KeyboardInterrupt):  # erm/s0 recorded, kill-test/s0 checkpointed at iteration 2
            _sweep(out, **kw)
        before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
        notes = []
        assert _sweep(out, notify=notes.append, dry_run=True, workers=2, **kw) == []
    finally:
        methods_mod.METHODS.remove("kill-test")
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    assert checkpoint_path(out, Job("digitnet", "kill-test", 0)).exists()
    text = notes[-1].splitlines()
    assert text[0] == f"{out}: 4 run(s); 1 recorded, 1 resume from a checkpoint, 2 to start"
    erm = read_record(out / record_name("digitnet", "erm", 0))
    per_it, eval_s = erm["train_time_s"] / 4, erm["eval_time_s"]
    rows = {line.split()[0]: line.split(None, 1)[1] for line in text[1:4]}
    assert rows["digitnet/kill-test/s0"].startswith("resumes at 2/4") and rows["digitnet/kill-test/s0"].endswith(
        "no estimate")
    assert rows["digitnet/erm/s1"].startswith("to start") and "~" in rows["digitnet/erm/s1"]
    assert rows["digitnet/kill-test/s1"].endswith("no estimate")
    assert text[4].startswith("estimated: ") and f"with 2 worker(s) on {os.cpu_count()} core(s)" in text[4]
    assert text[5].startswith("no estimate for 2 run(s)")
    from neurn.bench.estimate import run_costs
    assert run_costs([out], "cpu")[("digitnet", "erm")][:2] == pytest.approx((per_it, eval_s))
    assert run_costs([out], "cuda") == {}
    # A checkpoint the run would drop (here: of another arch definition) is planned as a fresh start.
    ckpt = checkpoint_path(out, Job("digitnet", "kill-test", 0))
    torch.save(dict(torch.load(ckpt, weights_only=True), arch_digest="0123456789ab"), ckpt)
    methods_mod.register_method("kill-test")(_killable_loss)
    try:
        with pytest.warns(UserWarning, match="another definition of digitnet"):
            _sweep(out, notify=notes.append, dry_run=True, **kw)
    finally:
        methods_mod.METHODS.remove("kill-test")
    assert "1 recorded, 0 resume from a checkpoint, 3 to start" in notes[-1]


def test_plan_costs_come_from_the_own_folder_else_the_longest_sibling_runs(tmp_path):
    from neurn.bench.estimate import run_costs
    from neurn.bench.records import write_json_atomic

    def rec(folder, iters, seconds, seed=0):
        write_json_atomic(tmp_path / folder / record_name("vit_p4", "erm", seed), {
            "arch": "vit_p4", "method": "erm", "seed": seed, "status": "ok", "accuracy": {"mnist": 0.9},
            "iters": iters, "train_time_s": seconds, "eval_time_s": 10.0, "device": "cpu"})

    rec("short", 80, 40.0)      # 0.5 s/it
    rec("long", 6000, 1200.0)   # 0.2 s/it
    rec("long", 6000, 1800.0, seed=1)  # median 0.25 s/it
    assert run_costs([tmp_path / "new", tmp_path / "long", tmp_path / "short"], "cpu")[("vit_p4", "erm")] == (
        pytest.approx(0.25), 10.0, tmp_path / "long")
    assert run_costs([tmp_path / "short", tmp_path / "long"], "cpu")[("vit_p4", "erm")][2] == tmp_path / "short"


def test_plan_scales_a_method_never_run_on_an_arch_from_the_closest_method_run_on_it(tmp_path):
    """neurn+randconv on mnasnet1_0 before any has finished: randconv's time there x the ratio on the archs that
    ran both (erm's ratio rests on as many archs but is further from 1); a method run nowhere stays unknown."""
    from neurn.bench.estimate import describe, format_plan
    from neurn.bench.records import write_json_atomic
    from neurn.bench.sweep import Job

    old = tmp_path / "results" / "old"
    write_json_atomic(old / "config.json", {})
    for arch, method, seconds in [("digitnet", "erm", 25.0), ("digitnet", "randconv", 100.0),
                                  ("digitnet", "neurn+randconv", 120.0), ("vit_p4", "erm", 50.0),
                                  ("vit_p4", "randconv", 200.0), ("vit_p4", "neurn+randconv", 240.0),
                                  ("mnasnet1_0", "erm", 100.0), ("mnasnet1_0", "randconv", 300.0)]:
        write_json_atomic(old / record_name(arch, method, 0), {
            "arch": arch, "method": method, "seed": 0, "status": "ok", "accuracy": {"mnist": 0.9},
            "iters": 100, "train_time_s": seconds, "eval_time_s": 0.0, "device": "cpu"})
    out = tmp_path / "results" / "new"
    rows = describe([Job("mnasnet1_0", "neurn+randconv", 0), Job("mnasnet1_0", "neurn", 0)], [], out, 200, "cpu",
                    lambda job: 0)
    assert rows[0].seconds == pytest.approx(3.0 * 1.2 * 200) and rows[0].scaled_from == "randconv x 1.20"
    assert rows[1].seconds is None and rows[1].scaled_from == ""
    text = format_plan(rows, out, 200, workers=1)
    assert "mnasnet1_0/neurn+randconv/s0  to start               ~12 min (as randconv x 1.20)" in text
    assert "the 1 marked (as METHOD x RATIO)" in text
    assert "no estimate for 1 run(s)" in text and "nor of their method on another arch" in text


def test_cli_plan_on_a_new_folder_creates_nothing(tmp_path):
    res = CliRunner().invoke(cli, ["bench", "--plan", "--out", str(tmp_path / "new"), "--archs", "digitnet",
                                   "--methods", "erm,neurn", "--seeds", "0", "--iters", "10"])
    assert res.exit_code == 0, res.output
    assert f"{tmp_path / 'new'}: 2 run(s); 0 recorded, 0 resume from a checkpoint, 2 to start" in res.output
    assert "no estimate for 2 run(s)" in res.output and "new run(s) recorded" not in res.output
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")  # the Python API checks what click's Path type checks for the CLI
    with pytest.raises(OSError, match="is a file, not a folder: choose another output folder"):
        _sweep(tmp_path / "file", dry_run=True)


def test_learning_curve_is_recorded_in_the_config_and_changes_no_result(tmp_path):
    (plain,) = _sweep(tmp_path / "plain", methods="neurn", iters=4)
    (curved,) = _sweep(tmp_path / "curve", methods="neurn", iters=4, curve_every=3, curve_eval_limit=20)
    assert "source_curve" not in plain and "curve_every" not in plain["config"]  # off: configs as before
    assert curved["config"]["curve_every"] == 3 and curved["config"]["curve_eval_limit"] == 20
    assert [i for i, _ in curved["source_curve"]] == [3, 4]  # every M iterations, and the last one
    assert all(0.0 <= a <= 1.0 for _, a in curved["source_curve"])
    assert curved["accuracy"] == plain["accuracy"] and curved["loss_curve"] == plain["loss_curve"]
    # The curve is part of the config: a folder without it refuses a sweep with it.
    with pytest.raises(BenchError, match="curve_every"):
        _sweep(tmp_path / "plain", methods="neurn", iters=4, curve_every=3)


def test_split_cache_never_hands_one_provider_another_providers_images():
    """Each fresh provider gets its own images, even when an earlier one was dropped (id() reuse)."""
    import gc

    import numpy as np

    from neurn.bench import train

    class Provider:
        def __init__(self, value):
            self.value = value

        def load_domain(self, name, split, size, channels, limit, data_root):
            return np.full((2, channels, size, size), self.value, np.float32), np.zeros(2, np.int64)

    cfg = {"size": 4, "channels": 1}
    before = dict(train._DATA_CACHE)
    try:
        for i in range(50):
            p = Provider(float(i))
            x, _ = train.load_split(p, "fake", "test", cfg)
            assert float(x[0, 0, 0, 0]) == i
            del p, x
            gc.collect()
        # An unhashable provider is loaded every time instead of cached.
        class Unhashable(Provider):
            __hash__ = None
        x, _ = train.load_split(Unhashable(7.0), "fake", "test", cfg)
        assert float(x[0, 0, 0, 0]) == 7.0
    finally:
        train._DATA_CACHE.clear()
        train._DATA_CACHE.update(before)


class _EvalBroken(torch.nn.Module):
    """Reads the toy bar's row perfectly in training mode; in eval mode it always answers class 0."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x):
        rows = x[:, 0, :, 4:28].mean(-1)  # (n, 32): the bar of label k is on rows 2 + 3k
        logits = self.scale * rows[:, [2 + 3 * k for k in range(10)]]
        if self.training:
            return logits
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float() + 0 * logits


def test_a_run_that_fits_its_batches_but_is_at_chance_in_eval_mode_is_flagged(tmp_path, capsys):
    """The MNASNet BatchNorm failure, as a record: low training loss, chance source accuracy -> a warning."""
    from neurn.bench.archs import ARCHS, register_arch

    register_arch("evalbroken", "cnn", "test only")(lambda n, c: _EvalBroken())
    try:
        recs = _sweep(tmp_path, archs="evalbroken,digitnet", methods="erm", iters=2, progress=True)
    finally:
        ARCHS.remove("evalbroken")
    broken, fine = (next(r for r in recs if r["arch"] == a) for a in ("evalbroken", "digitnet"))
    assert broken["final_loss"] < 0.5 and broken["accuracy"]["mnist"] == pytest.approx(0.1)
    assert broken["warnings"] and "eval mode disagrees with training mode" in broken["warnings"][0]
    assert "warnings" not in fine  # digitnet after 2 iterations: high loss, near chance, nothing to flag
    assert read_record(tmp_path / record_name("evalbroken", "erm", 0))["warnings"] == broken["warnings"]
    captured = capsys.readouterr()
    assert "warning: evalbroken/erm/s0: training loss" in captured.out + captured.err
    res = CliRunner().invoke(cli, ["table", str(tmp_path)])
    assert res.exit_code == 0 and "warning: evalbroken/erm/s0: training loss" in res.stderr


def test_a_longer_sweep_continues_the_shorter_runs_with_the_result_of_training_from_scratch(tmp_path):
    """4 iterations, then --extend-from to 6: only iterations 5-6 train, and the record is the 6-iteration run's.

    The method draws from the augmentation generator (RandConv), so its state must carry over too.
    """
    from neurn.bench.sweep import Job, final_checkpoint_path

    kw = dict(methods="kill-test", checkpoint_every=2, curve_every=2)
    with _kill_test_method():
        _KILL.update(at=None, calls=0)
        (scratch,) = _sweep(tmp_path / "scratch", iters=6, **kw)
        (short,) = _sweep(tmp_path / "short", iters=4, **kw)
        final = final_checkpoint_path(tmp_path / "short", Job("digitnet", "kill-test", 0))
        assert torch.load(final, weights_only=True)["iter"] == 4
        _KILL.update(calls=0)
        notes = []
        (longer,) = _sweep(tmp_path / "longer", iters=6, extend_from=tmp_path / "short", notify=notes.append, **kw)
    assert _KILL["calls"] == 2  # iterations 5 and 6 only
    assert longer["extended_from"] == {"checkpoint": str(final), "iter": 4, "iters": 4}
    for key in ("accuracy", "loss_curve", "source_curve", "final_loss", "config"):
        assert longer[key] == scratch[key], key
    assert longer["source_curve"][:2] == short["source_curve"]
    assert any(n.startswith(f"1 run(s) continue from the state of their shorter run in {tmp_path / 'short'}")
               for n in notes)
    assert "extended_from" not in scratch


def test_extending_a_run_the_shorter_sweep_never_finished_starts_from_its_checkpoint(tmp_path):
    with _kill_test_method():
        _cut_after_first_checkpoint(tmp_path / "short")  # 4-iteration run killed after 3: checkpoint at 2
        (scratch,) = _sweep(tmp_path / "scratch", **dict(_CUT_RUN, iters=6))
        _KILL.update(calls=0)
        (longer,) = _sweep(tmp_path / "longer", extend_from=tmp_path / "short", **dict(_CUT_RUN, iters=6))
    assert longer["extended_from"]["iter"] == 2 and _KILL["calls"] == 4
    assert longer["accuracy"] == scratch["accuracy"] and longer["loss_curve"] == scratch["loss_curve"]


def test_plan_shows_the_runs_a_shorter_sweep_lets_start_part_way(tmp_path):
    short, longer = tmp_path / "results" / "short", tmp_path / "results" / "longer"
    _sweep(short, methods="erm", seeds="0,1", iters=4, checkpoint_every=2)
    (short / ".ckpt" / "final" / "digitnet-erm-s1.pt").unlink()
    notes = []
    assert _sweep(longer, methods="erm", seeds="0,1", iters=8, checkpoint_every=2, extend_from=short,
                  dry_run=True, notify=notes.append) == []
    text = notes[-1].splitlines()
    assert text[0] == f"{longer}: 2 run(s); 0 recorded, 0 resume from a checkpoint, 1 continue a shorter run, 1 to start"
    assert text[1].split()[:3] == ["digitnet/erm/s0", "extends", "at"] and "4/8" in text[1]
    assert text[2].split()[:3] == ["digitnet/erm/s1", "to", "start"]
    assert not longer.exists()


@pytest.mark.parametrize("case, msg", [
    ("same", "is the --out folder; name the shorter sweep's folder and a new --out"),
    ("no-config", "no config.json there; name a results folder written by neurn bench"),
    ("protocol", "ran another protocol (eval_limit: None != 2); only --iters may differ"),
    ("not-shorter", "trained 4 iterations; --iters must be more than that to extend it (got 4)"),
    ("no-state", "no saved training state of these runs in"),
])
def test_extend_from_a_folder_it_cannot_continue_is_one_clear_line(tmp_path, case, msg):
    short = tmp_path / "short"
    _sweep(short, methods="erm", iters=4, checkpoint_every=0 if case == "no-state" else 2)
    if case == "no-config":
        (short / "config.json").unlink()
    kw = dict(methods="erm", iters=4 if case == "not-shorter" else 6, extend_from=short,
              eval_limit=2 if case == "protocol" else None)
    with pytest.raises(NeurnError) as err:
        _sweep(short if case == "same" else tmp_path / "longer", **kw)
    assert msg in str(err.value) and "\n" not in str(err.value)
    if case != "same":
        assert not (tmp_path / "longer" / "config.json").exists()


def test_cli_extend_from(tmp_path, monkeypatch):
    monkeypatch.setattr("neurn.bench.train.default_provider", lambda: TOY)
    base = ["bench", "--archs", "digitnet", "--methods", "erm", "--seeds", "0", "--checkpoint-every", "2"]
    runner = CliRunner()
    assert runner.invoke(cli, base + ["--iters", "4", "--out", str(tmp_path / "a")]).exit_code == 0
    res = runner.invoke(cli, base + ["--iters", "6", "--out", str(tmp_path / "b"), "--extend-from", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "1 run(s) continue from the state of their shorter run" in res.output
    assert read_record(tmp_path / "b" / record_name("digitnet", "erm", 0))["extended_from"]["iter"] == 4
    res = runner.invoke(cli, base + ["--iters", "3", "--out", str(tmp_path / "c"), "--extend-from", str(tmp_path / "a")])
    assert res.exit_code == 2 and "--iters must be more than that" in res.output and "Traceback" not in res.output


def test_an_extended_run_drops_the_learning_curve_point_the_shorter_run_took_off_the_grid(tmp_path):
    kw = dict(methods="erm", curve_every=2, checkpoint_every=2)
    (short,) = _sweep(tmp_path / "short", iters=3, **kw)
    (scratch,) = _sweep(tmp_path / "scratch", iters=6, **kw)
    (longer,) = _sweep(tmp_path / "longer", iters=6, extend_from=tmp_path / "short", **kw)
    assert [i for i, _ in short["source_curve"]] == [2, 3] and longer["extended_from"]["iter"] == 3
    assert longer["source_curve"] == scratch["source_curve"] and longer["accuracy"] == scratch["accuracy"]

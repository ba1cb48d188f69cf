"""The sweep runner: records, resume, determinism, failures, config refusal, CLI errors (tiny in-memory domains)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from neurn.bench import methods as methods_mod
from neurn.bench.sweep import parse_seeds, plan, resolve_targets, run_sweep
from neurn.cli import cli
from neurn.errors import BenchError, NeurnError
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
    monkeypatch.setattr("neurn.bench.sweep.default_provider", lambda: TOY)
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

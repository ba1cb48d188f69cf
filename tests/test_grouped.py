"""`neurn bench --group`: several runs of one arch trained as one batched model (neurn.bench.grouped)."""
from __future__ import annotations

import contextlib

import pytest
import torch
from click.testing import CliRunner
from torch.func import vmap

from neurn.bench.grouped import RunwiseStochasticDepth, StackedNets, group_key
from neurn.bench.protocol import default_protocol
from neurn.bench.records import read_record, record_name
from neurn.bench.sweep import Job, checkpoint_path, group_jobs, job_order
from neurn.bench.train import RunFiles, run_group, run_one
from neurn.cli import cli
from neurn.errors import InvalidArgument
from test_bench import TOY, _kill_test_method, _sweep

CFG = default_protocol(6, targets=["mnist", "mnistm"], curve_every=3)


@contextlib.contextmanager
def _killed_at_third_step(monkeypatch):
    """A group's third training step raises KeyboardInterrupt (as Ctrl-C would); the block must meet it."""
    calls = {"n": 0}
    losses = StackedNets.losses

    def killed_at_third(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return losses(self, *args)

    with monkeypatch.context() as mp:
        mp.setattr(StackedNets, "losses", killed_at_third)
        with pytest.raises(KeyboardInterrupt):
            yield


def _alone(arch, runs, cfg=CFG):
    return [run_one(arch, r.method, r.seed, cfg, provider=TOY, progress=False, threads=1) for r in runs]


@pytest.mark.parametrize("methods", [("erm", "neurn", "erm"), ("randconv", "neurn+randconv")])
def test_a_group_trains_each_run_as_it_would_train_alone(methods):
    """Same initial weights, batches and augmentation draws: the first loss is the same number, and the rest
    differ only by the order of floating-point sums."""
    runs = [RunFiles(m, seed) for seed, m in enumerate(methods)]
    alone = _alone("digitnet", runs)
    together = run_group("digitnet", runs, CFG, provider=TOY, progress=False, threads=1)
    names = [f"digitnet/{m}/s{seed}" for seed, m in enumerate(methods)]
    for a, g in zip(alone, together):
        assert g["status"] == "ok" and g["group"] == names and "group" not in a
        assert (g["method"], g["seed"], g["n_params"]) == (a["method"], a["seed"], a["n_params"])
        assert g["loss_curve"][0] == a["loss_curve"][0]
        assert [i for i, _ in g["loss_curve"]] == [i for i, _ in a["loss_curve"]]
        assert max(abs(x - y) for (_, x), (_, y) in zip(g["loss_curve"], a["loss_curve"])) < 1e-3
        assert [i for i, _ in g["source_curve"]] == [3, 6]
        assert g["accuracy"].keys() == a["accuracy"].keys()


def test_a_group_mixes_erm_with_neurn_but_not_with_randconv():
    assert group_key("erm") == group_key("neurn") == group_key("neurn-k7-reflect")
    assert group_key("randconv") == group_key("neurn+randconv") != group_key("erm")
    jobs = job_order(["a", "b"], ["erm", "neurn", "randconv"], [0, 1, 2], ["erm", "neurn"])
    units = group_jobs(jobs, 6)
    assert [len(u) for u in units] == [6, 6, 3, 3]
    assert {(j.arch, j.method) for j in units[0]} == {("a", "erm"), ("a", "neurn")}
    assert [j.method for j in units[2]] == ["randconv"] * 3 and units[2][0].arch == "a"
    assert group_jobs(jobs, 1) == [(j,) for j in jobs]
    # Runs that stand at different iterations never share a unit.
    split = group_jobs(jobs[:4], 6, start_of=lambda j: 2 if j.seed == 0 else 0)
    assert sorted(len(u) for u in split) == [2, 2]


def test_a_method_with_a_loss_only_trains_alone_even_when_grouped(tmp_path):
    with _kill_test_method():
        assert group_key("kill-test") is None
        units = group_jobs([Job("digitnet", "kill-test", 0), Job("digitnet", "kill-test", 1)], 4)
        assert units == [(Job("digitnet", "kill-test", 0),), (Job("digitnet", "kill-test", 1),)]
        recs = run_group("digitnet", [RunFiles("kill-test", 0), RunFiles("erm", 1)], CFG, provider=TOY,
                         progress=False, threads=1)
    assert [r["status"] for r in recs] == ["ok", "ok"] and not any("group" in r for r in recs)


def test_a_group_checkpoint_is_each_runs_own_and_resumes_alone_or_together(tmp_path, monkeypatch):
    """Killed after its checkpoint at 2 of 4 iterations, a group resumes as a group with the records of an
    uncut group run, and one of its runs resumes alone from its own checkpoint file."""
    cfg = default_protocol(4, targets=["mnist"])

    def files(folder):
        return [RunFiles(m, s, folder / f"{m}-{s}.pt") for m, s in (("erm", 0), ("neurn", 1))]

    def group(folder):
        return run_group("digitnet", files(folder), cfg, provider=TOY, progress=False, threads=1, checkpoint_every=2)

    whole = group(tmp_path / "whole")
    with _killed_at_third_step(monkeypatch):
        group(tmp_path / "cut")
    ckpts = [f.checkpoint for f in files(tmp_path / "cut")]
    states = [torch.load(p, weights_only=True) for p in ckpts]
    assert [s["iter"] for s in states] == [2, 2] and [s["job"][1] for s in states] == ["erm", "neurn"]
    assert list(states[1]["model"]) == ["1." + k for k in states[0]["model"]]  # neurn's Sequential(NeuRN, net)
    assert set(states[0]["opt"]["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert states[0]["opt"]["state"][0]["exp_avg"].shape == states[0]["model"]["features.0.weight"].shape
    for p in ckpts:  # copied aside: resuming removes nothing, but the group resume below moves them on
        (p.parent / ("alone-" + p.name)).write_bytes(p.read_bytes())
    resumed = group(tmp_path / "cut")
    for r, w in zip(resumed, whole):
        assert r["resumed_from"] == 2
        for key in ("accuracy", "loss_curve", "final_loss"):
            assert r[key] == w[key], key
    alone = run_one("digitnet", "neurn", 1, cfg, provider=TOY, progress=False, threads=1,
                    checkpoint=tmp_path / "cut" / "alone-neurn-1.pt", checkpoint_every=2)
    assert alone["resumed_from"] == 2 and "group" not in alone
    assert alone["loss_curve"][:2] == whole[1]["loss_curve"][:2]
    assert max(abs(x - y) for (_, x), (_, y) in zip(alone["loss_curve"], whole[1]["loss_curve"])) < 1e-3


def test_sweep_with_group_writes_every_runs_own_record(tmp_path):
    planned = []
    assert _sweep(tmp_path, methods="erm,neurn,randconv", seeds="0,1", group=4, dry_run=True,
                  notify=planned.append) == []
    assert planned[-1] == "6 run(s) train in 2 unit(s) of up to 4 (one batched model per unit; 0 alone)"
    notes = []
    recs = _sweep(tmp_path, methods="erm,neurn,randconv", seeds="0,1", iters=3, group=4, notify=notes.append)
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs)
    assert any("6 run(s) train in 2 unit(s) of up to 4" in n for n in notes)
    erm = read_record(tmp_path / record_name("digitnet", "erm", 1))
    assert sorted(erm["group"]) == sorted(f"digitnet/{m}/s{s}" for m in ("erm", "neurn") for s in (0, 1))
    assert read_record(tmp_path / record_name("digitnet", "randconv", 0))["group"] == [
        "digitnet/randconv/s0", "digitnet/randconv/s1"]
    assert "group" not in erm["config"]  # execution, not protocol: results of either way share a folder
    assert _sweep(tmp_path, methods="erm,neurn,randconv", seeds="0,1", iters=3) == []


def test_group_options_are_checked_in_one_line(tmp_path):
    with pytest.raises(InvalidArgument, match="--group must be >= 1"):
        _sweep(tmp_path, group=0)
    with pytest.raises(InvalidArgument, match="--channels-last trains one run at a time"):
        _sweep(tmp_path, group=2, channels_last=True)
    res = CliRunner().invoke(cli, ["bench", "--group", "2", "--channels-last", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "neurn: error: --channels-last trains one run at a time" in res.output


def test_a_group_refuses_amp_that_autocast_would_not_give_it(monkeypatch):
    """Under vmap, autocast leaves convolutions in fp32: a grouped record would claim bf16 it did not train in."""
    import torch.nn.functional as F

    with torch.autocast("cpu", dtype=torch.bfloat16):
        x, w = torch.rand(2, 1, 3, 8, 8), torch.rand(4, 3, 3, 3)
        assert F.conv2d(x[0], w).dtype == torch.bfloat16
        assert vmap(lambda a: F.conv2d(a, w))(x).dtype == torch.float32  # if torch fixes this, GROUP_AMP can go
    import neurn.bench.train as train_mod

    monkeypatch.setattr(train_mod, "amp_dtype", lambda device, amp: torch.bfloat16 if amp else None)
    with pytest.raises(InvalidArgument, match="--amp trains one run at a time"):
        run_group("digitnet", [RunFiles("erm", 0), RunFiles("neurn", 0)], CFG, provider=TOY, progress=False, amp=True)


def test_cli_bench_group_on_the_registered_domains(tmp_path):
    out = tmp_path / "g"
    res = CliRunner().invoke(cli, ["bench", "--archs", "digitnet", "--methods", "erm,neurn", "--seeds", "0",
                                   "--iters", "2", "--eval-limit", "20", "--domains", "mnist,mnistm",
                                   "--group", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 run(s) train in 1 unit(s) of up to 2" in res.output
    assert read_record(out / record_name("digitnet", "neurn", 0))["group"] == ["digitnet/erm/s0", "digitnet/neurn/s0"]
    assert not checkpoint_path(out, Job("digitnet", "erm", 0)).exists()


def test_runwise_stochastic_depth_draws_per_run_under_vmap():
    torch.manual_seed(0)
    layer = RunwiseStochasticDepth(0.5, "row")
    x = torch.ones(8, 400, 3, 1, 1)  # 8 runs x 400 rows
    out = vmap(layer, randomness="different")(x)
    kept = out[:, :, 0, 0, 0]
    assert set(kept.unique().tolist()) <= {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
    assert 0.4 < float((kept > 0).float().mean()) < 0.6
    assert not torch.equal(kept[0], kept[1])  # each run its own draw
    assert torch.equal(out[:, :, 0], out[:, :, 2])  # one draw per row, shared by the row's values
    assert torch.equal(layer.eval()(x[0]), x[0])
    whole = RunwiseStochasticDepth(0.5, "batch").train()(torch.ones(5, 3))
    assert len(whole.unique()) == 1


def test_a_group_of_a_net_with_stochastic_depth_and_dropout_trains():
    """efficientnet_b0 (torchvision StochasticDepth, dropout): vmap refused torchvision's draw; ours trains."""
    cfg = default_protocol(2, eval_limit=8, targets=["mnist"])
    recs = run_group("efficientnet_b0", [RunFiles("erm", 0), RunFiles("neurn", 1)], cfg, provider=TOY,
                     progress=False, threads=1)
    assert [r["status"] for r in recs] == ["ok", "ok"], [r["reason"] for r in recs]


def test_a_vit_group_runs_its_attention_in_batched_matmuls():
    """timm's fused attention has no vmap batching rule on CPU (a per-run loop and a warning); the group takes
    timm's explicit path, the same softmax(q k^T / sqrt(d)) v."""
    import warnings

    cfg = default_protocol(2, eval_limit=8, targets=["mnist"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recs = run_group("vit_p4", [RunFiles("erm", 0), RunFiles("neurn", 1)], cfg, provider=TOY, progress=False,
                         threads=1)
    assert [r["status"] for r in recs] == ["ok", "ok"], [r["reason"] for r in recs]
    alone = _alone("vit_p4", [RunFiles("erm", 0)], cfg)[0]
    assert abs(recs[0]["loss_curve"][0][1] - alone["loss_curve"][0][1]) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("arch", __import__("neurn").bench.list_archs())
@pytest.mark.parametrize("methods", [("erm", "neurn"), ("randconv", "neurn+randconv")])
def test_every_registered_arch_trains_in_a_group(arch, methods):
    """What the GPU sweep groups: every arch with both method pairs, one iteration (about 3 min for all, CPU)."""
    cfg = default_protocol(1, eval_limit=8, targets=["mnist"], curve_every=1)
    recs = run_group(arch, [RunFiles(m, s) for s, m in enumerate(methods)], cfg, provider=TOY, progress=False,
                     threads=1)
    assert [r["status"] for r in recs] == ["ok", "ok"], [r["reason"] for r in recs]
    assert all(len(r["group"]) == 2 for r in recs)


def test_a_registered_method_with_views_and_objective_joins_a_group():
    import torch.nn.functional as F

    from neurn.bench import methods as methods_mod

    def smooth_objective(logits, y, cfg):
        return F.cross_entropy(logits[0], y, label_smoothing=0.1)

    def smooth(model, x, y, gen, cfg):
        return smooth_objective([model(v) for v in methods_mod.erm_views(x, gen, cfg)], y, cfg)

    methods_mod.register_method("smooth-test", wrap=methods_mod.with_neurn, views=methods_mod.erm_views,
                                objective=smooth_objective)(smooth)
    try:
        assert group_key("smooth-test") not in (None, group_key("erm"))
        recs = run_group("digitnet", [RunFiles("smooth-test", 0), RunFiles("smooth-test", 1)], CFG, provider=TOY,
                         progress=False, threads=1)
        alone = _alone("digitnet", [RunFiles("smooth-test", 1)])[0]
    finally:
        methods_mod.METHODS.remove("smooth-test")
    assert recs[1]["group"] == ["digitnet/smooth-test/s0", "digitnet/smooth-test/s1"]
    assert recs[1]["loss_curve"][0] == alone["loss_curve"][0]
    with pytest.raises(ValueError, match="give both views and objective"):
        methods_mod.register_method("half-test", views=methods_mod.erm_views)(smooth)


def test_a_group_whose_checkpoint_is_damaged_trains_each_iterations_runs_together(tmp_path, monkeypatch):
    """One run's checkpoint damaged after the sweep planned the group: that run starts over, the other resumes;
    neither is failed for the other's file."""
    cfg = default_protocol(4, targets=["mnist"])
    runs = [RunFiles(m, s, tmp_path / f"{m}-{s}.pt") for m, s in (("erm", 0), ("neurn", 1))]
    with _killed_at_third_step(monkeypatch):
        run_group("digitnet", runs, cfg, provider=TOY, progress=False, threads=1, checkpoint_every=2)
    runs[0].checkpoint.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="cannot be read"):
        erm, neurn = run_group("digitnet", runs, cfg, provider=TOY, progress=False, threads=1, checkpoint_every=2)
    assert (erm["status"], neurn["status"]) == ("ok", "ok"), (erm["reason"], neurn["reason"])
    assert "resumed_from" not in erm and neurn["resumed_from"] == 2
    assert (erm["method"], neurn["method"]) == ("erm", "neurn")


def test_a_grouped_sweep_extends_a_shorter_one_with_the_result_of_training_the_group_from_scratch(tmp_path):
    """--extend-from with --group: the group starts from the runs' final states at 2 and trains only 3-4."""
    kw = dict(methods="randconv,neurn+randconv", checkpoint_every=2, curve_every=2, group=2)
    scratch = _sweep(tmp_path / "scratch", iters=4, **kw)
    _sweep(tmp_path / "short", iters=2, **kw)
    notes = []
    longer = _sweep(tmp_path / "longer", iters=4, extend_from=tmp_path / "short", notify=notes.append, **kw)
    assert any("2 run(s) train in 1 unit(s) of up to 2" in n for n in notes)
    for new, ref in zip(longer, scratch):
        assert new["extended_from"]["iter"] == 2 and new["group"] == ref["group"]
        for key in ("accuracy", "loss_curve", "source_curve", "final_loss"):
            assert new[key] == ref[key], key


def test_plan_counts_a_unit_of_grouped_runs_once_at_its_dearest_run(tmp_path):
    from neurn.bench.estimate import RunPlan, format_plan

    jobs = [Job("digitnet", m, s) for s in (0, 1) for m in ("erm", "neurn")]
    rows = [RunPlan(j.arch, j.method, j.seed, "to start", 0, 600.0 + 60 * j.seed) for j in jobs]
    alone = format_plan(rows, tmp_path, 10, workers=1).splitlines()[-1]
    assert alone.startswith("estimated: 42 min of run time, about 42 min with 1 worker(s)")
    grouped = format_plan(rows, tmp_path, 10, workers=1, units=[tuple(jobs[:2]), tuple(jobs[2:])]).splitlines()[-1]
    assert grouped.startswith("estimated: 42 min of run time, about 21 min with 1 worker(s) in 2 unit(s), each as "
                              "long as its dearest run")

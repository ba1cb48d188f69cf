"""Training speed of the NeuRN benchmark harness vs a bare PyTorch loop, per arch, method and thread count.

Usage: python benchmarks/bench_train.py [--archs digitnet,mnasnet1_0,vit_p4] [--methods erm,neurn,randconv]
           [--threads 1,2] [--iters 40] [--warmup 5] [--repeats 2] [--no-variants] [--json [PATH]]
           [--device cpu|cuda] [--amp] [--group N]

Every (arch, method, threads) configuration runs in a fresh subprocess (so a thread pool set up for one
measurement never leaks into the next). Inside it, on the same model (same seed), the same in-memory
batches (32 images of 32x32x3) and Adam lr 1e-4:

* ``harness``: ``neurn.bench.train.run_one`` for ``--iters`` iterations with no evaluation targets; the
  time is the record's ``train_time_s`` (the training loop only: indexing, the method's loss, the
  ``loss.item()`` finiteness check, zero_grad/backward/step, loss-curve bookkeeping);
* ``bare``: the plain loop ``loss = cross_entropy(model(x[idx]), y[idx]); zero_grad; backward; step``
  (for randconv-style methods the method's own loss replaces the cross-entropy, since the extra views
  are the method, not the harness).

Both run once as warm-up (``--warmup`` iterations, not timed), then ``--repeats`` times interleaved
(harness, bare, harness, bare, ...); the best (fastest) repeat of each counts, as it is the one least
disturbed by other jobs on a shared machine. The clock is wall time, so the thread speed-up shows.
``overhead %`` = (bare it/s / harness it/s - 1) * 100. Ratios only mean something inside one run.

Unless ``--no-variants``, digitnet/erm at each thread count also gets two bare-loop variants:
``channels_last`` (model and batches in NHWC) and ``bf16`` (``torch.autocast('cpu', torch.bfloat16)``),
reported as a speed ratio to the fp32 bare loop together with the mean loss of the last iterations (a
sanity check, not an accuracy claim). Nothing here changes the package's defaults.

``--device cuda`` measures the same on one GPU (issue #12 item 1: per-iteration GPU time per arch): data
and model live on the GPU, the clock stops after ``torch.cuda.synchronize()``, and every arch's erm/neurn
configuration gets the variants, plus ``cuda_graph``: the whole fp32 step (forward, backward, Adam with
``capturable=True``) captured once as a CUDA graph and replayed, the batch copied into its static input
each step. That removes Python's per-kernel launch cost, which bounds small nets on a GPU. A variant
that fails (e.g. a net that cannot be captured) is reported with its error instead of a rate. ``--amp``
runs the harness with the sweep's autocast (bf16) and the bare loop under the same autocast.

``--group N`` also times ``neurn.bench.train.run_group``: N runs of the configuration (seeds 0..N-1) trained
as one batched model, as ``neurn bench --group N`` does, interleaved with the other repeats. ``group it/s``
counts iterations of all N runs (N x ``--iters`` per timed call), so ``group x`` (its ratio to the harness
it/s of one run) is how many times faster the group gets through the same runs. Groups train in fp32 (they
refuse AMP), so compare them without ``--amp``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

DEFAULT_ARCHS = "digitnet,mnasnet1_0,vit_p4"
DEFAULT_METHODS = "erm,neurn,randconv"
CE_METHODS = {"erm", "neurn"}  # methods whose loss is plain cross-entropy on the (wrapped) model


class BenchDomains:
    """In-memory digit-like domains (a bright bar whose row encodes the label), built in one vectorised go.

    Only the interface ``run_one`` needs: ``list_domains``, ``available_domains``, ``load_domain``.
    """

    def __init__(self, n_train: int = 2048) -> None:
        self.n_train = n_train

    def list_domains(self) -> list[str]:
        return ["mnist"]

    def available_domains(self, data_root: str | None = None) -> list[str]:
        return ["mnist"]

    def load_domain(self, name: str, split: str = "train", size: int = 32, channels: int = 3,
                    limit: int | None = None, data_root: str | None = None) -> tuple[Any, Any]:
        import torch

        n = self.n_train if limit is None else min(limit, self.n_train)
        g = torch.Generator().manual_seed(0)
        y = torch.arange(n) % 10
        x = 0.1 * torch.rand(n, channels, size, size, generator=g)
        rows = (2 + 3 * y).clamp(max=size - 2)
        mask = torch.zeros(n, 1, size, 1)
        mask[torch.arange(n), 0, rows] = 1.0
        mask[torch.arange(n), 0, rows + 1] = 1.0
        x[..., 4:size - 4] += 0.8 * mask
        return x.clamp(0, 1), y


def _batches(n: int, bs: int, seed: int, device: Any) -> Any:
    """Endless batch indices, the harness's order (a seeded permutation per epoch), on ``device`` (one copy
    per epoch: a per-step copy would make a GPU finish each step before the next is queued)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen).to(device)
        for pos in range(0, n - bs + 1, bs):
            yield order[pos:pos + bs]


def _stop_clock(t0: float, device: Any) -> float:
    """Seconds since ``t0`` once the device has finished the queued work."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def _bare_loop(model: Any, opt: Any, loss_fn: Any, x: Any, y: Any, iters: int, seed: int,
               channels_last: bool = False, bf16: bool = False) -> tuple[float, float]:
    """Run ``iters`` plain training steps on the device of ``x``; returns (seconds, mean loss of the last
    quarter of the steps)."""
    import torch

    aug_gen = torch.Generator().manual_seed(1_000_003 + seed)
    batches = _batches(len(y), 32, seed, x.device)
    tail: list[Any] = []
    model.train()
    t0 = time.perf_counter()
    for it in range(iters):
        idx = next(batches)
        xb = x[idx]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, xb, y[idx], aug_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= iters - max(1, iters // 4):
            tail.append(loss.detach())
    seconds = _stop_clock(t0, x.device)
    return seconds, float(torch.stack(tail).float().mean())


def _graph_loop(model: Any, lr: float, loss_fn: Any, x: Any, y: Any, iters: int, seed: int) -> tuple[float, float]:
    """``_bare_loop`` with the whole step captured as one CUDA graph (PyTorch's whole-network capture recipe:
    warm-up on a side stream, Adam with ``capturable=True``, static input tensors); same return value."""
    import torch

    aug_gen = torch.Generator().manual_seed(1_000_003 + seed)
    batches = _batches(len(y), 32, seed, x.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, capturable=True)
    idx = next(batches)
    static_x, static_y = x[idx].clone(), y[idx].clone()
    model.train()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up steps: allocator and lazy init must not happen during capture
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss_fn(model, static_x, static_y, aug_gen).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = loss_fn(model, static_x, static_y, aug_gen)
        static_loss.backward()
        opt.step()
    tail: list[Any] = []
    t0 = time.perf_counter()
    for it in range(iters):
        idx = next(batches)
        static_x.copy_(x[idx])
        static_y.copy_(y[idx])
        graph.replay()
        if it >= iters - max(1, iters // 4):
            tail.append(static_loss.detach().clone())
    seconds = _stop_clock(t0, x.device)
    return seconds, float(torch.stack(tail).float().mean())


def worker(arch: str, method: str, threads: int, iters: int, warmup: int, repeats: int,
           variants: bool, device: str = "cpu", amp: bool = False, group: int = 0) -> dict[str, Any]:
    """One configuration, measured in this process (``threads`` must be set before torch does any work)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    from neurn.bench.archs import create_arch
    from neurn.bench.methods import get_method
    from neurn.bench.protocol import default_protocol
    from neurn.bench.train import RunFiles, load_split, run_group, run_one

    provider = BenchDomains()
    seed = 0
    cfg = default_protocol(iters=iters, targets=[])
    warm_cfg = dict(cfg, iters=warmup)
    x, y = load_split(provider, cfg["source"], "train", cfg, limit=cfg["source_limit"])
    dev = torch.device(device)
    x, y = x.to(dev), y.to(dev)
    m = get_method(method)
    if method in CE_METHODS:
        def loss_fn(model: Any, xb: Any, yb: Any, gen: Any) -> Any:
            return F.cross_entropy(model(xb), yb)
    else:
        def loss_fn(model: Any, xb: Any, yb: Any, gen: Any) -> Any:
            return m.loss(model, xb, yb, gen, cfg)

    def fresh(channels_last: bool = False) -> Any:
        torch.manual_seed(seed)  # the harness's initial weights
        model = m.wrap(create_arch(arch, cfg["num_classes"], cfg["channels"])).to(dev)
        return model.to(memory_format=torch.channels_last) if channels_last else model

    def harness(c: dict[str, Any]) -> float:
        rec = run_one(arch, method, seed, c, provider=provider, progress=False, device=device, amp=amp)
        if rec["status"] != "ok":
            raise RuntimeError(f"{arch}/{method}: {rec['reason']}")
        return float(rec["train_time_s"])

    def grouped(c: dict[str, Any]) -> float:
        runs = [RunFiles(method, s) for s in range(group)]
        # fp32 always: a group refuses AMP (autocast does not reach vmap's convolutions; train.GROUP_AMP).
        recs = run_group(arch, runs, c, provider=provider, progress=False, device=device)
        bad = [r for r in recs if r["status"] != "ok"]
        if bad:
            raise RuntimeError(f"{arch}/{method} group of {group}: {bad[0]['reason']}")
        return float(recs[0]["train_time_s"])

    def bare(n: int, graph: bool = False, **kw: bool) -> tuple[float, float]:
        model = fresh(kw.get("channels_last", False))
        if graph:
            return _graph_loop(model, cfg["lr"], loss_fn, x, y, n, seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
        return _bare_loop(model, opt, loss_fn, x, y, n, seed, **kw)

    # Warm-up: allocator, oneDNN primitive caches, lazy imports. run_one also switches on
    # deterministic algorithms for the process, so the bare loop runs under the same setting.
    harness(warm_cfg)
    bare(warmup, bf16=amp)
    if group > 1:
        grouped(warm_cfg)
    h_times, b_times, g_times = [], [], []
    for _ in range(repeats):
        h_times.append(harness(cfg))
        b_times.append(bare(iters, bf16=amp)[0])
        if group > 1:
            g_times.append(grouped(cfg))
    out: dict[str, Any] = {
        "arch": arch, "method": method, "threads": torch.get_num_threads(), "iters": iters, "device": device,
        "amp": amp,
        "harness_its": iters / min(h_times), "bare_its": iters / min(b_times),
        "harness_times_s": [round(t, 3) for t in h_times], "bare_times_s": [round(t, 3) for t in b_times],
    }
    out["overhead_pct"] = (out["bare_its"] / out["harness_its"] - 1.0) * 100.0
    if group > 1:
        out.update(group=group, group_its=group * iters / min(g_times), group_times_s=[round(t, 3) for t in g_times])
        out["group_speedup"] = out["group_its"] / out["harness_its"]
    if variants:
        kinds: dict[str, dict[str, bool]] = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16": {"bf16": True}}
        if device == "cuda":
            kinds["cuda_graph"] = {"graph": True}
        errors: dict[str, str] = {}
        best: dict[str, tuple[float, float]] = {}

        def attempt(name: str, n: int, kw: dict[str, bool]) -> tuple[float, float] | None:
            """``bare(n, **kw)``; None once the variant fails (its error kept): a variant a net cannot run is a
            finding, not a failed benchmark, but a failing fp32 reference fails the configuration."""
            try:
                return bare(n, **kw)
            except Exception as exc:
                if not kw:
                    raise
                text = str(exc).splitlines()[0] if str(exc) else ""
                errors[name] = f"{type(exc).__name__}: {text}"[:200]
                best.pop(name, None)
                return None

        for name, kw in kinds.items():
            if kw:
                attempt(name, warmup, kw)
        for _ in range(repeats):  # interleaved, best of repeats, as above
            for name, kw in kinds.items():
                if name not in errors and (r := attempt(name, iters, kw)) is not None:
                    if name not in best or r[0] < best[name][0]:
                        best[name] = r
        out["variants"] = {name: {"its": iters / t, "tail_loss": round(loss, 4)} for name, (t, loss) in best.items()}
        out["variants"].update({name: {"error": e} for name, e in errors.items()})
    return out


def run_config(arch: str, method: str, threads: int, args: argparse.Namespace, variants: bool) -> dict[str, Any]:
    """Measure one configuration in a fresh Python process and return its result dict."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    # As gpu_sweep.sh: deterministic cuBLAS (run_one turns on deterministic algorithms) without a warning per call.
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker",
           json.dumps({"arch": arch, "method": method, "threads": threads, "iters": args.iters,
                       "warmup": args.warmup, "repeats": args.repeats, "variants": variants,
                       "device": args.device, "amp": args.amp, "group": args.group})]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}, no output"])[-1]
        raise SystemExit(f"bench_train: error: {arch}/{method}/{threads}t failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, measure every configuration, print the table (or JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", default=DEFAULT_ARCHS, help=f"comma-separated (default {DEFAULT_ARCHS})")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    ap.add_argument("--iters", type=int, default=40, help="timed iterations per repeat (default 40)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed warm-up iterations (default 5)")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repeats, best counts (default 2)")
    ap.add_argument("--no-variants", action="store_true", help="skip the channels_last / bf16 check")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="print one JSON document instead of the table; with PATH, write it there and "
                         "print the table too")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where to train (cuda: every erm/neurn arch also gets the variants, cuda_graph included)")
    ap.add_argument("--amp", action="store_true", help="CUDA only: autocast bf16 in the harness and the bare loop")
    ap.add_argument("--group", type=int, default=0, metavar="N",
                    help="also time N runs of each configuration trained as one batched model (neurn bench --group)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return 0
    archs, methods = _csv(args.archs), _csv(args.methods)
    if args.json and args.json != "-":
        from archsim._io import OutputError, check_output_file

        try:  # a bad path fails now, not after minutes of measuring
            check_output_file(args.json)
        except OutputError as e:
            ap.exit(1, f"bench_train: error: {e}\n")
    try:
        threads = [int(t) for t in _csv(args.threads)]
    except ValueError:
        ap.error(f"--threads must be comma-separated integers, got {args.threads!r}")
    if args.iters < 1 or args.warmup < 1 or args.repeats < 1 or not threads or min(threads) < 1:
        ap.error("--iters, --warmup, --repeats and every --threads value must be >= 1")
    if args.group == 1 or args.group < 0:
        ap.error(f"--group must be 2 or more (0: off); got {args.group}")
    if args.amp and args.device != "cuda":
        ap.error("--amp needs --device cuda (the harness uses autocast on CUDA only)")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA GPU is available here (torch.cuda.is_available() is False); "
                     "use --device cpu")
    from neurn.bench.archs import get_arch
    from neurn.bench.methods import get_method
    from neurn.errors import UnknownName

    try:  # unknown names fail here, before any measurement
        for a in archs:
            get_arch(a)
        for m in methods:
            get_method(m)
    except UnknownName as e:
        ap.error(str(e))

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows, variants = [], []
    for a in archs:
        for m in methods:
            for t in threads:
                # On a GPU the answer is per arch (launch-bound small nets), so every erm/neurn config gets them.
                wanted = m == "erm" and a == "digitnet" or args.device == "cuda" and m in CE_METHODS
                r = run_config(a, m, t, args, variants=not args.no_variants and wanted)
                rows.append(r)
                if "variants" in r:
                    variants.append(r)
    load_after = os.getloadavg()
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "python": platform.python_version(), "loadavg_before": load_before, "loadavg_after": load_after,
              "wall_s": round(time.perf_counter() - t_start, 1), "iters": args.iters, "warmup": args.warmup,
              "repeats": args.repeats, "rows": rows}
    if args.json == "-":
        print(json.dumps(result, indent=1))
        return 0
    if args.json:
        from archsim._io import atomic_write

        atomic_write(args.json, json.dumps(result, indent=1) + "\n")
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""
    print(f"torch {torch.__version__}, {result['machine']}{gpu}, device {args.device}"
          f"{' (amp bf16)' if args.amp else ''}; iters={args.iters} warmup={args.warmup} "
          f"repeats={args.repeats} (best of, interleaved); load average before "
          f"{' '.join(f'{v:.2f}' for v in load_before)}, after {' '.join(f'{v:.2f}' for v in load_after)}; "
          f"total {result['wall_s']} s")
    print()
    grp = f" group of {args.group} it/s | group x |" if args.group > 1 else ""
    print("| arch | method | threads | harness it/s | bare it/s | overhead % | 2t/1t (harness) |" + grp)
    print("|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if grp else ""))
    one = {(r["arch"], r["method"]): r["harness_its"] for r in rows if r["threads"] == 1}
    for r in rows:
        base = one.get((r["arch"], r["method"]))
        sp = f"{r['harness_its'] / base:.2f}" if base and r["threads"] != 1 else ""
        g = f" {r['group_its']:.1f} | {r['group_speedup']:.2f} |" if grp else ""
        print(f"| {r['arch']} | {r['method']} | {r['threads']} | {r['harness_its']:.1f} | {r['bare_its']:.1f} | "
              f"{r['overhead_pct']:+.1f} | {sp} |" + g)
    if variants:
        print()
        print("Bare loop variants (speed relative to fp32 at the same thread count; tail loss = mean loss of "
              "the last quarter of the timed iterations):")
        print()
        names = list(variants[0]["variants"])
        others = [n for n in names if n != "fp32"]
        print("| arch | method | threads | fp32 it/s | " + " | ".join(f"{n} it/s (x)" for n in others)
              + " | tail loss " + " / ".join(names) + " |")
        print("|---|---|---:|---:|" + "---:|" * len(others) + "---|")
        for r in variants:
            v, base = r["variants"], r["variants"]["fp32"]["its"]
            cells = [f"{v[n]['its']:.1f} ({v[n]['its'] / base:.2f})" if "its" in v[n] else "failed" for n in others]
            losses = " / ".join(f"{v[n]['tail_loss']:.3f}" if "its" in v[n] else "-" for n in names)
            print(f"| {r['arch']} | {r['method']} | {r['threads']} | {base:.1f} | " + " | ".join(cells)
                  + f" | {losses} |")
        for r in variants:
            for n, v in r["variants"].items():
                if "error" in v:
                    print(f"- {r['arch']}/{r['method']}/{r['threads']}t {n} failed: {v['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training speed of the NeuRN benchmark harness vs a bare PyTorch loop, per arch, method and thread count.

Usage: python benchmarks/bench_train.py [--archs digitnet,mnasnet1_0,vit_p4] [--methods erm,neurn,randconv]
           [--threads 1,2] [--iters 40] [--warmup 5] [--repeats 2] [--no-variants] [--json [PATH]]

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


def _bare_loop(model: Any, opt: Any, loss_fn: Any, x: Any, y: Any, iters: int, seed: int,
               channels_last: bool = False, bf16: bool = False) -> tuple[float, float]:
    """Run ``iters`` plain training steps; returns (seconds, mean loss of the last quarter of the steps)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator().manual_seed(1_000_003 + seed)
    n, bs = len(y), 32
    order, pos = torch.randperm(n, generator=gen), 0
    tail: list[Any] = []
    model.train()
    t0 = time.perf_counter()
    for it in range(iters):
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        xb = x[idx]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, xb, y[idx], aug_gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= iters - max(1, iters // 4):
            tail.append(loss.detach())
    seconds = time.perf_counter() - t0
    return seconds, float(torch.stack(tail).float().mean())


def worker(arch: str, method: str, threads: int, iters: int, warmup: int, repeats: int,
           variants: bool) -> dict[str, Any]:
    """One configuration, measured in this process (``threads`` must be set before torch does any work)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    from neurn.bench.archs import create_arch
    from neurn.bench.methods import get_method
    from neurn.bench.protocol import default_protocol
    from neurn.bench.train import load_split, run_one

    provider = BenchDomains()
    seed = 0
    cfg = default_protocol(iters=iters, targets=[])
    warm_cfg = dict(cfg, iters=warmup)
    x, y = load_split(provider, cfg["source"], "train", cfg, limit=cfg["source_limit"])
    m = get_method(method)
    if method in CE_METHODS:
        def loss_fn(model: Any, xb: Any, yb: Any, gen: Any) -> Any:
            return F.cross_entropy(model(xb), yb)
    else:
        def loss_fn(model: Any, xb: Any, yb: Any, gen: Any) -> Any:
            return m.loss(model, xb, yb, gen, cfg)

    def fresh(channels_last: bool = False) -> tuple[Any, Any]:
        torch.manual_seed(seed)  # the harness's initial weights
        model = m.wrap(create_arch(arch, cfg["num_classes"], cfg["channels"]))
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model, torch.optim.Adam(model.parameters(), lr=cfg["lr"])

    def harness(c: dict[str, Any]) -> float:
        rec = run_one(arch, method, seed, c, provider=provider, progress=False)
        if rec["status"] != "ok":
            raise RuntimeError(f"{arch}/{method}: {rec['reason']}")
        return float(rec["train_time_s"])

    def bare(n: int, **kw: bool) -> tuple[float, float]:
        model, opt = fresh(kw.get("channels_last", False))
        return _bare_loop(model, opt, loss_fn, x, y, n, seed, **kw)

    # Warm-up: allocator, oneDNN primitive caches, lazy imports. run_one also switches on
    # deterministic algorithms for the process, so the bare loop runs under the same setting.
    harness(warm_cfg)
    bare(warmup)
    h_times, b_times = [], []
    for _ in range(repeats):
        h_times.append(harness(cfg))
        b_times.append(bare(iters)[0])
    out: dict[str, Any] = {
        "arch": arch, "method": method, "threads": torch.get_num_threads(), "iters": iters,
        "harness_its": iters / min(h_times), "bare_its": iters / min(b_times),
        "harness_times_s": [round(t, 3) for t in h_times], "bare_times_s": [round(t, 3) for t in b_times],
    }
    out["overhead_pct"] = (out["bare_its"] / out["harness_its"] - 1.0) * 100.0
    if variants:
        bare(warmup, channels_last=True)
        bare(warmup, bf16=True)
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeats):  # interleaved, best of repeats, as above
            for name, kw in (("fp32", {}), ("channels_last", {"channels_last": True}), ("bf16", {"bf16": True})):
                t, loss = bare(iters, **kw)
                if name not in best or t < best[name][0]:
                    best[name] = (t, loss)
        out["variants"] = {name: {"its": iters / t, "tail_loss": round(loss, 4)} for name, (t, loss) in best.items()}
    return out


def run_config(arch: str, method: str, threads: int, args: argparse.Namespace, variants: bool) -> dict[str, Any]:
    """Measure one configuration in a fresh Python process and return its result dict."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker",
           json.dumps({"arch": arch, "method": method, "threads": threads, "iters": args.iters,
                       "warmup": args.warmup, "repeats": args.repeats, "variants": variants})]
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
                r = run_config(a, m, t, args, variants=not args.no_variants and a == "digitnet" and m == "erm")
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

    print(f"torch {torch.__version__}, {result['machine']}; iters={args.iters} warmup={args.warmup} "
          f"repeats={args.repeats} (best of, interleaved); load average before "
          f"{' '.join(f'{v:.2f}' for v in load_before)}, after {' '.join(f'{v:.2f}' for v in load_after)}; "
          f"total {result['wall_s']} s")
    print()
    print("| arch | method | threads | harness it/s | bare it/s | overhead % | 2t/1t (harness) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    one = {(r["arch"], r["method"]): r["harness_its"] for r in rows if r["threads"] == 1}
    for r in rows:
        base = one.get((r["arch"], r["method"]))
        sp = f"{r['harness_its'] / base:.2f}" if base and r["threads"] != 1 else ""
        print(f"| {r['arch']} | {r['method']} | {r['threads']} | {r['harness_its']:.1f} | {r['bare_its']:.1f} | "
              f"{r['overhead_pct']:+.1f} | {sp} |")
    if variants:
        print()
        print("digitnet / erm, bare loop variants (speed relative to fp32 at the same thread count; "
              "tail loss = mean loss of the last quarter of the timed iterations):")
        print()
        print("| threads | fp32 it/s | channels_last it/s (x) | bf16 autocast it/s (x) | tail loss fp32 / cl / bf16 |")
        print("|---:|---:|---:|---:|---|")
        for r in variants:
            v = r["variants"]
            f, c, b = v["fp32"], v["channels_last"], v["bf16"]
            print(f"| {r['threads']} | {f['its']:.1f} | {c['its']:.1f} ({c['its'] / f['its']:.2f}) | "
                  f"{b['its']:.1f} ({b['its'] / f['its']:.2f}) | "
                  f"{f['tail_loss']:.3f} / {c['tail_loss']:.3f} / {b['tail_loss']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

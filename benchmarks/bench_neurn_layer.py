"""Forward+backward time of the box-filter NeuRN vs the direct ``unfold`` reference.

Usage: python benchmarks/bench_neurn_layer.py [--repeats 5] [--device cpu|cuda] [--threads N] [--quick]
Prints one row per (batch shape, k) with both times and the speed-up, all measured in this run.
On CPU the clock is the process CPU time (summed over torch threads), so other jobs sharing the
machine do not inflate the numbers; on CUDA it is synchronised wall time.
"""
from __future__ import annotations

import argparse
import time

import torch

from neurn.functional import neurn, neurn_reference

SHAPES = [(64, 3, 32, 32), (16, 3, 224, 224)]
KERNELS = [3, 5, 7, 9]


def time_fwd_bwd(fn, x: torch.Tensor, k: int, repeats: int) -> float:
    """Best-of-repeats seconds of one forward+backward pass (the min is the least disturbed by other load)."""
    times = []
    for i in range(repeats + 1):
        xi = x.detach().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        clock = time.perf_counter if x.is_cuda else time.process_time
        t0 = clock()
        fn(xi, k).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()
        if i:  # the first pass warms up allocators and caches
            times.append(clock() - t0)
    return min(times)


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--quick", action="store_true", help="only the small batch, 2 repeats")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = SHAPES[:1] if args.quick else SHAPES
    repeats = 2 if args.quick else args.repeats
    torch.manual_seed(0)
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} repeats={repeats} "
          f"clock={'wall' if args.device.startswith('cuda') else 'process CPU'} (best of repeats)")
    print(f"{'batch':>18} {'k':>2} {'box ms':>9} {'unfold ms':>10} {'speed-up':>9}")
    for shape in shapes:
        x = torch.rand(shape, device=args.device)
        base = None
        for k in KERNELS:
            fast = time_fwd_bwd(neurn, x, k, repeats)
            ref = time_fwd_bwd(neurn_reference, x, k, repeats)
            base = base or fast
            print(f"{'x'.join(map(str, shape)):>18} {k:>2} {fast * 1e3:9.2f} {ref * 1e3:10.2f} {ref / fast:8.1f}x"
                  f"   (box k/k=3: {fast / base:.2f})")


if __name__ == "__main__":
    main()

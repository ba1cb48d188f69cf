"""What a sweep has left and how long it will take: ``neurn bench ... --plan``.

A multi-day CPU sweep (``cpu-long``: 24 runs of 20-100 minutes) is resumed many times; before each
resume the user wants to know which runs are recorded, which resume from a checkpoint (and from which
iteration) and what the rest will cost. The costs come from finished records of the same arch and
method on the same device: first in the sweep's own folder, else in its sibling folders (other sweeps
under ``results/``), scaled per iteration. Nothing here trains or writes anything.
"""
from __future__ import annotations

import heapq
import math
import statistics
from pathlib import Path
from typing import Any, Callable, NamedTuple

from neurn.bench.records import CONFIG_NAME, iter_records


class RunPlan(NamedTuple):
    """One run of the sweep: its state, where it starts and its estimated remaining seconds (None: unknown)."""

    arch: str
    method: str
    seed: int
    state: str  # "recorded", "resumes" (own checkpoint), "extends" (a shorter run's state) or "to start"
    start_iter: int
    seconds: float | None
    scaled_from: str = ""  # "randconv x 1.05": the estimate scales another method's time on this arch


def run_costs(folders: list[Path], device: str) -> dict[tuple[str, str], tuple[float, float, Path]]:
    """Per (arch, method): median training seconds per iteration, median eval seconds, and the folder used.

    The sweep's own folder (the first) wins: same protocol, same machine load. Otherwise the other
    folder whose runs of that arch and method were longest, as their time per iteration depends least
    on start-up and on how often a learning curve was evaluated.

    Args:
        folders: result folders, the sweep's own first (missing ones are skipped).
        device: only records trained on this device count.

    Returns:
        ``{(arch, method): (seconds_per_iteration, eval_seconds, folder)}``.
    """
    best: dict[tuple[str, str], tuple[bool, int, Path, list[tuple[float, float]]]] = {}
    for i, folder in enumerate(folders):
        if not folder.is_dir():
            continue
        found: dict[tuple[str, str], tuple[int, list[tuple[float, float]]]] = {}
        for r in iter_records(folder, notify=lambda m: None):
            ok = (r.get("status") == "ok" and r.get("device", "cpu") == device
                  and isinstance(r.get("iters"), int) and r["iters"] > 0
                  and isinstance(r.get("train_time_s"), (int, float)))
            if ok:
                iters, times = found.get((r["arch"], r["method"]), (0, []))
                times.append((r["train_time_s"] / r["iters"], float(r.get("eval_time_s") or 0.0)))
                found[(r["arch"], r["method"])] = (max(iters, int(r["iters"])), times)
        for key, (iters, times) in found.items():
            rank = (i == 0, iters, folder, times)
            if key not in best or rank[:2] > best[key][:2]:
                best[key] = rank
    return {key: (statistics.median(t for t, _ in times), statistics.median(e for _, e in times), folder)
            for key, (_, _, folder, times) in best.items()}


def scaled_cost(costs: dict[tuple[str, str], tuple[float, float, Path]], arch: str,
                method: str) -> tuple[tuple[float, float] | None, str]:
    """A cost for a method that never finished on ``arch``: another method's time on it, times the median ratio
    of the two methods' times per iteration on the archs that ran both.

    A new sweep's first RandConv variant has no run of its own to time (``neurn+randconv`` on mnasnet1_0 in
    ``cpu-mnasnet``), and leaving it out made ``--plan``'s wall time hours short. The other method is the
    one whose ratio rests on the most archs, and among those the one closest in cost (ratio nearest 1: the
    least extrapolation, e.g. randconv for neurn+randconv rather than erm).

    Args:
        costs: from :func:`run_costs`.
        arch: the architecture to estimate.
        method: the method without a finished run on it.

    Returns:
        ``((seconds_per_iteration, eval_seconds), "OTHER x RATIO")``, or ``(None, "")`` with no basis.

    >>> c = {("a", "erm"): (1.0, 5.0, None), ("a", "rc"): (3.0, 5.0, None),
    ...      ("b", "erm"): (0.5, 4.0, None), ("b", "rc"): (2.0, 4.0, None), ("b", "n+rc"): (2.2, 4.0, None),
    ...      ("c", "erm"): (1.5, 4.0, None), ("c", "rc"): (4.0, 4.0, None), ("c", "n+rc"): (4.4, 4.0, None)}
    >>> scaled_cost(c, "b", "n+rc")[1], scaled_cost(c, "a", "n+rc"), scaled_cost(c, "a", "new")
    ('', ((3.3000000000000003, 5.0), 'rc x 1.10'), (None, ''))
    """
    if (arch, method) in costs:
        return (costs[(arch, method)][0], costs[(arch, method)][1]), ""
    best: tuple[tuple[int, float], str, float] | None = None
    for (a, other) in costs:
        if a != arch or other == method:
            continue
        ratios = [costs[(b, method)][0] / per_it for (b, m), (per_it, _, _) in costs.items()
                  if m == other and b != arch and (b, method) in costs and per_it > 0 and costs[(b, method)][0] > 0]
        if ratios:
            ratio = statistics.median(ratios)
            rank = (len(ratios), -abs(math.log(ratio)))
            if best is None or rank > best[0]:
                best = (rank, other, ratio)
    if best is None:
        return None, ""
    _, other, ratio = best
    per_it, eval_s, _ = costs[(arch, other)]
    return (per_it * ratio, eval_s), f"{other} x {ratio:.2f}"


def makespan(seconds: list[float], workers: int) -> float:
    """Wall time of running jobs of these lengths in order on ``workers`` slots (each job to the first free slot).

    >>> makespan([10, 10, 10], 2), makespan([10, 10, 10], 1), makespan([], 3)
    (20.0, 30.0, 0.0)
    """
    slots = [0.0] * max(1, workers)
    for s in seconds:
        heapq.heappush(slots, heapq.heappop(slots) + s)
    return max(slots) if seconds else 0.0


def describe(pending: list[Any], finished: list[Any], out: Path, iters: int, device: str,
             resume_at: Callable[[Any], int], extend_at: Callable[[Any], int] | None = None) -> list[RunPlan]:
    """Every run of the sweep in plan order (recorded ones first), with where it starts and its estimated cost.

    Args:
        pending: the jobs still to run, in run order (see :func:`neurn.bench.sweep.plan`).
        finished: the recorded jobs.
        out: the sweep's folder; its siblings are searched for costs too.
        iters: iterations per run.
        device: the device the runs will train on.
        resume_at: job -> the iteration its checkpoint resumes from (0: it starts over).
        extend_at: job -> the iteration a shorter run's state lets it start from, when it has no
            checkpoint of its own (``--extend-from``; None or 0: none).

    Returns:
        One :class:`RunPlan` per job.
    """
    # Only sibling result folders (they hold a config.json): `--out /tmp/x` must not read all of /tmp.
    siblings = sorted(p for p in out.parent.iterdir() if p != out and (p / CONFIG_NAME).is_file()) \
        if out.parent.is_dir() else []
    costs = run_costs([out, *siblings], device)
    rows = [RunPlan(j.arch, j.method, j.seed, "recorded", iters, 0.0) for j in finished]
    for j in pending:
        start, state = resume_at(j), "resumes"
        if not start and extend_at is not None:
            start, state = extend_at(j), "extends"
        cost, scaled = scaled_cost(costs, j.arch, j.method)
        seconds = None if cost is None else cost[0] * (iters - start) + cost[1]
        rows.append(RunPlan(j.arch, j.method, j.seed, state if start else "to start", start, seconds, scaled))
    return rows


def _duration(seconds: float) -> str:
    """``1 h 05 min`` / ``42 min`` / ``under a minute``.

    >>> _duration(3900), _duration(2520), _duration(20)
    ('1 h 05 min', '42 min', 'under a minute')
    """
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def format_plan(rows: list[RunPlan], out: Path, iters: int, workers: int, cores: int | None = None,
                units: list[tuple[Any, ...]] | None = None) -> str:
    """The plan as text: a summary line, one line per run not yet recorded, the estimated total.

    Args:
        rows: from :func:`describe`.
        out: the sweep's folder (named in the summary).
        iters: iterations per run.
        workers: parallel processes the sweep will use.
        cores: CPU cores, for a CPU sweep: more workers than cores run no more runs at once (the
            recorded times already include sharing the cores). None: as many runs at once as workers.
        units: the pending runs as ``--group`` packs them (jobs with ``arch``, ``method``, ``seed``); the
            wall time then counts each unit once, at its dearest run's estimate. None: every run alone.

    Returns:
        Lines ending in a newline.
    """
    todo = [r for r in rows if r.state != "recorded"]
    n_res, n_ext = sum(r.state == "resumes" for r in todo), sum(r.state == "extends" for r in todo)
    lines = [f"{out}: {len(rows)} run(s); {len(rows) - len(todo)} recorded, {n_res} resume from a checkpoint, "
             + (f"{n_ext} continue a shorter run, " if n_ext else "") + f"{len(todo) - n_res - n_ext} to start"]
    width = max((len(f"{r.arch}/{r.method}/s{r.seed}") for r in todo), default=0)
    for r in todo:
        where = (f"resumes at {r.start_iter:,}/{iters:,}" if r.state == "resumes"
                 else f"extends at {r.start_iter:,}/{iters:,}" if r.state == "extends" else "to start")
        cost = f"~{_duration(r.seconds)}" if r.seconds is not None else "no estimate"
        if r.scaled_from:
            cost += f" (as {r.scaled_from})"
        lines.append(f"  {f'{r.arch}/{r.method}/s{r.seed}':<{width}}  {where:<22} {cost}")
    known = [r.seconds for r in todo if r.seconds is not None]
    if known:
        slots = min(workers, cores) if cores else workers
        on = f" on {cores} core(s)" if cores else ""
        jobs, grouped = known, ""
        if units and any(len(u) > 1 for u in units):
            by_run = {(r.arch, r.method, r.seed): r.seconds for r in todo if r.seconds is not None}
            jobs = [max(c) for u in units
                    if (c := [by_run[k] for k in ((j.arch, j.method, j.seed) for j in u) if k in by_run])]
            grouped = (f" in {len(units)} unit(s), each as long as its dearest run (the runs of a unit train at once; "
                       "the times come from runs trained the same way only if the records say `group`)")
        n_scaled = sum(bool(r.scaled_from) for r in todo)
        scaled = (f"; the {n_scaled} marked (as METHOD x RATIO) scale another method's time on their arch by how "
                  "the two compare on the archs that ran both" if n_scaled else "")
        lines.append(f"estimated: {_duration(sum(known))} of run time, about {_duration(makespan(jobs, slots))} "
                     f"with {workers} worker(s){on}{grouped}, from the times of finished runs of the same arch and "
                     f"method{scaled}")
    unknown = len(todo) - len(known)
    if unknown:
        lines.append(f"no estimate for {unknown} run(s): no finished run of their arch and method on this device "
                     f"in {out} or beside it, nor of their method on another arch to scale from"
                     + (" (not counted above)" if known else ""))
    if not todo:
        lines.append("nothing left to run")
    return "\n".join(lines) + "\n"

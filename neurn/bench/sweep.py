"""Sweep runner: every (arch, method, seed) once, one atomic JSON record each, resumable, pluggable executors.

Executors are plain functions in :data:`EXECUTORS` that take the pending jobs and yield finished
records as they complete; the driver (this process) writes each record as soon as it arrives, so a
killed sweep loses at most the runs in flight and a rerun skips everything already on disk.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from tqdm.auto import tqdm

from neurn.bench.archs import list_archs
from neurn.bench.methods import list_methods
from neurn.bench.records import check_or_write_config, read_record, record_name, write_json_atomic
from neurn.bench.protocol import EXECUTORS as EXECUTOR_NAMES, default_protocol
from neurn.bench.train import default_provider, run_one
from neurn.errors import BenchError, InvalidArgument, UnknownName



class Job(NamedTuple):
    """One run of the sweep."""

    arch: str
    method: str
    seed: int


def parse_names(text: str | Iterable[str], valid: list[str], kind: str) -> list[str]:
    """Split a comma list and check every name; an unknown name raises ``UnknownName`` with did-you-mean."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [n for n in names if n]
    if not names:
        raise InvalidArgument(f"no {kind} given; valid: {', '.join(valid)}")
    bad = [n for n in names if n not in valid]
    if bad:
        raise UnknownName(kind, bad[0], valid)
    return list(dict.fromkeys(names))  # drop repeats, keep order


def parse_seeds(text: str | Iterable[int]) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> list of non-negative ints."""
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise InvalidArgument(f"seeds must be non-negative integers like 0,1,2 or 0-4; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise InvalidArgument(f"seeds must be non-negative integers like 0,1,2 or 0-4; got {text!r}")
    return list(dict.fromkeys(seeds))


def resolve_targets(requested: str | Iterable[str] | None, source: str = "mnist", provider: Any = None,
                    data_root: str | None = None, notify: Callable[[str], None] = print) -> list[str]:
    """Target domains: the source's test split first, then every other available registered domain.

    Unknown names raise ``BenchError``; registered but unavailable ones (user-supplied files that are
    absent) are skipped with a notice, never silently.
    """
    provider = provider or default_provider()
    registered = list(provider.list_domains())
    available = set(provider.available_domains(data_root))
    if requested is None or requested == "" or requested == "all":
        wanted = [source] + [d for d in registered if d != source]
    else:
        wanted = parse_names(requested, registered, "domain")
    targets = []
    for d in wanted:
        if d in available:
            targets.append(d)
        else:
            notify(f"notice: skipping domain {d!r}: not available (user-supplied data not found; "
                   f"see `neurn domains`)")
    if not targets:
        raise BenchError("no target domain is available")
    return targets


def plan(archs: list[str], methods: list[str], seeds: list[int], out: str | Path,
         retry_failed: bool = False) -> tuple[list[Job], list[Job]]:
    """(pending, finished) jobs; seed-major order so a partial sweep already has whole seeds."""
    out = Path(out)
    pending, finished = [], []
    for seed in seeds:
        for arch in archs:
            for method in methods:
                job = Job(arch, method, seed)
                p = out / record_name(*job)
                if p.exists() and not (retry_failed and read_record(p).get("status") != "ok"):
                    finished.append(job)
                else:
                    pending.append(job)
    return pending, finished


def _job_runner(job: Job, cfg: dict[str, Any], threads: int, provider: Any, data_root: str | None,
                progress: bool) -> dict[str, Any]:
    """Top-level (picklable) job entry point used by every executor."""
    return run_one(job.arch, job.method, job.seed, cfg, provider=provider, threads=threads,
                   data_root=data_root, progress=progress)


def local_executor(jobs: list[Job], cfg: dict[str, Any], *, workers: int = 1, threads: int = 1,
                   provider: Any = None, data_root: str | None = None, progress: bool = True,
                   **_: Any) -> Iterator[dict[str, Any]]:
    """Run jobs in this process (``workers=1``) or in ``workers`` spawned processes."""
    if workers <= 1:
        for job in jobs:
            yield _job_runner(job, cfg, threads, provider, data_root, progress)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: forking a process that already started torch's thread pools can deadlock.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futs = [pool.submit(_job_runner, job, cfg, threads, provider, data_root, False) for job in jobs]
        try:
            for fut in as_completed(futs):
                yield fut.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise


def dask_executor(jobs: list[Job], cfg: dict[str, Any], *, scheduler: Any = None, threads: int = 1,
                  provider: Any = None, data_root: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
    """Run jobs on a ``dask.distributed`` cluster (``scheduler``: address or Client); records come back here."""
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise BenchError("the dask executor needs dask.distributed: pip install 'archsim-neurn[dask]'") from None
    if scheduler is None:
        raise InvalidArgument("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futs = [client.submit(_job_runner, job, cfg, threads, provider, data_root, False, pure=False,
                              key=f"neurn-{job.arch}-{job.method}-s{job.seed}-{os.getpid()}") for job in jobs]
        for fut in as_completed(futs):
            yield fut.result()
    finally:
        if own:
            client.close()


EXECUTORS: dict[str, Callable[..., Iterator[dict[str, Any]]]] = {"local": local_executor, "dask": dask_executor}
assert tuple(EXECUTORS) == EXECUTOR_NAMES


def run_sweep(archs: str | list[str], methods: str | list[str], seeds: str | list[int], out: str | Path,
              iters: int = 10_000, eval_limit: int | None = None, domains: str | list[str] | None = None,
              executor: str = "local", workers: int = 1, threads: int | None = None, scheduler: Any = None,
              provider: Any = None, data_root: str | None = None, retry_failed: bool = False,
              progress: bool = True, notify: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run every pending (arch, method, seed) of the sweep into ``out``; returns the new records."""
    archs = parse_names(archs, list_archs(), "architecture")
    methods = parse_names(methods, list_methods(), "method")
    seeds = parse_seeds(seeds)
    if executor not in EXECUTORS:
        raise UnknownName("executor", executor, list(EXECUTORS))
    if executor == "dask" and scheduler is None:
        raise InvalidArgument("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    if iters < 1:
        raise InvalidArgument(f"--iters must be >= 1; got {iters}")
    if eval_limit is not None and eval_limit < 1:
        raise InvalidArgument(f"--eval-limit must be >= 1; got {eval_limit}")
    provider = provider or default_provider()
    targets = resolve_targets(domains, "mnist", provider, data_root, notify)
    cfg = default_protocol(iters, eval_limit, targets)
    out = Path(out)
    check_or_write_config(out, cfg)
    pending, finished = plan(archs, methods, seeds, out, retry_failed)
    if finished:
        notify(f"{len(finished)} run(s) already recorded in {out}; skipping them")
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, workers))
    new = []
    bar = tqdm(total=len(pending), desc="sweep", unit="run", disable=not progress or not pending,
               dynamic_ncols=True)
    for rec in EXECUTORS[executor](pending, cfg, workers=workers, threads=threads, scheduler=scheduler,
                                   provider=provider, data_root=data_root, progress=progress):
        write_json_atomic(out / record_name(rec["arch"], rec["method"], rec["seed"]), rec)
        new.append(rec)
        bar.update(1)
        if rec["status"] != "ok":
            tqdm.write(f"FAILED {rec['arch']}/{rec['method']}/s{rec['seed']}: {rec['reason']}")
        else:
            bar.set_postfix_str(f"{rec['arch']}/{rec['method']}/s{rec['seed']} "
                                f"src={rec['accuracy'].get(cfg['source'], float('nan')):.3f}")
    bar.close()
    return new

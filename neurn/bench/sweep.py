"""Sweep runner: every (arch, method, seed) once, one atomic JSON record each, resumable, pluggable executors.

Executors are plain functions in :data:`EXECUTORS` that take the pending jobs and yield finished
records as they complete; the driver (this process) writes each record as soon as it arrives, so a
killed sweep loses at most the runs in flight and a rerun skips everything already on disk.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import torch
from tqdm.auto import tqdm

from archsim._io import OutputError, check_output_dir
from archsim.errors import shorten
from neurn.bench.archs import arch_digest, list_archs
from neurn.bench.estimate import describe, format_plan
from neurn.bench.methods import list_methods
from neurn.bench.records import (CONFIG_NAME, RecordWarning, check_or_write_config, diff_config, load_record,
                                 read_config, read_record, record_name, write_json_atomic)
from neurn.bench.protocol import EXECUTORS as EXECUTOR_NAMES, default_protocol
from neurn.bench.train import (RunFiles, check_group, checkpoint_name, checkpoint_start, extension_start, keep_split, load_split,
                               portable_provider, resolve_device, resolve_provider, run_group)
from neurn.errors import BenchError, ConfigMismatch, InvalidArgument, NeurnError, UnknownName


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


MAX_SEEDS = 1000  # a sweep is arch x method x seed runs; more seeds than this is a typo, not a plan
SEED_LIMIT = 2**31  # torch.manual_seed and numpy accept larger, but records and tables assume int32 seeds


def parse_seeds(text: str | Iterable[int]) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> list of distinct ints in [0, 2**31), at most ``MAX_SEEDS`` of them.

    Ranges are sized before they are expanded, so ``"0-999999999"`` is refused at once instead of
    allocating a billion-element list.
    """
    usage = "seeds must be non-negative integers like 0,1,2 or 0-4"
    if isinstance(text, str):
        ranges: list[tuple[int, int]] = []
        try:
            for part in filter(None, (p.strip() for p in text.split(","))):
                lo, dash, hi = part.partition("-")
                ranges.append((int(lo), int(hi)) if dash else (int(lo), int(lo)))
        except ValueError:
            raise InvalidArgument(f"{usage}; got {shorten(text)!r}") from None
    else:
        try:
            ranges = [(int(s), int(s)) for s in text]
        except (TypeError, ValueError):
            raise InvalidArgument(f"{usage}; got {shorten(repr(text))}") from None
    if not ranges:
        raise InvalidArgument(f"{usage}; got {shorten(str(text))!r}")
    for lo, hi in ranges:
        if lo < 0 or hi >= SEED_LIMIT:
            raise InvalidArgument(f"seeds must be in 0..{SEED_LIMIT - 1}; got {shorten(str(text))!r}")
        if hi < lo:
            raise InvalidArgument(f"seed range {lo}-{hi} is empty (write the smaller seed first)")
    if sum(hi - lo + 1 for lo, hi in ranges) > MAX_SEEDS:
        raise InvalidArgument(f"at most {MAX_SEEDS} seeds per sweep; got {shorten(str(text))!r}")
    seeds = [s for lo, hi in ranges for s in range(lo, hi + 1)]
    return list(dict.fromkeys(seeds))


def resolve_targets(requested: str | Iterable[str] | None, source: str = "mnist", provider: Any = None,
                    data_root: str | None = None, notify: Callable[[str], None] = print) -> list[str]:
    """Target domains: the source's test split first, then every other available registered domain.

    Unknown names raise ``BenchError``; registered but unavailable ones (user-supplied files that are
    absent) are skipped with a notice, never silently.
    """
    provider = resolve_provider(provider)
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


def job_order(archs: list[str], methods: list[str], seeds: list[int],
              pairs_first: list[str] | None = None) -> list[Job]:
    """Every (arch, method, seed) in run order: seed-major, so a partial sweep already has whole seeds.

    With ``pairs_first`` (e.g. ``["erm", "neurn"]``) those methods' runs come first (for each seed, for
    each arch, in that order), so a sweep cut short by a time-out keeps whole baseline/method pairs. The
    other methods' runs (RandConv, about three times dearer) then go arch-major: every seed of one arch
    before the next arch, because a comparison needs all its seeds for a p-value; seed-major, the
    ViT's third RandConv seed of ``cpu-long`` would wait behind two seeds of MNASNet (about 3 h on 2 cores).

    >>> [f"{j.arch}/{j.method}/s{j.seed}" for j in job_order(["a", "b"], ["erm", "rc"], [0, 1], ["erm"])]
    ['a/erm/s0', 'b/erm/s0', 'a/erm/s1', 'b/erm/s1', 'a/rc/s0', 'a/rc/s1', 'b/rc/s0', 'b/rc/s1']
    """
    first = [m for m in (pairs_first or []) if m in methods]
    if not first:
        return [Job(arch, method, seed) for seed in seeds for arch in archs for method in methods]
    rest = [m for m in methods if m not in first]
    return ([Job(arch, method, seed) for seed in seeds for arch in archs for method in first]
            + [Job(arch, method, seed) for arch in archs for seed in seeds for method in rest])


def group_jobs(jobs: list[Job], size: int, start_of: Callable[[Job], int] = lambda job: 0) -> list[tuple[Job, ...]]:
    """The jobs in units of at most ``size`` that train together as one batched model (``--group``), in job order.

    A unit holds runs of one arch whose methods share a group key (:func:`neurn.bench.grouped.group_key`: erm
    with neurn, randconv with neurn+randconv) and that start at the same iteration (``start_of``: where each
    resumes). A unit stands where its first job stood; a method that cannot join a group gets a unit of its own.

    >>> units = group_jobs(job_order(["a"], ["erm", "neurn", "randconv"], [0, 1], ["erm", "neurn"]), 4)
    >>> [[f"{j.method}/s{j.seed}" for j in unit] for unit in units]
    [['erm/s0', 'neurn/s0', 'erm/s1', 'neurn/s1'], ['randconv/s0', 'randconv/s1']]
    """
    from neurn.bench.grouped import group_key

    if size <= 1:
        return [(job,) for job in jobs]
    units: list[list[Job]] = []
    open_units: dict[tuple, list[Job]] = {}
    for job in jobs:
        key = group_key(job.method)
        if key is None:
            units.append([job])
            continue
        key = (job.arch, key, start_of(job))
        unit = open_units.get(key)
        if unit is None or len(unit) >= size:
            unit = open_units[key] = []
            units.append(unit)
        unit.append(job)
    return [tuple(unit) for unit in units]


def plan(archs: list[str], methods: list[str], seeds: list[int], out: str | Path,
         retry_failed: bool = False, notify: Callable[[str], None] | None = None,
         pairs_first: list[str] | None = None) -> tuple[list[Job], list[Job]]:
    """(pending, finished) jobs in the order of :func:`job_order`.

    Only a valid record (see :func:`neurn.bench.records.load_record`) counts as finished: a damaged
    one is named through ``notify`` (default: a ``RecordWarning``) and its run is pending again.
    """
    out = Path(out)
    pending, finished = [], []
    for job in job_order(archs, methods, seeds, pairs_first):
        p = out / record_name(*job)
        if not p.exists():
            pending.append(job)
            continue
        try:
            rec = load_record(p, expect=job)
        except BenchError as exc:
            (notify or _warn_record)(f"warning: {exc}; running it again")
            pending.append(job)
            continue
        if retry_failed and rec["status"] != "ok":
            pending.append(job)
        else:
            finished.append(job)
    return pending, finished


def check_arch_definitions(out: Path, finished: list[Job], cfg: dict[str, Any]) -> None:
    """Refuse a folder whose finished runs were trained on another definition of their arch than this checkout's.

    Such records would count as done and be averaged with new runs of a different net (see
    :func:`neurn.bench.archs.arch_digest`). Records written before records carried the digest are
    taken as they are. Raises ``ConfigMismatch`` naming each arch, both digests and the fix.
    """
    stale: dict[str, tuple[str, list[str]]] = {}
    for job in finished:
        name = record_name(*job)
        old = read_record(out / name).get("arch_digest")
        if old is not None and old != arch_digest(job.arch, cfg["num_classes"], cfg["channels"]):
            stale.setdefault(job.arch, (old, []))[1].append(name)
    if stale:
        parts = [f"{len(names)} run(s) of {arch} (e.g. {names[0]}) were trained on another definition of it "
                 f"(digest {old}; this checkout builds {arch_digest(arch, cfg['num_classes'], cfg['channels'])})"
                 for arch, (old, names) in stale.items()]
        raise ConfigMismatch(f"{out}: {'; '.join(parts)}; use another --out folder, or delete those records "
                             "to run them again")


LOCK_NAME = ".sweep.lock"  # inside the results folder; ignored by the record listing (no .json)


@contextlib.contextmanager
def folder_lock(out: Path, dry_run: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on the results folder while a sweep plans and writes in it.

    A second sweep started on the same ``--out`` (a second terminal, a forgotten background job) would
    run the same pending jobs again, hours of duplicated work: it is refused in one line naming the
    holder's process id. The lock is ``flock`` on ``<out>/.sweep.lock``, so the kernel releases it when
    the holder dies: a killed sweep leaves no stale lock. A dry run (``--plan``) takes no lock and writes
    nothing. Where ``fcntl`` does not exist (Windows), sweeps are not locked.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - POSIX only
        fcntl = None
    if dry_run or fcntl is None:
        yield
        return
    f = open(out / LOCK_NAME, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        raise BenchError(f"another sweep{f' (process {pid})' if pid else ''} is running in {out}; wait for it, "
                         "stop it, or use another --out folder") from None
    try:
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()


def _warn_record(message: str) -> None:
    warnings.warn(message.removeprefix("warning: "), RecordWarning, stacklevel=3)


CHECKPOINT_DIR = ".ckpt"  # inside the results folder; ignored by the record listing (dot name, no .json)


def checkpoint_path(out: str | Path, job: Job) -> Path:
    """Where the run ``job`` of the sweep in ``out`` keeps its checkpoint: ``<out>/.ckpt/<arch>-<method>-s<seed>.pt``."""
    return Path(out) / CHECKPOINT_DIR / checkpoint_name(*job)


FINAL_DIR = "final"  # inside CHECKPOINT_DIR: the state after each finished run's last iteration


def final_checkpoint_path(out: str | Path, job: Job) -> Path:
    """Where a finished run of the sweep in ``out`` keeps its last state: ``<out>/.ckpt/final/<arch>-<method>-s<seed>.pt``.

    A longer sweep of the same protocol starts the run from there (``--extend-from``) instead of from scratch.
    """
    return Path(out) / CHECKPOINT_DIR / FINAL_DIR / checkpoint_name(*job)


def extension_sources(folder: str | Path, job: Job) -> list[Path]:
    """The states of ``job`` a longer sweep can start from in ``folder``: its final state and its checkpoint."""
    return [final_checkpoint_path(folder, job), checkpoint_path(folder, job)]


def check_extension(folder: str | Path, out: Path, cfg: dict[str, Any]) -> Path:
    """``folder`` as the shorter sweep that ``--extend-from`` continues: another folder, same protocol, fewer
    iterations. Raises ``InvalidArgument`` / ``ConfigMismatch`` naming the fix; returns the folder.

    Args:
        folder: the results folder of the shorter sweep.
        out: this sweep's folder.
        cfg: this sweep's protocol.

    Returns:
        ``folder`` as a path.
    """
    folder = Path(folder)
    if folder.resolve() == out.resolve():
        raise InvalidArgument(f"--extend-from {folder} is the --out folder; name the shorter sweep's folder and a "
                              f"new --out for the longer one")
    old = read_config(folder)
    if old is None:
        raise InvalidArgument(f"--extend-from {folder}: no {CONFIG_NAME} there; name a results folder written "
                              "by neurn bench")
    diffs = diff_config({**old, "iters": cfg["iters"]}, cfg)
    if diffs:
        raise ConfigMismatch(f"--extend-from {folder} ran another protocol ({'; '.join(diffs)}); only --iters "
                             "may differ: give the options it ran with")
    if not isinstance(old.get("iters"), int) or old["iters"] >= cfg["iters"]:
        raise InvalidArgument(f"--extend-from {folder} trained {old.get('iters')} iterations; --iters must be "
                              f"more than that to extend it (got {cfg['iters']})")
    return folder


def _remove_checkpoint(out: Path, job: Job) -> None:
    try:
        checkpoint_path(out, job).unlink(missing_ok=True)
    except OSError:  # a leftover checkpoint is harmless: a finished run is never resumed
        pass


Unit = tuple[Job, ...]  # runs of one arch trained together (see group_jobs); most often a single run


def _job_runner(unit: Unit, cfg: dict[str, Any], threads: int, provider: Any, data_root: str | None,
                progress: bool, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Top-level (picklable) entry point used by every executor: one unit's records (``provider`` may be a
    module name).

    ``options``: ``device``, ``amp``, ``channels_last``, ``checkpoint_every`` (not protocol), ``checkpoints_of``
    (the sweep folder whose ``.ckpt`` holds the run's checkpoints; None: no checkpoints) and ``extend_from``.
    """
    options = dict(options or {})
    out = options.pop("checkpoints_of", None)
    extend_dir = options.pop("extend_from", None)
    runs = [RunFiles(job.method, job.seed, checkpoint_path(out, job) if out else None,
                     final_checkpoint_path(out, job) if out else None,
                     tuple(extension_sources(extend_dir, job)) if extend_dir else ()) for job in unit]
    return run_group(unit[0].arch, runs, cfg, provider=provider, threads=threads, data_root=data_root,
                     progress=progress, **options)


def local_executor(jobs: list[Unit], cfg: dict[str, Any], *, workers: int = 1, threads: int = 1,
                   provider: Any = None, data_root: str | None = None, progress: bool = True,
                   options: dict[str, Any] | None = None, **_: Any) -> Iterator[dict[str, Any]]:
    """Run units in this process (``workers=1``) or in ``workers`` spawned processes, in the order given."""
    if workers <= 1:
        for unit in jobs:
            yield from _job_runner(unit, cfg, threads, provider, data_root, progress, options)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: forking a process that already started torch's thread pools can deadlock.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        # Submitted in plan order, so the pool starts them in that order (erm/neurn pairs first, ...).
        futs = [pool.submit(_job_runner, unit, cfg, threads, provider, data_root, False, options) for unit in jobs]
        try:
            for fut in as_completed(futs):
                yield from fut.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise


def dask_executor(jobs: list[Unit], cfg: dict[str, Any], *, scheduler: Any = None, threads: int = 1,
                  provider: Any = None, data_root: str | None = None, options: dict[str, Any] | None = None,
                  **_: Any) -> Iterator[dict[str, Any]]:
    """Run jobs on a ``dask.distributed`` cluster (``scheduler``: address or Client); records come back here.

    Checkpoints go to the results folder's path as the workers see it (a shared file system resumes them).
    """
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise BenchError("the dask executor needs dask.distributed: pip install 'archsim-neurn[dask]'") from None
    if scheduler is None:
        raise InvalidArgument("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        futs = [client.submit(_job_runner, unit, cfg, threads, provider, data_root, False, options, pure=False,
                              key=f"neurn-{unit[0].arch}-{unit[0].method}-s{unit[0].seed}+{len(unit) - 1}-{os.getpid()}")
                for unit in jobs]
        for fut in as_completed(futs):
            yield from fut.result()
    finally:
        if own:
            client.close()


EXECUTORS: dict[str, Callable[..., Iterator[dict[str, Any]]]] = {"local": local_executor, "dask": dask_executor}
assert tuple(EXECUTORS) == EXECUTOR_NAMES


def check_domains(provider: Any, cfg: dict[str, Any], data_root: str | None = None, keep: bool = True) -> None:
    """Load the source's training split and every target's test split once, before any training.

    A damaged or unreadable file then fails the sweep in seconds with one line naming the domain,
    instead of failing every run after hours of training (runs record their own failures).

    Args:
        provider: the domain provider (``neurn.domains`` interface).
        cfg: the protocol (source, source_limit, targets, eval_limit, size, channels, num_classes).
        data_root: folder of user-supplied datasets.
        keep: keep the loaded tensors in this process's cache (runs in this process reuse them).
    """
    wanted = [(cfg["source"], "train", cfg["source_limit"])]
    wanted += [(t, "test", cfg["eval_limit"]) for t in cfg["targets"]]
    for name, split, limit in wanted:
        try:
            x, y = load_split(provider, name, split, cfg, limit=limit, data_root=data_root, cache=False)
        except NeurnError as exc:
            raise BenchError(f"domain {name!r} ({split}) cannot be used: {exc}") from None
        except Exception as exc:  # a damaged file can fail in numpy, scipy, zipfile, ...: name the domain
            raise BenchError(f"domain {name!r} ({split}) cannot be loaded: {type(exc).__name__}: "
                             f"{shorten(str(exc), 200)}") from None
        problem = None
        if len(y) == 0:
            problem = "it has no images"
        elif len(x) != len(y):
            problem = f"{len(x)} images but {len(y)} labels"
        elif not bool(torch.isfinite(x).all()):
            problem = "it has NaN or infinite pixels"
        elif int(y.min()) < 0 or int(y.max()) >= cfg["num_classes"]:
            problem = f"labels {int(y.min())}..{int(y.max())} are outside 0..{cfg['num_classes'] - 1}"
        if problem:
            raise BenchError(f"domain {name!r} ({split}) cannot be used: {problem}; see `neurn domains`")
        if keep:  # only data that passed the checks is reused by the runs
            keep_split(provider, name, split, cfg, limit, data_root, (x, y))


# Measured, not guessed (issue #9): the 2-core build machine while other jobs ran (load average 4-6),
# digitnet, batch 32, 32x32x3, one worker, Adam steps after 20 warm-up ones, ms per iteration:
#     erm   (200 iterations):  1 thread 100, 102, 413    2 threads 373, 631, 886
#     neurn (300 iterations):  1 thread 172, 261         2 threads 808, 885
# The command, per (threads T, method M, iterations N), each in a fresh process:
#     torch.set_num_threads(T); m = get_method(M); model = m.wrap(create_arch("digitnet", 10, 3))
#     opt = Adam(model.parameters(), 1e-4); x, y = torch.rand(512, 3, 32, 32), torch.randint(0, 10, (512,))
#     then time N steps of: idx = torch.randint(0, 512, (32,)); loss = m.loss(model, x[idx], y[idx], gen,
#     default_protocol(N)); opt.zero_grad(); loss.backward(); opt.step()
# Intra-op threads pay off only on idle cores; on a busy or shared machine they wait for each other and
# every iteration gets 2-6x slower, and with --workers N each process would start its own. So: one
# thread per worker process; --threads overrides it on a dedicated machine.
DEFAULT_THREADS = 1


def _group_line(units: list[Unit]) -> str:
    """How ``--group`` packed the pending runs: one line for the sweep's notices."""
    sizes = [len(u) for u in units]
    return (f"{sum(sizes)} run(s) train in {len(units)} unit(s) of up to {max(sizes)} (one batched model per unit; "
            f"{sum(s == 1 for s in sizes)} alone)")


def default_threads(workers: int = 1) -> int:
    """Torch threads per run when ``--threads`` is not given: ``DEFAULT_THREADS`` (1) for any ``workers``."""
    return DEFAULT_THREADS


def run_sweep(archs: str | list[str], methods: str | list[str], seeds: str | list[int], out: str | Path,
              iters: int = 10_000, eval_limit: int | None = None, domains: str | list[str] | None = None,
              executor: str = "local", workers: int = 1, threads: int | None = None, scheduler: Any = None,
              provider: Any = None, data_root: str | None = None, retry_failed: bool = False,
              progress: bool = True, notify: Callable[[str], None] = print, device: str = "cpu",
              amp: bool = False, channels_last: bool = False, checkpoint_every: int = 500,
              curve_every: int = 0, curve_eval_limit: int = 1000,
              pairs_first: list[str] | None = None, dry_run: bool = False,
              extend_from: str | Path | None = None, group: int = 1) -> list[dict[str, Any]]:
    """Run every pending (arch, method, seed) of the sweep into ``out``; returns the new records.

    Order of checks: arguments (the device included), the output folder, the target domains (each
    loaded once), the folder's config and records; only then does training start.

    Protocol arguments (stored in ``config.json`` and every record's ``config``): ``iters``,
    ``eval_limit``, ``domains``, ``curve_every`` (source test accuracy every M iterations into the record's
    ``source_curve``; 0: off) and ``curve_eval_limit`` (its images). Execution arguments (recorded per run,
    not in the config): ``device`` (cpu, cuda, auto), ``amp`` (autocast, CUDA only), ``channels_last``,
    ``checkpoint_every`` (save the run's state to ``<out>/.ckpt/`` every N iterations and resume from it;
    0: off; removed once the record is written), ``workers``, ``threads``, ``executor``. ``pairs_first``:
    methods whose runs go first (see :func:`job_order`). ``dry_run``: make the same checks, then send the
    plan through ``notify`` (recorded runs, checkpoints to resume, estimated times; see
    :mod:`neurn.bench.estimate`) and return ``[]`` without training or writing anything.

    With checkpoints on, each finished run keeps its last state in ``<out>/.ckpt/final/``. ``extend_from``
    names such a sweep of the same protocol with fewer iterations: a run without a checkpoint of its own
    then starts from the state its shorter run reached (its final state, or its checkpoint if it never
    finished) and trains only the remaining iterations. Constant-rate Adam and seeded batch order make
    that the run a longer sweep would have trained from scratch; its record says ``extended_from``.

    ``group`` (execution): train up to that many runs of one arch as one batched model (see
    :mod:`neurn.bench.grouped` and :func:`group_jobs`); 1 trains every run alone. Worth it on a GPU, where a
    run of these small nets waits on kernel launches; each record names the runs it trained with.
    """
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
    if workers < 1:
        raise InvalidArgument(f"--workers must be >= 1; got {workers}")
    if threads is not None and threads < 1:
        raise InvalidArgument(f"--threads must be >= 1; got {threads}")
    if group < 1:
        raise InvalidArgument(f"--group must be >= 1 (1: every run alone); got {group}")
    check_group(group, channels_last, False)  # before the device check, as the other option checks
    if checkpoint_every < 0:
        raise InvalidArgument(f"--checkpoint-every must be >= 0 (0: no checkpoints); got {checkpoint_every}")
    if curve_every < 0 or curve_eval_limit < 1:
        raise InvalidArgument(f"--curve-every must be >= 0 and the curve's eval limit >= 1; "
                              f"got {curve_every} and {curve_eval_limit}")
    device = resolve_device(device)  # --device cuda on a machine without CUDA: one line, before any output
    if amp and device != "cuda":
        raise InvalidArgument("--amp needs --device cuda (autocast is used on CUDA only)")
    check_group(group, False, amp)  # channels-last was checked above
    # An unwritable --out fails now, not when the first run finishes; a dry run creates nothing.
    out = Path(out) if dry_run else check_output_dir(out)
    if dry_run and out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file, not a folder: choose another output folder")
    with folder_lock(out, dry_run):
        local_provider = resolve_provider(provider)
        targets = resolve_targets(domains, "mnist", local_provider, data_root, notify)
        cfg = default_protocol(iters, eval_limit, targets, curve_every=curve_every, curve_eval_limit=curve_eval_limit)
        source = check_extension(extend_from, out, cfg) if extend_from is not None else None
        if source is not None and not any(p.exists() for a in archs for m in methods for seed in seeds
                                          for p in extension_sources(source, Job(a, m, seed))):
            raise InvalidArgument(f"--extend-from {source}: no saved training state of these runs in "
                                  f"{source / CHECKPOINT_DIR} (a finished run keeps its last state there when its sweep "
                                  "checkpoints; sweeps from before --extend-from kept none); drop --extend-from to "
                                  "train them from scratch")
        check_or_write_config(out, cfg, write=not dry_run)
        pending, finished = plan(archs, methods, seeds, out, retry_failed, notify=notify, pairs_first=pairs_first)
        check_arch_definitions(out, finished, cfg)

        # Cached: the plan, the grouping and the notices all ask, and each answer reads a checkpoint.
        @functools.cache
        def resume_at(job: Job) -> int:
            return checkpoint_start(checkpoint_path(out, job), job, cfg) if checkpoint_every else 0

        @functools.cache
        def extend_at(job: Job) -> int:
            return extension_start(extension_sources(source, job), job, cfg) if source is not None else 0

        def start_of(job: Job) -> int:
            return resume_at(job) or extend_at(job)

        units = group_jobs(pending, group, start_of)
        if dry_run:
            rows = describe(pending, finished, out, iters, device, resume_at, extend_at)
            cores = (os.cpu_count() or 1) if device == "cpu" else None
            notify(format_plan(rows, out, iters, workers, cores, units if group > 1 else None).rstrip("\n"))
            if group > 1 and pending:
                notify(_group_line(units))
            return []
        if finished:
            notify(f"{len(finished)} run(s) already recorded in {out}; skipping them")
            for job in finished:  # killed between writing the record and removing the checkpoint
                _remove_checkpoint(out, job)
        if pending:
            # Runs in this process reuse the loaded splits; other processes load their own.
            check_domains(local_provider, cfg, data_root, keep=executor == "local" and workers <= 1)
            resumable = [j for j in pending if checkpoint_path(out, j).exists()] if checkpoint_every else []
            if resumable:
                notify(f"{len(resumable)} run(s) resume from their checkpoint in {out / CHECKPOINT_DIR}")
            if source is not None:
                extended = [j for j in pending if j not in resumable and extend_at(j)]
                notify(f"{len(extended)} run(s) continue from the state of their shorter run in {source}"
                       + (f"; {len(pending) - len(resumable) - len(extended)} start from scratch"
                          if len(extended) < len(pending) - len(resumable) else ""))
            if group > 1:
                notify(_group_line(units))
        threads = threads or default_threads(workers)
        # Worker processes get the provider by module name (modules do not pickle); this process keeps the object.
        job_provider = local_provider if executor == "local" and workers <= 1 else portable_provider(local_provider)
        options = {"device": device, "amp": bool(amp), "channels_last": bool(channels_last),
                   "checkpoints_of": str(out) if checkpoint_every else None,
                   "checkpoint_every": int(checkpoint_every),
                   "extend_from": str(source) if source is not None else None}
        new = []
        bar = tqdm(total=len(pending), desc="sweep", unit="run", disable=not progress or not pending,
                   dynamic_ncols=True)
        for rec in EXECUTORS[executor](units, cfg, workers=workers, threads=threads, scheduler=scheduler,
                                       provider=job_provider, data_root=data_root, progress=progress,
                                       options=options):
            job = Job(rec["arch"], rec["method"], rec["seed"])
            write_json_atomic(out / record_name(*job), rec)
            _remove_checkpoint(out, job)  # the record is the result now; a rerun never resumes a finished run
            new.append(rec)
            bar.update(1)
            if rec["status"] != "ok":
                tqdm.write(f"FAILED {rec['arch']}/{rec['method']}/s{rec['seed']}: {rec['reason']}")
            else:
                for warning in rec.get("warnings", []):
                    tqdm.write(f"warning: {rec['arch']}/{rec['method']}/s{rec['seed']}: {warning}")
                bar.set_postfix_str(f"{rec['arch']}/{rec['method']}/s{rec['seed']} "
                                    f"src={rec['accuracy'].get(cfg['source'], float('nan')):.3f}")
        bar.close()
        return new

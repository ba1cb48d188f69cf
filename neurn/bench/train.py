"""One benchmark run: train (arch, method, seed) on the source domain, evaluate on every target.

The protocol is a plain dict (see :func:`default_protocol`) so it can be stored in every record and
compared across runs. ``provider`` is anything with the ``neurn.domains`` interface
(``list_domains``, ``available_domains``, ``load_domain``); tests inject tiny in-memory domains.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import sys
import types
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

from neurn.bench.archs import arch_digest, count_params, create_arch, get_arch
from neurn.bench.methods import get_method
from neurn.bench.protocol import package_versions
from neurn.errors import InvalidArgument

def default_provider() -> Any:
    """The registered digit domains (``neurn.domains``)."""
    import neurn.domains

    return neurn.domains


def portable_provider(provider: Any) -> Any:
    """``provider`` in a form that pickles into a worker process: a module travels as its name.

    Modules cannot be pickled (``neurn bench --workers 2`` failed with "cannot pickle 'module'
    object"); the worker imports the module again by name (see :func:`resolve_provider`).
    """
    return provider.__name__ if isinstance(provider, types.ModuleType) else provider


def resolve_provider(provider: Any) -> Any:
    """The provider object: None -> :func:`default_provider`; a module name -> that module, imported."""
    if provider is None:
        return default_provider()
    if isinstance(provider, str):
        return importlib.import_module(provider)
    return provider


# Per-process cache: a sweep runs many jobs in one worker and the domains are the same for all.
_DATA_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _cache_key(provider: Any, name: str, split: str, cfg: dict[str, Any], limit: int | None,
               data_root: str | None) -> tuple:
    # The provider object itself, not its id(): the key then keeps it alive, so a later provider can never
    # reuse a collected one's id and be handed its images. Unhashable providers are simply not cached.
    return (provider, name, split, cfg["size"], cfg["channels"], limit, data_root)


def load_split(provider: Any, name: str, split: str, cfg: dict[str, Any], limit: int | None = None,
               data_root: str | None = None, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` items of ``name``/``split`` (all when None), cached for this process.

    ``cache=False`` loads without keeping the tensors (a cached copy is still returned when present).
    """
    # First N rather than a random subset: the registered test splits are not stored in class order,
    # and generated domains build only the chunks that are asked for.
    key = _cache_key(provider, name, split, cfg, limit, data_root)
    try:
        hit = _DATA_CACHE.get(key)
    except TypeError:  # an unhashable provider: load every time
        hit, cache = None, False
    if hit is not None:
        return hit
    x, y = provider.load_domain(name, split=split, size=cfg["size"], channels=cfg["channels"],
                                limit=limit, data_root=data_root)
    pair = (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))
    if cache:
        _DATA_CACHE[key] = pair
    return pair


def keep_split(provider: Any, name: str, split: str, cfg: dict[str, Any], limit: int | None,
               data_root: str | None, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Cache a split loaded with ``cache=False`` (once it passed its checks) for the runs of this process."""
    try:
        _DATA_CACHE[_cache_key(provider, name, split, cfg, limit, data_root)] = pair
    except TypeError:  # an unhashable provider: nothing to keep
        pass


LOW_LOSS = 0.5  # mean cross-entropy of the last iterations under which most training batches are right


def train_eval_mismatch(final_loss: float | None, source_accuracy: float | None, num_classes: int) -> str | None:
    """A warning when the net fits its training batches but scores near chance on the source test split.

    That is eval mode disagreeing with training mode (e.g. BatchNorm running statistics that have not
    settled, as with torchvision MNASNet's momentum 0.0003), not a result: the record says so.

    >>> train_eval_mismatch(0.13, 0.126, 10)[:40]
    'training loss 0.130 but source test accu'
    >>> train_eval_mismatch(0.13, 0.95, 10) is None and train_eval_mismatch(2.2, 0.11, 10) is None
    True
    """
    if final_loss is None or source_accuracy is None or not math.isfinite(source_accuracy):
        return None
    if final_loss < LOW_LOSS and source_accuracy < 2.0 / num_classes:
        return (f"training loss {final_loss:.3f} but source test accuracy {100 * source_accuracy:.1f} % (chance "
                f"{100 / num_classes:.0f} %): eval mode disagrees with training mode, e.g. BatchNorm running "
                "statistics that have not settled")
    return None


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy over every item (in order, no drop_last)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)  # counted on the device: one read at the end
    for i in range(0, len(y), batch_size):
        correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum()
    return int(correct) / max(1, len(y))


def resolve_device(device: str) -> str:
    """``cpu`` / ``cuda`` / ``auto`` -> the device runs use; ``cuda`` without a GPU raises ``BenchError``."""
    from neurn.errors import BenchError, UnknownName

    if device not in ("cpu", "cuda", "auto"):
        raise UnknownName("device", device, ["cpu", "cuda", "auto"])
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA GPU is available here (torch.cuda.is_available() is False); "
                         "use --device cpu or --device auto")
    return device


def amp_dtype(device: str, amp: bool) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16 (with a grad scaler); None when off."""
    if not amp or device != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


CHECKPOINT_FORMAT = 1


def checkpoint_name(arch: str, method: str, seed: int) -> str:
    """File name of one run's checkpoint (in ``<out>/.ckpt/``): ``<arch>-<method>-s<seed>.pt``."""
    return f"{arch}-{method}-s{seed}.pt"


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through the one atomic writer: a killed process leaves the previous checkpoint intact."""
    from archsim._io import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def _try_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save a checkpoint; one that cannot be written (disk full, ...) is a warning, never a failed run."""
    try:
        _save_checkpoint(path, state)
    except OSError as exc:
        warnings.warn(f"{exc}; training goes on without this checkpoint")


def _same_protocol_but_iters(a: Any, cfg: dict[str, Any]) -> bool:
    """Whether config ``a`` is ``cfg`` with another iteration count (a shorter run of the same protocol)."""
    return isinstance(a, dict) and {**a, "iters": cfg["iters"]} == cfg


def _load_checkpoint(path: Path, job: tuple[str, str, int], cfg: dict[str, Any],
                     digest: str, extend: bool = False) -> dict[str, Any] | None:
    """The checkpoint of this job under this protocol and arch definition (``digest``, see
    :func:`neurn.bench.archs.arch_digest`), or None (absent, unreadable or another run: a warning).

    A checkpoint written before checkpoints carried the digest is accepted. With ``extend``, the
    checkpoint may come from a run of the same protocol with another iteration count, as long as it
    stopped at or before ``cfg["iters"]``: constant-rate Adam and seeded batch order make its state the
    state of this run at that iteration.
    """
    if not path.exists():
        return None
    try:
        # mmap: the parent only reads "iter" to plan (--plan, --extend-from counts); the tensors stay on disk
        # until a run copies them into its model, so asking where a run resumes costs no full read.
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        ok = (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT
              and tuple(state.get("job", ())) == tuple(job))
        if ok and extend:
            ok = _same_protocol_but_iters(state.get("config"), cfg) and int(state.get("iter", 0)) <= cfg["iters"]
        elif ok:
            ok = state.get("config") == cfg
    except Exception as exc:  # a damaged file (any unpickling error): start over, never crash the run
        warnings.warn(f"checkpoint {path} cannot be read ({type(exc).__name__}); starting the run from scratch")
        return None
    if not ok:
        warnings.warn(f"checkpoint {path} belongs to another run or config; starting the run from scratch")
        return None
    if state.get("arch_digest", digest) != digest:
        # Same weight layout, other net (e.g. another BatchNorm momentum): loading would mix the two.
        warnings.warn(f"checkpoint {path} was written by another definition of {job[0]} (digest "
                      f"{state['arch_digest']}, now {digest}); starting the run from scratch")
        return None
    return state


def _latest_state(paths: Any, job: tuple[str, str, int], cfg: dict[str, Any],
                  digest: str) -> tuple[dict[str, Any] | None, Path | None]:
    """The furthest usable state among the checkpoints ``paths`` of shorter runs (see ``extend`` above)."""
    best: tuple[dict[str, Any] | None, Path | None] = (None, None)
    for path in paths:
        state = _load_checkpoint(Path(path), job, cfg, digest, extend=True)
        if state is not None and (best[0] is None or int(state["iter"]) > int(best[0]["iter"])):
            best = (state, Path(path))
    return best


def checkpoint_start(path: Path, job: tuple[str, str, int], cfg: dict[str, Any]) -> int:
    """The iteration the run ``job`` would resume from with the checkpoint ``path``; 0 when it would start over.

    Same checks as resuming (run, protocol, arch definition), with the same warnings for a checkpoint
    that would be dropped.
    """
    state = _load_checkpoint(path, job, cfg, arch_digest(job[0], cfg["num_classes"], cfg["channels"]))
    return int(state["iter"]) if state is not None else 0


def extension_start(paths: Any, job: tuple[str, str, int], cfg: dict[str, Any]) -> int:
    """The iteration the run ``job`` would start from, lacking a checkpoint of its own, with the states of
    shorter runs ``paths`` (``extend_from`` of :func:`run_one`); 0 when none is usable."""
    state = _latest_state(paths, job, cfg, arch_digest(job[0], cfg["num_classes"], cfg["channels"]))[0]
    return int(state["iter"]) if state is not None else 0


def run_one(arch: str, method: str, seed: int, cfg: dict[str, Any], provider: Any = None,
            threads: int | None = None, data_root: str | None = None, progress: bool = True,
            device: str = "cpu", amp: bool = False, channels_last: bool = False,
            checkpoint: str | Path | None = None, checkpoint_every: int = 0,
            final_checkpoint: str | Path | None = None, extend_from: Any = ()) -> dict[str, Any]:
    """Train and evaluate one run; returns its record (``status`` ok/failed, never raises on a bad run).

    Args:
        arch, method, seed: the run.
        cfg: the protocol (:func:`neurn.bench.protocol.default_protocol`).
        provider: the domains (None: ``neurn.domains``; a module name is imported).
        threads: torch intra-op threads for this process (None: leave as is).
        data_root: folder of user-supplied datasets.
        progress: show a progress bar.
        device: ``cpu`` or ``cuda`` (already resolved, see :func:`resolve_device`).
        amp: autocast (bf16, or fp16 with a grad scaler) on CUDA; ignored on CPU.
        channels_last: model and data in the channels-last memory format.
        checkpoint: file to save the training state to every ``checkpoint_every`` iterations and to
            resume from when it exists (the caller removes it once the record is written).
        checkpoint_every: iterations between checkpoints (0: none).
        final_checkpoint: file to save the state after the last iteration to (None: not kept), so a
            longer run of the same protocol can start from it (``extend_from``).
        extend_from: checkpoint files of shorter runs of this job under the same protocol (another
            ``iters`` only); without a checkpoint of its own, the run starts from the furthest of them
            and says so in ``extended_from``.

    Returns:
        The record. ``device``, ``amp``, ``channels_last`` are recorded but are not part of ``config``.
    """
    (rec,) = run_group(arch, [RunFiles(method, seed, checkpoint, final_checkpoint, tuple(extend_from))], cfg,
                       provider=provider, threads=threads, data_root=data_root, progress=progress, device=device,
                       amp=amp, channels_last=channels_last, checkpoint_every=checkpoint_every)
    return rec


# Autocast does not reach inside vmap's batching rules for convolutions and batch norm (measured, torch 2.14:
# under autocast a vmapped conv2d returns float32, an unbatched one bfloat16), so a group would train mostly in
# fp32 while its records said bf16. Groups therefore train in fp32; AMP stays for runs trained alone.
GROUP_AMP = ("--amp trains one run at a time: autocast does not reach a group's batched convolutions (they would "
             "run in fp32 while the record said bf16); drop --amp or use --group 1")


def check_group(size: int, channels_last: bool, autocast: bool) -> None:
    """Refuse, in one line, the execution options a group of ``size`` runs cannot honour (``InvalidArgument``)."""
    if size > 1 and channels_last:
        raise InvalidArgument("--channels-last trains one run at a time; drop it or use --group 1")
    if size > 1 and autocast:
        raise InvalidArgument(GROUP_AMP)


class RunFiles(NamedTuple):
    """One run of a group (:func:`run_group`) and its files: ``checkpoint``, ``final_checkpoint`` and
    ``extend_from`` as in :func:`run_one` (None / empty: none)."""

    method: str
    seed: int
    checkpoint: str | Path | None = None
    final_checkpoint: str | Path | None = None
    extend_from: tuple = ()


def run_group(arch: str, runs: list[RunFiles], cfg: dict[str, Any], provider: Any = None,
              threads: int | None = None, data_root: str | None = None, progress: bool = True,
              device: str = "cpu", amp: bool = False, channels_last: bool = False,
              checkpoint_every: int = 0) -> list[dict[str, Any]]:
    """Train and evaluate several runs of ``arch`` as one batched model; returns their records, in order.

    One run trains exactly as :func:`run_one` describes. Two or more train together through
    :class:`neurn.bench.grouped.StackedNets` when every method can (:func:`neurn.bench.grouped.group_key`
    equal for all) and every run starts at the same iteration; otherwise they train one after the other.
    Each record then says ``group``: the runs it trained with. ``channels_last`` and ``amp`` (on CUDA) need a
    group of one (:data:`GROUP_AMP` says why for AMP).

    Args:
        arch: the architecture of every run.
        runs: the runs and their checkpoint files.
        cfg: the protocol.
        provider, threads, data_root, progress, device, amp, channels_last, checkpoint_every: as in
            :func:`run_one`.

    Returns:
        One record per run, never raising on a bad run.
    """
    from neurn.bench.grouped import group_key

    keys = {group_key(r.method) for r in runs} if len(runs) > 1 else set()
    if len(keys) > 1 or None in keys:
        # Methods that cannot share a batched model: the same runs, one after the other.
        return [rec for files in runs for rec in run_group(arch, [files], cfg, provider, threads, data_root,
                                                           progress, device, amp, channels_last, checkpoint_every)]
    dtype = amp_dtype(device, amp)
    check_group(len(runs), channels_last, dtype is not None)
    recs = [_new_record(arch, r.method, int(r.seed), cfg, device, dtype, channels_last) for r in runs]
    if threads:
        torch.set_num_threads(threads)
    for rec in recs:
        rec["threads"] = torch.get_num_threads()
    opts = {"device": device, "dtype": dtype, "channels_last": bool(channels_last),
            "checkpoint_every": int(checkpoint_every)}
    slots = [_Slot(rec, r, checkpoint_every) for rec, r in zip(recs, runs)]
    try:
        _train_and_eval(slots, arch, cfg, resolve_provider(provider), data_root, progress, opts)
    except _MixedStarts as mixed:
        # A checkpoint the sweep counted on was unusable after all (damaged since, say): the runs that stand
        # at each iteration train together, none of them is failed for another's file.
        by_start: dict[int, list[RunFiles]] = {}
        for files, start in zip(runs, mixed.starts):
            by_start.setdefault(start, []).append(files)
        done = {(r["method"], r["seed"]): r for part in by_start.values()
                for r in run_group(arch, part, cfg, provider, threads, data_root, progress, device, amp,
                                   channels_last, checkpoint_every)}
        return [done[(r.method, int(r.seed))] for r in runs]
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a broken run must not kill the sweep; the reason is kept in the record
        for slot in slots:
            if slot.rec["status"] == "running":
                slot.rec["status"], slot.rec["reason"] = "failed", f"{type(e).__name__}: {e}"
    for rec in recs:
        rec["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return recs


def _new_record(arch: str, method: str, seed: int, cfg: dict[str, Any], device: str, dtype: torch.dtype | None,
                channels_last: bool) -> dict[str, Any]:
    return {
        "arch": arch, "method": method, "seed": seed, "iters": cfg["iters"],
        "family": get_arch(arch).family, "status": "running", "reason": None, "accuracy": {},
        "n_eval": {}, "config": cfg, "versions": package_versions(),
        "arch_digest": arch_digest(arch, cfg["num_classes"], cfg["channels"]),
        "device": device, "amp": str(dtype).removeprefix("torch.") if dtype else False,
        "channels_last": bool(channels_last),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _MixedStarts(Exception):
    """The runs of a group would resume at different iterations (``starts``, in run order)."""

    def __init__(self, starts: list[int]) -> None:
        super().__init__(f"the runs of this group would start at iterations {starts}")
        self.starts = starts


class _Slot:
    """One run inside the training loop: its record, model, generators, batch order and curves."""

    def __init__(self, rec: dict[str, Any], files: RunFiles, checkpoint_every: int) -> None:
        self.rec, self.files, self.seed = rec, files, int(files.seed)
        self.method = get_method(files.method)
        self.job = (rec["arch"], files.method, self.seed)
        self.ckpt = Path(files.checkpoint) if files.checkpoint and checkpoint_every else None
        self.final = Path(files.final_checkpoint) if files.final_checkpoint else None
        self.batch_gen = torch.Generator().manual_seed(self.seed)
        # A separate stream for augmentations keeps the batch order identical across methods.
        self.aug_gen = torch.Generator().manual_seed(1_000_003 + self.seed)
        self.curve: list = []
        self.window: list = []
        self.source_curve: list = []
        self.live = True
        # Set by the training loop: the wrapped model on the device, and the epoch's batch order (on the CPU,
        # where its generator draws it, and on the device, where the batches are indexed) with the position in it.
        self.model: torch.nn.Module | None = None
        self.order: torch.Tensor | None = None
        self.order_dev: torch.Tensor | None = None
        self.pos = 0

    def fail(self, reason: str, train_time: float, curve_every: int) -> None:
        """Record a run that stops here (a non-finite loss), with the curves it has."""
        self.rec["status"], self.rec["reason"] = "failed", reason
        self.rec["train_time_s"] = round(train_time, 3)
        self.rec["loss_curve"] = self.curve
        if curve_every:
            self.rec["source_curve"] = self.source_curve
        self.live = False


def _to_device(x: torch.Tensor, device: str, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _load_state(slot: _Slot, cfg: dict[str, Any], curve_every: int) -> dict[str, Any] | None:
    """The state ``slot`` resumes from: its own checkpoint, else the furthest state of a shorter run, else None."""
    rec = slot.rec
    state = _load_checkpoint(slot.ckpt, slot.job, cfg, rec["arch_digest"]) if slot.ckpt else None
    if state is None and slot.files.extend_from:
        sources = [Path(p) for p in slot.files.extend_from]
        state, source = _latest_state(sources, slot.job, cfg, rec["arch_digest"])
        if state is not None:
            rec["extended_from"] = {"checkpoint": str(source), "iter": int(state["iter"]),
                                    "iters": int(state["config"]["iters"])}
            # A run evaluates its learning curve at its last iteration too: off the grid of this longer run,
            # that point goes. (Its loss curve keeps the shorter run's grid of iters/50: the raw losses are gone.)
            done, points = int(state["iter"]), state["source_curve"]
            if curve_every and done % curve_every and points and points[-1][0] == done:
                state["source_curve"] = points[:-1]
    return state


def _train_and_eval(slots: list[_Slot], arch: str, cfg: dict[str, Any], provider: Any, data_root: str | None,
                    progress: bool, opts: dict[str, Any] | None = None) -> None:
    """Fill each slot's record in place (so a failure part-way still reports what was measured)."""
    from neurn.bench.grouped import StackedNets, split_wrap

    opts = {"device": "cpu", "dtype": None, "channels_last": False, "checkpoint_every": 0, **(opts or {})}
    device, dtype, cl = opts["device"], opts["dtype"], opts["channels_last"]
    torch.use_deterministic_algorithms(True, warn_only=True)
    x_src, y_src = load_split(provider, cfg["source"], "train", cfg, limit=cfg["source_limit"], data_root=data_root)
    # The data moves to the device once; every batch is then an index into it (no per-step copies).
    x_src, y_src = _to_device(x_src, device, cl), y_src.to(device)
    curve_every = int(cfg.get("curve_every", 0) or 0)
    if curve_every:
        x_cur, y_cur = load_split(provider, cfg["source"], "test", cfg, limit=cfg.get("curve_eval_limit", 1000),
                                  data_root=data_root)
        x_cur, y_cur = _to_device(x_cur, device, cl), y_cur.to(device)
    cores, prefixes = [], []
    for slot in slots:
        torch.manual_seed(slot.seed)  # same seed -> same initial weights for every method: paired comparisons
        core = create_arch(arch, cfg["num_classes"], cfg["channels"])
        model, prefix = split_wrap(slot.method, core) if len(slots) > 1 else (slot.method.wrap(core), None)
        slot.rec["n_params"] = count_params(model)
        slot.model = model.to(device, memory_format=torch.channels_last) if cl else model.to(device)
        cores.append(core)
        prefixes.append(prefix)
    states = [_load_state(slot, cfg, curve_every) for slot in slots]
    per_run = [int(s["iter"]) if s is not None else 0 for s in states]
    starts = set(per_run)
    if len(starts) > 1:
        raise _MixedStarts(per_run)  # run_group trains each iteration's runs as a group of their own
    stacked = StackedNets([s.model for s in slots], cores, prefixes) if len(slots) > 1 else None
    params = stacked.parameters() if stacked else list(slots[0].model.parameters())
    opt = torch.optim.Adam(params, lr=cfg["lr"])
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    n, bs = len(y_src), cfg["batch_size"]
    for slot in slots:
        slot.order, slot.pos = torch.randperm(n, generator=slot.batch_gen), 0
    log_every = max(1, cfg["iters"] // 50)
    start, elapsed = starts.pop(), 0.0
    # Checkpoint points read the pending losses too: only when some run has a file to save to.
    every = opts["checkpoint_every"] if any(s.ckpt is not None for s in slots) else 0
    if any(s is not None for s in states):
        # Everything the remaining iterations depend on: weights, Adam moments, both generators, the
        # global RNG (dropout), the epoch's batch order and position, and the curves so far.
        for slot, state in zip(slots, states):
            slot.model.load_state_dict(state["model"])
            slot.batch_gen.set_state(state["batch_gen"])
            slot.aug_gen.set_state(state["aug_gen"])
            slot.order, slot.pos = state["order"], int(state["pos"])
            slot.curve, slot.window, slot.source_curve = state["curve"], state["window"], state["source_curve"]
            slot.rec["resumed_from"] = start
            # Execution options are not protocol: a run may resume elsewhere, but its record must say so, since
            # `device` and `amp` below name only where it finished.
            was = (state.get("device", device), state.get("amp", slot.rec["amp"]))
            if was != (device, slot.rec["amp"]):
                slot.rec.setdefault("warnings", []).append(f"iterations 1-{start} ran on {was[0]} (amp {was[1]}), "
                                                           f"the rest on {device} (amp {slot.rec['amp']})")
        first = states[0]
        if stacked:
            stacked.load_member_optimizer_state(opt, [s["opt"] for s in states])
        else:
            opt.load_state_dict(first["opt"])
        if first.get("scaler"):
            scaler.load_state_dict(first["scaler"])
        torch.set_rng_state(first["torch_rng"])  # one global generator: a group's runs share its dropout stream
        if device == "cuda" and first.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(first["cuda_rng"])
        elapsed = max(float(s["train_time_s"]) for s in states)
    if len(slots) > 1:
        names = [f"{arch}/{s.files.method}/s{s.seed}" for s in slots]
        for slot in slots:
            slot.rec["group"] = names

    def snapshot(i: int, done: int) -> dict[str, Any]:
        """Everything the iterations of run ``i`` after ``done`` depend on (see the resume above)."""
        slot = slots[i]
        model_state = slot.model.state_dict()
        if stacked:  # its tensors are views into the group's: save this run's slice only
            model_state = {k: v.clone() for k, v in model_state.items()}
        return {
            "format": CHECKPOINT_FORMAT, "job": list(slot.job), "config": cfg, "iter": done,
            "arch_digest": slot.rec["arch_digest"], "device": device, "amp": slot.rec["amp"],
            "model": model_state, "opt": stacked.member_optimizer_state(opt, i) if stacked else opt.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "batch_gen": slot.batch_gen.get_state(), "aug_gen": slot.aug_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None,
            "order": slot.order, "pos": slot.pos, "curve": slot.curve, "window": slot.window,
            "source_curve": slot.source_curve, "train_time_s": time.perf_counter() - t0}

    def train_mode() -> None:
        (stacked or slots[0].model).train()

    t0 = time.perf_counter() - elapsed
    train_mode()
    desc = f"{arch}/{slots[0].files.method}/s{slots[0].seed}" + (f" +{len(slots) - 1}" if len(slots) > 1 else "")
    bar = tqdm(range(start, cfg["iters"]), desc=desc, leave=False, disable=not progress,
               file=sys.stderr, dynamic_ncols=True, initial=start, total=cfg["iters"])
    # On a GPU, Python queues the next steps while the GPU works only if nothing waits for it: a `.item()` or
    # a `.to(device)` of a CPU tensor waits for every queued kernel. So the batch order moves to the device
    # once per epoch, and each step's losses stay there (`pending`) until the loss curve, the learning curve
    # or a checkpoint reads them. The non-finite check reads them then too, naming the first bad iteration.
    for slot in slots:
        slot.order_dev = slot.order.to(device)
    pending: list[torch.Tensor] = []
    for it in bar:
        idxs = []
        for slot in slots:
            if slot.pos + bs > n:
                slot.order, slot.pos = torch.randperm(n, generator=slot.batch_gen), 0
                slot.order_dev = slot.order.to(device)
            idxs.append(slot.order_dev[slot.pos:slot.pos + bs])
            slot.pos += bs
        with autocast():
            if stacked:
                losses = stacked.losses([s.method for s in slots], x_src, y_src, idxs, [s.aug_gen for s in slots],
                                        cfg)
            else:
                s, idx = slots[0], idxs[0]
                losses = s.method.loss(s.model, x_src[idx], y_src[idx], s.aug_gen, cfg).reshape(1)
        pending.append(losses.detach().float())
        opt.zero_grad(set_to_none=True)
        scaler.scale(losses.sum()).backward()
        scaler.step(opt)
        scaler.update()
        done = it + 1
        log_due = done % log_every == 0 or done == cfg["iters"]
        curve_due = bool(curve_every) and (done % curve_every == 0 or done == cfg["iters"])
        ckpt_due = bool(every) and done % every == 0 and done < cfg["iters"]
        if not (log_due or curve_due or ckpt_due):
            continue
        values, pending = torch.stack(pending).tolist(), []  # one row of len(slots) losses per step
        for i, slot in enumerate(slots):
            if not slot.live:
                continue  # its weights went on training in the group; nothing of it is kept
            column = [row[i] for row in values]
            bad = next((k for k, v in enumerate(column) if not math.isfinite(v)), None)
            if bad is not None:
                slot.fail(f"non-finite loss ({column[bad]}) at iteration {done - len(column) + bad}",
                          time.perf_counter() - t0, curve_every)
                continue
            slot.window.extend(column)
            if log_due:
                slot.curve.append([done, round(sum(slot.window) / len(slot.window), 5)])
                slot.window = []
        live = [i for i, s in enumerate(slots) if s.live]
        if not live:
            break
        if log_due:
            bar.set_postfix(loss=f"{slots[live[0]].curve[-1][1]:.3f}")
        if curve_due:
            with autocast():
                for i in live:
                    slots[i].source_curve.append([done, round(evaluate(slots[i].model, x_cur, y_cur), 5)])
            train_mode()
        if ckpt_due:
            for i in live:
                if slots[i].ckpt is not None:
                    _try_checkpoint(slots[i].ckpt, snapshot(i, done))
    bar.close()
    train_time = round(time.perf_counter() - t0, 3)
    for i, slot in enumerate(slots):
        if not slot.live:
            continue
        if slot.final is not None and start < cfg["iters"]:
            # The state after the last iteration: a longer run of this protocol continues from it (--extend-from).
            _try_checkpoint(slot.final, snapshot(i, cfg["iters"]))
        slot.rec["train_time_s"] = train_time
        slot.rec["loss_curve"] = slot.curve
        slot.rec["final_loss"] = slot.curve[-1][1] if slot.curve else None
        if curve_every:
            slot.rec["source_curve"] = slot.source_curve
    for slot in (s for s in slots if s.live):
        rec, t1 = slot.rec, time.perf_counter()
        for name in cfg["targets"]:
            x, y = load_split(provider, name, "test", cfg, limit=cfg["eval_limit"], data_root=data_root)
            with autocast():
                rec["accuracy"][name] = evaluate(slot.model, _to_device(x, device, cl), y.to(device))
            rec["n_eval"][name] = len(y)
        rec["eval_time_s"] = round(time.perf_counter() - t1, 3)
        rec["status"] = "ok"
        mismatch = train_eval_mismatch(rec["final_loss"], rec["accuracy"].get(cfg["source"]), cfg["num_classes"])
        if mismatch:
            rec.setdefault("warnings", []).append(mismatch)

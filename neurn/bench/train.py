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
from typing import Any

import torch
from tqdm.auto import tqdm

from neurn.bench.archs import arch_digest, count_params, create_arch, get_arch
from neurn.bench.methods import get_method
from neurn.bench.protocol import package_versions

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
    dtype = amp_dtype(device, amp)
    rec: dict[str, Any] = {
        "arch": arch, "method": method, "seed": int(seed), "iters": cfg["iters"],
        "family": get_arch(arch).family, "status": "running", "reason": None, "accuracy": {},
        "n_eval": {}, "config": cfg, "versions": package_versions(),
        "arch_digest": arch_digest(arch, cfg["num_classes"], cfg["channels"]),
        "device": device, "amp": str(dtype).removeprefix("torch.") if dtype else False,
        "channels_last": bool(channels_last),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if threads:
        torch.set_num_threads(threads)
    rec["threads"] = torch.get_num_threads()
    opts = {"device": device, "dtype": dtype, "channels_last": bool(channels_last),
            "checkpoint": Path(checkpoint) if checkpoint and checkpoint_every else None,
            "checkpoint_every": int(checkpoint_every),
            "final_checkpoint": Path(final_checkpoint) if final_checkpoint else None,
            "extend_from": [Path(p) for p in extend_from]}
    try:
        _train_and_eval(rec, arch, method, int(seed), cfg, resolve_provider(provider), data_root, progress, opts)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a broken run must not kill the sweep; the reason is kept in the record
        rec["status"], rec["reason"] = "failed", f"{type(e).__name__}: {e}"
    rec["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return rec


def _to_device(x: torch.Tensor, device: str, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _train_and_eval(rec: dict[str, Any], arch: str, method: str, seed: int, cfg: dict[str, Any],
                    provider: Any, data_root: str | None, progress: bool,
                    opts: dict[str, Any] | None = None) -> None:
    """Fill ``rec`` in place (so a failure part-way still reports what was measured)."""
    opts = {"device": "cpu", "dtype": None, "channels_last": False, "checkpoint": None, "checkpoint_every": 0,
            "final_checkpoint": None, "extend_from": [], **(opts or {})}
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
    m = get_method(method)
    torch.manual_seed(seed)  # same seed -> same initial weights for every method: paired comparisons
    model = m.wrap(create_arch(arch, cfg["num_classes"], cfg["channels"]))
    rec["n_params"] = count_params(model)
    model = model.to(device, memory_format=torch.channels_last) if cl else model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    batch_gen = torch.Generator().manual_seed(seed)
    # A separate stream for augmentations keeps the batch order identical across methods.
    aug_gen = torch.Generator().manual_seed(1_000_003 + seed)
    n, bs = len(y_src), cfg["batch_size"]
    order, pos = torch.randperm(n, generator=batch_gen), 0
    log_every = max(1, cfg["iters"] // 50)
    curve, window, source_curve, start, elapsed = [], [], [], 0, 0.0
    ckpt, every = opts["checkpoint"], opts["checkpoint_every"]
    state = _load_checkpoint(ckpt, (arch, method, seed), cfg, rec["arch_digest"]) if ckpt else None
    if state is None and opts["extend_from"]:
        state, source = _latest_state(opts["extend_from"], (arch, method, seed), cfg, rec["arch_digest"])
        if state is not None:
            rec["extended_from"] = {"checkpoint": str(source), "iter": int(state["iter"]),
                                    "iters": int(state["config"]["iters"])}
            # A run evaluates its learning curve at its last iteration too: off the grid of this longer run,
            # that point goes. (Its loss curve keeps the shorter run's grid of iters/50: the raw losses are gone.)
            done, points = int(state["iter"]), state["source_curve"]
            if curve_every and done % curve_every and points and points[-1][0] == done:
                state["source_curve"] = points[:-1]
    if state is not None:
        # Everything the remaining iterations depend on: weights, Adam moments, both generators, the
        # global RNG (dropout), the epoch's batch order and position, and the curves so far.
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        batch_gen.set_state(state["batch_gen"])
        aug_gen.set_state(state["aug_gen"])
        torch.set_rng_state(state["torch_rng"])
        if device == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        order, pos, start = state["order"], int(state["pos"]), int(state["iter"])
        curve, window, source_curve = state["curve"], state["window"], state["source_curve"]
        elapsed = float(state["train_time_s"])
        rec["resumed_from"] = start
        # Execution options are not protocol: a run may resume elsewhere, but its record must say so, since
        # `device` and `amp` below name only where it finished.
        was = (state.get("device", device), state.get("amp", rec["amp"]))
        if was != (device, rec["amp"]):
            rec.setdefault("warnings", []).append(
                f"iterations 1-{start} ran on {was[0]} (amp {was[1]}), the rest on {device} (amp {rec['amp']})")
    def snapshot(done: int) -> dict[str, Any]:
        """Everything the iterations after ``done`` depend on (see the resume above)."""
        return {
            "format": CHECKPOINT_FORMAT, "job": [arch, method, seed], "config": cfg, "iter": done,
            "arch_digest": rec["arch_digest"], "device": device, "amp": rec["amp"],
            "model": model.state_dict(), "opt": opt.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else None,
            "batch_gen": batch_gen.get_state(), "aug_gen": aug_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None,
            "order": order, "pos": pos, "curve": curve, "window": window, "source_curve": source_curve,
            "train_time_s": time.perf_counter() - t0}

    t0 = time.perf_counter() - elapsed
    model.train()
    bar = tqdm(range(start, cfg["iters"]), desc=f"{arch}/{method}/s{seed}", leave=False, disable=not progress,
               file=sys.stderr, dynamic_ncols=True, initial=start, total=cfg["iters"])
    # On a GPU, Python queues the next steps while the GPU works only if nothing waits for it: a `.item()` or
    # a `.to(device)` of a CPU tensor waits for every queued kernel. So the batch order moves to the device
    # once per epoch, and each step's loss stays there (`pending`) until the loss curve, the learning curve
    # or a checkpoint reads it. The non-finite check reads them then too, naming the first bad iteration.
    order_dev, pending = order.to(device), []
    for it in bar:
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=batch_gen), 0
            order_dev = order.to(device)
        idx = order_dev[pos:pos + bs]
        pos += bs
        with autocast():
            loss = m.loss(model, x_src[idx], y_src[idx], aug_gen, cfg)
        pending.append(loss.detach().float())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        done = it + 1
        log_due = done % log_every == 0 or done == cfg["iters"]
        curve_due = bool(curve_every) and (done % curve_every == 0 or done == cfg["iters"])
        ckpt_due = ckpt is not None and bool(every) and done % every == 0 and done < cfg["iters"]
        if not (log_due or curve_due or ckpt_due):
            continue
        values, pending = torch.stack(pending).tolist(), []
        bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
        if bad is not None:
            rec["status"], rec["reason"] = ("failed", f"non-finite loss ({values[bad]}) at iteration "
                                                      f"{done - len(values) + bad}")
            rec["train_time_s"] = round(time.perf_counter() - t0, 3)
            rec["loss_curve"] = curve
            if curve_every:
                rec["source_curve"] = source_curve
            bar.close()
            return
        window.extend(values)
        if log_due:
            curve.append([done, round(sum(window) / len(window), 5)])
            bar.set_postfix(loss=f"{curve[-1][1]:.3f}")
            window = []
        if curve_due:
            with autocast():
                source_curve.append([done, round(evaluate(model, x_cur, y_cur), 5)])
            model.train()
        if ckpt_due:
            _try_checkpoint(ckpt, snapshot(done))
    bar.close()
    if opts["final_checkpoint"] is not None and start < cfg["iters"]:
        # The state after the last iteration: a longer run of this protocol continues from it (--extend-from).
        _try_checkpoint(opts["final_checkpoint"], snapshot(cfg["iters"]))
    rec["train_time_s"] = round(time.perf_counter() - t0, 3)
    rec["loss_curve"] = curve
    rec["final_loss"] = curve[-1][1] if curve else None
    if curve_every:
        rec["source_curve"] = source_curve
    t1 = time.perf_counter()
    for name in cfg["targets"]:
        x, y = load_split(provider, name, "test", cfg, limit=cfg["eval_limit"], data_root=data_root)
        with autocast():
            rec["accuracy"][name] = evaluate(model, _to_device(x, device, cl), y.to(device))
        rec["n_eval"][name] = len(y)
    rec["eval_time_s"] = round(time.perf_counter() - t1, 3)
    rec["status"] = "ok"
    mismatch = train_eval_mismatch(rec["final_loss"], rec["accuracy"].get(cfg["source"]), cfg["num_classes"])
    if mismatch:
        rec.setdefault("warnings", []).append(mismatch)

"""One benchmark run: train (arch, method, seed) on the source domain, evaluate on every target.

The protocol is a plain dict (see :func:`default_protocol`) so it can be stored in every record and
compared across runs. ``provider`` is anything with the ``neurn.domains`` interface
(``list_domains``, ``available_domains``, ``load_domain``); tests inject tiny in-memory domains.
"""
from __future__ import annotations

import importlib
import math
import sys
import types
import time
from datetime import datetime, timezone
from typing import Any

import torch
from tqdm.auto import tqdm

from neurn.bench.archs import count_params, create_arch, get_arch
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
    return (id(provider), name, split, cfg["size"], cfg["channels"], limit, data_root)


def load_split(provider: Any, name: str, split: str, cfg: dict[str, Any], limit: int | None = None,
               data_root: str | None = None, cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` items of ``name``/``split`` (all when None), cached for this process.

    ``cache=False`` loads without keeping the tensors (a cached copy is still returned when present).
    """
    # First N rather than a random subset: the registered test splits are not stored in class order,
    # and generated domains build only the chunks that are asked for.
    key = _cache_key(provider, name, split, cfg, limit, data_root)
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    x, y = provider.load_domain(name, split=split, size=cfg["size"], channels=cfg["channels"],
                                limit=limit, data_root=data_root)
    pair = (torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))
    if cache:
        _DATA_CACHE[key] = pair
    return pair


def keep_split(provider: Any, name: str, split: str, cfg: dict[str, Any], limit: int | None,
               data_root: str | None, pair: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Cache a split loaded with ``cache=False`` (once it passed its checks) for the runs of this process."""
    _DATA_CACHE[_cache_key(provider, name, split, cfg, limit, data_root)] = pair


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy over every item (in order, no drop_last)."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(y))


def run_one(arch: str, method: str, seed: int, cfg: dict[str, Any], provider: Any = None,
            threads: int | None = None, data_root: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate one run; returns its record (``status`` ok/failed, never raises on a bad run)."""
    rec: dict[str, Any] = {
        "arch": arch, "method": method, "seed": int(seed), "iters": cfg["iters"],
        "family": get_arch(arch).family, "status": "running", "reason": None, "accuracy": {},
        "n_eval": {}, "config": cfg, "versions": package_versions(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if threads:
        torch.set_num_threads(threads)
    rec["threads"] = torch.get_num_threads()
    try:
        _train_and_eval(rec, arch, method, int(seed), cfg, resolve_provider(provider), data_root, progress)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a broken run must not kill the sweep; the reason is kept in the record
        rec["status"], rec["reason"] = "failed", f"{type(e).__name__}: {e}"
    rec["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return rec


def _train_and_eval(rec: dict[str, Any], arch: str, method: str, seed: int, cfg: dict[str, Any],
                    provider: Any, data_root: str | None, progress: bool) -> None:
    """Fill ``rec`` in place (so a failure part-way still reports what was measured)."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    x_src, y_src = load_split(provider, cfg["source"], "train", cfg, limit=cfg["source_limit"], data_root=data_root)
    m = get_method(method)
    torch.manual_seed(seed)  # same seed -> same initial weights for every method: paired comparisons
    model = m.wrap(create_arch(arch, cfg["num_classes"], cfg["channels"]))
    rec["n_params"] = count_params(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    batch_gen = torch.Generator().manual_seed(seed)
    # A separate stream for augmentations keeps the batch order identical across methods.
    aug_gen = torch.Generator().manual_seed(1_000_003 + seed)
    n, bs = len(y_src), cfg["batch_size"]
    order, pos = torch.randperm(n, generator=batch_gen), 0
    log_every = max(1, cfg["iters"] // 50)
    curve, window = [], []
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(range(cfg["iters"]), desc=f"{arch}/{method}/s{seed}", leave=False, disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    for it in bar:
        if pos + bs > n:
            order, pos = torch.randperm(n, generator=batch_gen), 0
        idx = order[pos:pos + bs]
        pos += bs
        loss = m.loss(model, x_src[idx], y_src[idx], aug_gen, cfg)
        loss_value = loss.detach().item()
        if not math.isfinite(loss_value):
            rec["status"], rec["reason"] = "failed", f"non-finite loss ({loss_value}) at iteration {it}"
            rec["train_time_s"] = round(time.perf_counter() - t0, 3)
            rec["loss_curve"] = curve
            bar.close()
            return
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(loss_value)
        if (it + 1) % log_every == 0 or it + 1 == cfg["iters"]:
            curve.append([it + 1, round(sum(window) / len(window), 5)])
            bar.set_postfix(loss=f"{curve[-1][1]:.3f}")
            window = []
    bar.close()
    rec["train_time_s"] = round(time.perf_counter() - t0, 3)
    rec["loss_curve"] = curve
    rec["final_loss"] = curve[-1][1] if curve else None
    t1 = time.perf_counter()
    for name in cfg["targets"]:
        x, y = load_split(provider, name, "test", cfg, limit=cfg["eval_limit"], data_root=data_root)
        rec["accuracy"][name] = evaluate(model, x, y)
        rec["n_eval"][name] = len(y)
    rec["eval_time_s"] = round(time.perf_counter() - t1, 3)
    rec["status"] = "ok"

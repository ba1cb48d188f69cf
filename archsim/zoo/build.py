"""``archsim zoo build``: extract every zoo model with a process pool, resumably, into the zoo cache.

The build appends each finished model to a checkpoint file, so a killed build resumes where it
stopped; the cache itself is written atomically at the end.
"""
from __future__ import annotations

import gzip
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterable

from .._io import atomic_write, library_versions
from ..errors import UnknownNameError
from ..tokens import apply_profile
from .store import FORMAT, PACKAGED, ZOOS, load_zoo, user_zoo_path


def zoo_names(zoo: str = "all") -> list[str]:
    """Qualified names (``tv:NAME``, ``timm:NAME``) of the models a zoo cache covers."""
    if zoo not in ZOOS:
        raise UnknownNameError("zoo", zoo, ZOOS)
    names = []
    if zoo in ("torchvision", "all"):
        import torchvision.models as tvm
        names += [f"tv:{n}" for n in sorted(tvm.list_models(module=tvm))]
    if zoo in ("timm", "all"):
        import timm
        names += [f"timm:{n}" for n in timm.list_models()]
    return names


def extract_record(name: str) -> dict:
    """Extract one model for the zoo cache; never raises (failures become a record with a reason)."""
    import torch
    torch.set_num_threads(1)
    from ..tracing import extract
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seq = extract(name)
    except Exception as exc:  # a model that cannot even be built: keep the reason
        return {"name": name, "ok": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    _, keras_paths = apply_profile(seq.tokens, range(len(seq)), "keras")
    return {"name": name, "ok": True, "tokens": list(seq.tokens), "paths": list(seq.paths),
            "keras": list(keras_paths), "order": seq.order, "source": seq.source,
            "input_size": list(seq.input_size), "reason": seq.warnings[0] if seq.warnings else ""}


def _read_checkpoint(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[rec["name"]] = rec
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by a kill: that model is simply redone
    return done


def build_zoo(out: Path | None = None, workers: int = 1, zoo: str = "all", names: Iterable[str] | None = None,
          progress: bool = True) -> tuple[Path, list[dict]]:
    """Extract every zoo model (resumable) and write the versioned cache; return it and the failures."""
    from tqdm import tqdm
    out = Path(out) if out else (PACKAGED if os.access(PACKAGED.parent, os.W_OK) else user_zoo_path())
    todo = list(names) if names is not None else zoo_names(zoo)
    versions = library_versions()
    ckpt = out.with_name(out.name + f".{'-'.join(versions.values())}.partial.jsonl")
    done = _read_checkpoint(ckpt)
    pending = [n for n in todo if n not in done]
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    with open(ckpt, "a", encoding="utf-8") as log, tqdm(total=len(todo), initial=len(todo) - len(pending),
                                                        desc="zoo build", unit="model", disable=not progress) as bar:
        def keep(rec: dict) -> None:
            done[rec["name"]] = rec
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.update()
            bar.set_postfix_str(rec["name"][-30:])
        if workers <= 1:
            for n in pending:
                keep(extract_record(n))
        else:
            import multiprocessing as mp
            # A fresh interpreter per few dozen models keeps memory from creeping up.
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), max_tasks_per_child=40) as pool:
                futs = {pool.submit(extract_record, n): n for n in pending}
                for f in as_completed(futs):
                    try:
                        keep(f.result())
                    except Exception as exc:  # a worker that died (e.g. out of memory)
                        keep({"name": futs[f], "ok": False, "reason": f"worker died: {type(exc).__name__}: {exc}"})
    records = [done[n] for n in todo]
    vocab = sorted({t for r in records if r["ok"] for t in r["tokens"]})
    idx = {t: i for i, t in enumerate(vocab)}
    models = {}
    for r in records:
        if r["ok"]:
            models[r["name"]] = {"t": [idx[t] for t in r["tokens"]], "p": r["paths"], "k": r["keras"],
                                 "o": r["order"], "s": r["source"], "i": r["input_size"], "r": r["reason"]}
    failed = [{"name": r["name"], "reason": r["reason"]} for r in records if not r["ok"]]
    doc = {"format": FORMAT, "versions": versions, "vocab": vocab, "models": models, "failed": failed}
    data = gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9, mtime=0)
    atomic_write(out, data)
    ckpt.unlink(missing_ok=True)
    load_zoo.cache_clear()
    not_exec = [{"name": n, "reason": m["r"]} for n, m in models.items() if m["o"] != "execution"]
    return out, failed + not_exec



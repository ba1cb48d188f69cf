"""``archsim zoo build``: extract every zoo model with a process pool, resumably, into the zoo cache.

The build appends each finished model to a checkpoint file, so a killed build resumes where it
stopped (damaged checkpoint lines are skipped with a warning and redone); the cache itself is
written atomically at the end.  Builds of the same cache may run at once: see ``Checkpoint``.
"""
from __future__ import annotations

import functools
import gzip
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Iterable

from .._io import OutputError, atomic_write, check_output_file, installed_version, library_versions
from ..errors import ArchsimError, UnknownNameError, UsageError, shorten
from ..tokens import apply_profile
from .store import FORMAT, ORDERS, PACKAGED, ZOOS, load_zoo, user_zoo_path


_PER_WORKER = 60  # models per worker process before a fresh one takes over


def zoo_names(zoo: str = "all") -> list[str]:
    """Qualified names (``tv:NAME``, ``timm:NAME``, ``keras:NAME``, ``hf:TYPE``) of the models a zoo cache covers.

    ``hf`` (and ``all``) lists the installed transformers' model types (none without transformers).
    """
    if zoo not in ZOOS:
        raise UnknownNameError("zoo", zoo, ZOOS)
    names = []
    if zoo in ("torchvision", "all"):
        import torchvision.models as tvm
        names += [f"tv:{n}" for n in sorted(tvm.list_models(module=tvm))]
    if zoo in ("timm", "all"):
        import timm
        names += [f"timm:{n}" for n in timm.list_models()]
    if zoo in ("keras", "all"):
        from ..models.keras_source import KERAS_NAMES
        names += [f"keras:{n}" for n in KERAS_NAMES]
    if zoo in ("hf", "all"):
        from ..models.hf_source import hf_names
        names += [f"hf:{n}" for n in hf_names()]
    return names


class _TimedOut(BaseException):
    """Raised by the alarm of ``extract_record(timeout_s=...)`` (a BaseException: no fallback catches it)."""


# Modules whose code takes process-wide locks: an exception raised between a lock's acquire and the `try` that
# releases it leaves the lock held by this thread for good (see `_safe_to_interrupt`).
_LOCKING_MODULES = ("logging", "importlib", "threading", "_weakrefset", "weakref", "concurrent")


def _safe_to_interrupt(frame) -> bool:
    """Whether the alarm may raise in ``frame``: not while any frame on its stack runs in :data:`_LOCKING_MODULES`.

    An asynchronous exception inside ``logging.getLogger`` (which a model build calls often) once left
    logging's module lock held by the main thread: the next thread that logged, dask's event loop in the
    test suite, waited for it forever. Those sections are short, so the alarm just rings again shortly.
    """
    while frame is not None:
        if frame.f_globals.get("__name__", "").split(".")[0] in _LOCKING_MODULES:
            return False
        frame = frame.f_back
    return True


def _alarm(seconds: float | None):
    """A context in which ``_TimedOut`` is raised after ``seconds`` (no limit off the main thread or off POSIX).

    The exception is raised only where it cannot leave a lock held (see :func:`_safe_to_interrupt`); inside
    logging or an import it waits for 10 ms at a time until the code is out of there.
    """
    import contextlib
    import signal
    import threading
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def limit():
        def ring(_sig, frame):
            if not _safe_to_interrupt(frame):
                signal.setitimer(signal.ITIMER_REAL, 0.01)
                return
            raise _TimedOut()
        old = signal.signal(signal.SIGALRM, ring)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return limit()


def extract_record(name: str, timeout_s: float | None = None) -> dict:
    """Extract one model for the zoo cache; never raises (failures become a record with a reason).

    Args:
        name: a qualified model name.
        timeout_s: give up on a model whose build and trace take longer (a failure record saying so).
    """
    import torch
    torch.set_num_threads(1)
    from ..tracing import trace
    try:
        with warnings.catch_warnings(), _alarm(timeout_s):
            warnings.simplefilter("ignore")
            seqs = trace(name)  # one forward pass: the torch and ops profiles together
    except _TimedOut:
        return {"name": name, "ok": False, "reason": f"timeout: building and tracing took over {timeout_s:g} s"}
    except Exception as exc:  # a model that cannot even be built: keep the reason
        return {"name": name, "ok": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    seq, ops = seqs["torch"], seqs["ops"]
    # keras-like positions into the torch sequence (a Keras model's layer list is already Keras's).
    keras_paths = (range(len(seq)) if seq.source == "keras"
                   else apply_profile(seq.tokens, range(len(seq)), "keras-like")[1])
    return {"name": name, "ok": True, "tokens": list(seq.tokens), "paths": list(seq.paths),
            "keras": list(keras_paths), "ops": list(ops.tokens), "ops_paths": list(ops.paths),
            "order": seq.order, "source": seq.source,
            "input_size": list(seq.input_size), "reason": seq.warnings[0] if seq.warnings else ""}


_RECORD_FIELDS = {"tokens": list, "paths": list, "keras": list, "ops": list, "ops_paths": list, "order": str,
                  "source": str, "input_size": list, "reason": str}


def _record_problem(rec) -> str | None:
    """Why a checkpoint record cannot be used (None when it can): the shape ``extract_record`` writes."""
    if not isinstance(rec, dict) or not isinstance(rec.get("name"), str) or not isinstance(rec.get("ok"), bool):
        return "not a record with a name and an ok flag"
    if not rec["ok"]:
        return None if isinstance(rec.get("reason"), str) else "a failure without a reason"
    for key, kind in _RECORD_FIELDS.items():
        if not isinstance(rec.get(key), kind):
            return f"field {key!r} missing or not a {kind.__name__}"
    toks, paths, keras = rec["tokens"], rec["paths"], rec["keras"]
    if not all(isinstance(t, str) for t in toks) or not all(isinstance(p, str) for p in paths):
        return "tokens and paths must be text"
    if len(paths) != len(toks):
        return "not one path per token"
    ops, ops_paths = rec["ops"], rec["ops_paths"]
    if not all(isinstance(t, str) for t in ops) or not all(isinstance(p, str) for p in ops_paths):
        return "ops tokens and paths must be text"
    if len(ops_paths) != len(ops):
        return "not one path per ops token"
    if not all(type(i) is int and 0 <= i < len(toks) for i in keras) or any(a >= b for a, b in zip(keras, keras[1:])):
        return "keras indices are not increasing positions in the tokens"
    if rec["order"] not in ORDERS:
        return f"unknown order {shorten(repr(rec['order']), 30)}"
    size = rec["input_size"]
    if not 1 <= len(size) <= 4 or not all(type(i) is int and i > 0 for i in size):
        return "input size is not one to four positive integers"
    return None


def _flock(fd: int, op: int) -> bool:
    """``fcntl.flock``; False where locks are unsupported (Windows, some network file systems)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        fcntl.flock(fd, op)
        return True
    except BlockingIOError:
        raise
    except OSError:  # pragma: no cover - e.g. ENOLCK on NFS
        return False


class Checkpoint:
    """The append-only log of finished models, shared by every build writing the same cache.

    Each record is one line written with a single ``O_APPEND`` write, so builds running at the
    same time never overwrite or split each other's lines.  Every build holds a shared lock on
    the log while it runs; a finishing build removes the log only when no other build holds
    it, so a concurrent build keeps its checkpoints (and can still resume after a kill).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None
        self.locked = False

    def __enter__(self) -> "Checkpoint":
        import fcntl
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            except OSError as exc:
                raise OutputError(f"cannot write the checkpoint {self.path}: {exc.strerror or exc}") from None
            self.locked = _flock(fd, fcntl.LOCK_SH)
            try:  # a build that finished between our open and our lock may have removed the file
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same or not self.locked:
                break
            os.close(fd)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # also releases the lock
            self.fd = None

    def read(self) -> dict[str, dict]:
        """The usable records by name; damaged lines are skipped with one warning naming the file."""
        done: dict[str, dict] = {}
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return done
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline; else a line still being written or cut
        bad = []
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                problem = _record_problem(rec)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError too
                problem = f"not JSON: {type(exc).__name__}"
            if problem:
                bad.append(f"line {no}: {problem}")
            else:
                done[rec["name"]] = rec
        if tail.strip():
            bad.append(f"line {len(lines) + 1}: incomplete (a killed build, or one still writing it)")
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            warnings.warn(f"zoo build checkpoint {self.path}: skipped {len(bad)} damaged line(s) "
                          f"({'; '.join(bad[:3])}{more}); those models are extracted again",
                          RuntimeWarning, stacklevel=2)
        return done

    def append(self, rec: dict) -> None:
        """Add one record as one whole line (a single ``O_APPEND`` write)."""
        data = (json.dumps(rec) + "\n").encode()
        while data:  # regular files take it all at once; loop only for the exotic short write
            data = data[os.write(self.fd, data):]

    def finish(self) -> bool:
        """Remove the log unless another build is still using it; True when removed."""
        import fcntl
        if self.locked:
            try:
                _flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another build holds it: its checkpoints stay
        self.path.unlink(missing_ok=True)
        return True


def build_zoo(out: Path | None = None, workers: int = 1, zoo: str = "all", names: Iterable[str] | None = None,
              progress: bool = True, timeout_s: float | None = None) -> tuple[Path, list[dict]]:
    """Extract every zoo model (resumable) and write the versioned cache.

    Args:
        out: the cache file (default: the package data if writable, else ``user_zoo_path()``; building
            part of the zoo (``zoo`` other than ``all``, or ``names``) into that default merges the part
            into it, the other models stay).
        workers: extraction processes (1: in this process).
        zoo: ``torchvision``, ``timm``, ``keras``, ``hf`` or ``all``; ignored when ``names`` is given.
        names: qualified names to extract instead of a whole zoo.
        progress: show a progress bar.
        timeout_s: skip (as a failure) a model whose build and trace take longer than this.

    Returns:
        The written path and the models not extracted in execution order (``{name, reason}``).
    """
    from tqdm import tqdm
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"workers must be a whole number ≥ 1, got {shorten(repr(workers), 30)}")
    default_out = out is None
    out = Path(out) if out else (PACKAGED if os.access(PACKAGED.parent, os.W_OK) else user_zoo_path())
    check_output_file(out)  # a bad -o fails now, not after the 14-minute extraction
    if default_out and (names is not None or zoo != "all") and out.exists():
        # Part of the zoo into the default cache: build the part beside it and merge it in, so
        # `archsim zoo build --zoo hf` refreshes the hf models instead of dropping all the others.
        part = out.with_name(f"{out.name}.part-{zoo if names is None else 'names'}.json.gz")
        _, problems = build_zoo(part, workers, zoo, names, progress, timeout_s)
        merge_zoo(out, part)
        part.unlink(missing_ok=True)
        load_zoo.cache_clear()
        return out, problems
    todo = list(dict.fromkeys(names)) if names is not None else zoo_names(zoo)
    if not todo:
        raise UsageError("no models to build: give at least one name")
    versions = dict(library_versions())
    if any(n.startswith("hf:") for n in todo):  # hf: architectures are transformers' code
        versions["transformers"] = installed_version("transformers") or "absent"
    ckpt = out.with_name(out.name + f".{'-'.join(versions.values())}.partial.jsonl")
    extract = extract_record if timeout_s is None else functools.partial(extract_record, timeout_s=timeout_s)
    with Checkpoint(ckpt) as log:
        done = log.read()
        pending = [n for n in todo if n not in done]
        with tqdm(total=len(todo), initial=len(todo) - len(pending), desc="zoo build", unit="model",
                  disable=not progress) as bar:
            def keep(rec: dict, persist: bool = True) -> None:
                done[rec["name"]] = rec
                if persist:
                    log.append(rec)
                bar.update()
                bar.set_postfix_str(rec["name"][-30:])
            if workers == 1:
                for n in pending:
                    keep(extract(n))
            else:
                import multiprocessing as mp
                # A fresh pool of interpreters per round keeps memory from creeping up.  (Not
                # max_tasks_per_child: on Python 3.11 the executor hangs when it replaces a worker.)
                for start in range(0, len(pending), workers * _PER_WORKER):
                    chunk = pending[start:start + workers * _PER_WORKER]
                    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                        futs = {pool.submit(extract, n): n for n in chunk}
                        for f in as_completed(futs):
                            try:
                                keep(f.result())
                            except Exception as exc:  # a worker that died (e.g. out of memory)
                                # Not checkpointed: the next build tries these models again.
                                keep({"name": futs[f], "ok": False,
                                      "reason": f"worker died: {type(exc).__name__}: {exc}"}, persist=False)
        records = [done[n] for n in todo]
        if not any(r["ok"] for r in records):
            reasons = "; ".join(f"{shorten(r['name'], 40)}: {shorten(r['reason'], 80)}" for r in records[:3])
            raise ArchsimError(f"no model could be extracted ({reasons}); {out} was not written")
        vocab = sorted({t for r in records if r["ok"] for t in (*r["tokens"], *r["ops"])})
        idx = {t: i for i, t in enumerate(vocab)}
        models = {}
        for r in records:
            if r["ok"]:
                models[r["name"]] = {"t": [idx[t] for t in r["tokens"]], "p": r["paths"], "k": r["keras"],
                                     "x": [idx[t] for t in r["ops"]], "q": r["ops_paths"],
                                     "o": r["order"], "s": r["source"], "i": r["input_size"], "r": r["reason"]}
        failed = [{"name": r["name"], "reason": r["reason"]} for r in records if not r["ok"]]
        doc = {"format": FORMAT, "versions": versions, "vocab": vocab, "models": models, "failed": failed}
        data = gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9, mtime=0)
        atomic_write(out, data)
        log.finish()
    load_zoo.cache_clear()
    not_exec = [{"name": n, "reason": m["r"]} for n, m in models.items() if m["o"] == "definition"]
    return out, failed + not_exec


def merge_zoo(into: Path, extra: Path, out: Path | None = None, traced_only: bool = False) -> tuple[Path, list[dict]]:
    """Add the models of the zoo cache ``extra`` to the zoo cache ``into``, without extracting anything.

    Both files are read and validated; the merged document is validated and written atomically.

    Args:
        into: the cache receiving the models (e.g. the packaged ``zoo.json.gz``).
        extra: a cache from ``build_zoo(names=...)``; its models replace those of the same name.
        out: where to write (default: ``into``).
        traced_only: list ``extra``'s models that fell back to definition order as failures
            (with their reason) instead of adding them.

    Returns:
        The written path and the failures taken over from ``extra`` (``{name, reason}``).

    Raises:
        UsageError: the two caches were built with different torch/torchvision/timm versions.
    """
    from .store import _read, validate
    base, more = _read(Path(into)), _read(Path(extra))
    out = Path(out) if out else Path(into)
    check_output_file(out)
    clash = [f"{k} {base.versions.get(k)} vs {v}" for k, v in more.versions.items()
             if k in base.versions and base.versions[k] != v]
    if clash:
        raise UsageError(f"cannot merge {extra} into {into}: built with different libraries ({', '.join(clash)})")
    records = {n: {**m, "t": [base.vocab[i] for i in m["t"]], "x": [base.vocab[i] for i in m["x"]]}
               for n, m in base.models.items()}
    failed = {f["name"]: f for f in base.failed}
    added = []
    for n, m in more.models.items():
        records.pop(n, None)
        failed.pop(n, None)
        if traced_only and m["o"] == "definition":
            # not in the cache at all, so not "in definition order" either: only why the pass failed
            failed[n] = {"name": n, "reason": m["r"].replace("; tokens are in definition order", "")}
            added.append(failed[n])
            continue
        records[n] = {**m, "t": [more.vocab[i] for i in m["t"]], "x": [more.vocab[i] for i in m["x"]]}
    for f in more.failed:
        records.pop(f["name"], None)
        failed[f["name"]] = f
        added.append(f)
    vocab = sorted({t for m in records.values() for t in (*m["t"], *m["x"])})
    idx = {t: i for i, t in enumerate(vocab)}
    models = {n: {**m, "t": [idx[t] for t in m["t"]], "x": [idx[t] for t in m["x"]]} for n, m in records.items()}
    doc = {"format": FORMAT, "versions": {**base.versions, **more.versions}, "vocab": vocab, "models": models,
           "failed": list(failed.values())}
    validate(doc)
    atomic_write(out, gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=9, mtime=0))
    load_zoo.cache_clear()
    return out, added

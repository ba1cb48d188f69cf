"""Benchmark records on disk: one JSON per (arch, method, seed) plus the folder's ``config.json``.

A record counts only when it parses and holds the fields the sweep and the tables rely on (see
:func:`check_record`); a truncated or hand-damaged file is named in a warning and treated as
missing, so a resumed sweep runs it again instead of counting it as finished forever.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Callable

from archsim._io import atomic_write
from neurn.errors import BenchError, ConfigMismatch, InvalidArgument

CONFIG_NAME = "config.json"
STATUSES = ("ok", "failed")


class RecordWarning(UserWarning):
    """A record file that is skipped (or rerun) because it is damaged; the message names the file."""


Notify = Callable[[str], None]


def _warn(message: str) -> None:
    warnings.warn(message, RecordWarning, stacklevel=3)


def record_name(arch: str, method: str, seed: int) -> str:
    """File name of one run's record: ``<arch>-<method>-s<seed>.json``."""
    return f"{arch}-{method}-s{seed}.json"


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON via a temp file in the same folder + ``os.replace``, so readers never see half a file."""
    return atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_record(path: str | Path) -> dict[str, Any]:
    """Load one JSON file as is (no checks; see :func:`load_record`)."""
    with open(path) as f:
        return json.load(f)


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``BenchError`` naming the file when it cannot be read or parsed."""
    try:
        data = read_record(path)
    except UnicodeDecodeError:
        raise BenchError(f"{path} is damaged: not a UTF-8 text file") from None
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path} is damaged: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except OSError as exc:
        raise BenchError(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise BenchError(f"{path} is damaged: expected a JSON object, found {type(data).__name__}")
    return data


def check_record(rec: Any) -> str | None:
    """Why ``rec`` is not a usable run record, or None when it is.

    Required: ``arch``/``method`` (text), ``seed`` (int >= 0), ``status`` (ok/failed); an ``ok``
    record also needs ``accuracy``, a mapping from domain name to a number (NaN or null accuracies
    are allowed here: the tables flag them instead of dropping them) holding every target of its
    ``config`` (a missing one would make ``avg`` a mean over fewer domains than its pair's);
    ``config``, when present, is an object; ``source_curve`` and ``loss_curve``, when present, are
    lists of ``[iteration, number]`` with increasing iterations.

    >>> check_record({"arch": "a", "method": "erm", "seed": 0, "status": "ok", "accuracy": {"mnist": 0.9},
    ...               "config": {"targets": ["mnist", "svhn"]}})
    "accuracy lacks the config's target(s) svhn"
    >>> check_record({"arch": "a", "method": "erm", "seed": 0, "status": "ok", "accuracy": {"mnist": 0.9},
    ...               "source_curve": [[50, 0.5], [100]]})
    'source_curve must be a list of [iteration, number] pairs with increasing iterations'
    """
    if not isinstance(rec, dict):
        return f"expected a JSON object, found {type(rec).__name__}"
    missing = [k for k in ("arch", "method", "seed", "status") if k not in rec]
    if missing:
        return f"missing {'/'.join(missing)}"
    if not isinstance(rec["arch"], str) or not isinstance(rec["method"], str):
        return "arch and method must be text"
    if isinstance(rec["seed"], bool) or not isinstance(rec["seed"], int) or rec["seed"] < 0:
        return f"seed must be a non-negative integer, found {rec['seed']!r}"
    if rec["status"] not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}, found {rec['status']!r}"
    if "config" in rec and not isinstance(rec["config"], dict):
        return "config must be an object"
    for key in ("source_curve", "loss_curve"):
        if key in rec and not _is_curve(rec[key]):
            return f"{key} must be a list of [iteration, number] pairs with increasing iterations"
    if rec["status"] == "ok":
        acc = rec.get("accuracy")
        if not isinstance(acc, dict) or not acc:
            return "an ok record needs a non-empty accuracy object"
        for dom, a in acc.items():
            if a is not None and (isinstance(a, bool) or not isinstance(a, (int, float))):
                return f"accuracy on {dom!r} is not a number ({a!r})"
        targets = rec.get("config", {}).get("targets")
        missing = [t for t in targets if t not in acc] if isinstance(targets, list) else []
        if missing:
            return f"accuracy lacks the config's target(s) {', '.join(map(str, missing))}"
    return None


def _is_curve(curve: Any) -> bool:
    """True for ``[[iteration, number], ...]`` with int iterations in increasing order (empty is fine)."""
    if not isinstance(curve, list):
        return False
    last = None
    for point in curve:
        if not (isinstance(point, list) and len(point) == 2 and isinstance(point[0], int)
                and not isinstance(point[0], bool) and isinstance(point[1], (int, float))
                and not isinstance(point[1], bool)):
            return False
        if last is not None and point[0] <= last:
            return False
        last = point[0]
    return True


def load_record(path: str | Path, expect: tuple[str, str, int] | None = None) -> dict[str, Any]:
    """One validated record; ``BenchError`` with one line naming the file when it is damaged.

    Args:
        path: the record file.
        expect: ``(arch, method, seed)`` the file name promises; a record holding another run is damaged.

    Returns:
        The record dict.
    """
    path = Path(path)
    rec = _read_json_object(path)
    why = check_record(rec)
    if why is None and expect is not None and (rec["arch"], rec["method"], rec["seed"]) != tuple(expect):
        why = f"holds {rec['arch']}/{rec['method']}/s{rec['seed']}, not {'/'.join(map(str, expect[:2]))}/s{expect[2]}"
    if why is not None:
        raise BenchError(f"{path} is not a valid benchmark record: {why}")
    return rec


def iter_records(folder: str | Path, notify: Notify | None = None) -> list[dict[str, Any]]:
    """All valid run records in a results folder (``config.json`` and temp files excluded), sorted by name.

    A damaged record never stops the listing: ``notify`` (default: a ``RecordWarning``) gets one line
    naming the file and why, and the file is left out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidArgument(f"results folder {str(folder)!r} does not exist")
    out = []
    for p in sorted(folder.glob("*.json")):
        if p.name == CONFIG_NAME or p.name.startswith("."):
            continue
        try:
            rec = load_record(p)
            expected = record_name(rec["arch"], rec["method"], rec["seed"])
            if p.name != expected:  # one file per run: a copied or renamed record would count twice
                raise BenchError(f"{p} is not a valid benchmark record: it holds {rec['arch']}/{rec['method']}/"
                                 f"s{rec['seed']}, whose file is {expected}")
        except BenchError as exc:
            (notify or _warn)(f"skipping {exc}")
            continue
        out.append(rec)
    return out


def is_finite_number(a: Any) -> bool:
    """True for an int/float accuracy that is neither NaN nor infinite (bools and None are not)."""
    return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)


def diff_config(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences between two protocol configs (empty when equal)."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def read_config(folder: str | Path) -> dict[str, Any] | None:
    """The folder's ``config.json`` (None when absent); ``BenchError`` naming it when it is damaged."""
    path = Path(folder) / CONFIG_NAME
    if not path.exists():
        return None
    try:
        return _read_json_object(path)
    except BenchError as exc:
        raise BenchError(f"{exc}; delete it (it is rewritten from the records' own config) "
                         "or use another --out folder") from None


def check_or_write_config(folder: str | Path, config: dict[str, Any], write: bool = True) -> None:
    """Refuse a folder whose ``config.json`` or records hold another protocol; else write ``config.json``
    (unless ``write`` is false: a dry run checks and leaves the folder as it is)."""
    folder = Path(folder)
    old = read_config(folder)
    if old is not None:
        diffs = diff_config(old, config)
        if diffs:
            raise ConfigMismatch(f"{folder} holds records from a different config ({'; '.join(diffs)}); "
                             "use another --out folder instead of mixing them")
    # The records too, even when config.json matches: a record copied in from another sweep would
    # otherwise count as a finished run of this one.
    if folder.is_dir():
        # Damaged records are reported (and rerun) by the sweep's plan; no second warning here.
        for rec in iter_records(folder, notify=lambda m: None):
            diffs = diff_config(rec.get("config", {}), config)
            if diffs:
                raise ConfigMismatch(f"{folder} holds records from a different config ({'; '.join(diffs)}, in "
                                     f"{record_name(rec['arch'], rec['method'], rec['seed'])}); use another "
                                     "--out folder instead of mixing them")
    if write and old is None:
        write_json_atomic(folder / CONFIG_NAME, config)

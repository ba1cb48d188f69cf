"""Benchmark records on disk: one JSON per (arch, method, seed) plus the folder's ``config.json``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from archsim._io import atomic_write
from neurn.errors import BenchError, ConfigMismatch, InvalidArgument

CONFIG_NAME = "config.json"


def record_name(arch: str, method: str, seed: int) -> str:
    """File name of one run's record: ``<arch>-<method>-s<seed>.json``."""
    return f"{arch}-{method}-s{seed}.json"


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON via a temp file in the same folder + ``os.replace``, so readers never see half a file."""
    return atomic_write(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_record(path: str | Path) -> dict[str, Any]:
    """Load one record JSON."""
    with open(path) as f:
        return json.load(f)


def iter_records(folder: str | Path) -> list[dict[str, Any]]:
    """All run records in a results folder (``config.json`` and temp files excluded), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidArgument(f"results folder {str(folder)!r} does not exist")
    out = []
    for p in sorted(folder.glob("*.json")):
        if p.name == CONFIG_NAME or p.name.startswith("."):
            continue
        rec = read_record(p)
        if not {"arch", "method", "seed", "status"} <= rec.keys():
            raise BenchError(f"{p} is not a benchmark record (missing arch/method/seed/status)")
        out.append(rec)
    return out


def diff_config(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences between two protocol configs (empty when equal)."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


def check_or_write_config(folder: str | Path, config: dict[str, Any]) -> None:
    """Refuse a folder whose ``config.json`` or records hold another protocol; else write ``config.json``."""
    folder = Path(folder)
    cfg_path = folder / CONFIG_NAME
    if cfg_path.exists():
        old = read_record(cfg_path)
        diffs = diff_config(old, config)
        if diffs:
            raise ConfigMismatch(f"{folder} holds records from a different config ({'; '.join(diffs)}); "
                             "use another --out folder instead of mixing them")
        return
    # No config.json but records: compare with what they recorded, so old runs are never mixed in.
    if folder.is_dir():
        for rec in iter_records(folder):
            diffs = diff_config(rec.get("config", {}), config)
            if diffs:
                raise ConfigMismatch(f"{folder} holds records from a different config ({'; '.join(diffs)}); "
                                 "use another --out folder instead of mixing them")
    write_json_atomic(cfg_path, config)

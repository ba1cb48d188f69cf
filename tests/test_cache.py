"""Token cache: hits, atomic files, corrupt and stale entries rebuilt."""
from __future__ import annotations

import json

import pytest

from archsim import tokencache as cache


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSIM_CACHE", str(tmp_path))
    return tmp_path


def test_second_call_is_served_from_disk(fresh_cache, monkeypatch):
    seq = cache.cached_extract("vgg11")
    files = list(fresh_cache.glob("vgg11-torch-*.json"))
    assert len(files) == 1
    import sys
    ex = sys.modules["archsim.tracing"]
    monkeypatch.setattr(ex, "extract", lambda *a, **k: pytest.fail("cache miss"))
    assert cache.cached_extract("vgg11") == seq


def test_corrupt_entry_is_rebuilt(fresh_cache):
    seq = cache.cached_extract("vgg11", "keras-like")
    (path,) = fresh_cache.glob("vgg11-keras-like-*.json")
    path.write_text(path.read_text()[:50])  # truncated, as after a crash mid-write elsewhere
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = cache.cached_extract("vgg11", "keras-like")
    assert again == seq
    assert json.loads(path.read_text())["payload"]["tokens"] == list(seq.tokens)


def test_tampered_entry_fails_checksum(fresh_cache):
    cache.cached_extract("vgg11")
    (path,) = fresh_cache.glob("vgg11-torch-*.json")
    doc = json.loads(path.read_text())
    doc["payload"]["tokens"][0] = "Linear"
    path.write_text(json.dumps(doc))
    with pytest.warns(RuntimeWarning):
        assert cache.cached_extract("vgg11").tokens[0] == "Conv2d"


def test_key_changes_with_library_versions(fresh_cache, monkeypatch):
    key = cache.cache_key("vgg11", "torch", None)
    assert {"torch", "torchvision", "timm", "tokenizer"} <= set(key)
    seq = cache.cached_extract("vgg11")
    monkeypatch.setattr(cache, "library_versions", lambda: {"torch": "0.0", "torchvision": "0.0", "timm": "0.0"})
    assert cache.load(cache.cache_key("vgg11", "torch", None)) is None  # stale: another torch
    cache.store(cache.cache_key("vgg11", "torch", None), seq)
    assert len(list(fresh_cache.glob("vgg11-torch-*.json"))) == 2


def test_atomic_write_leaves_no_temp_files(fresh_cache):
    cache.atomic_write(fresh_cache / "x.json", "{}")
    assert [p.name for p in fresh_cache.iterdir()] == ["x.json"]


def test_definition_order_fallback_warns_again_when_served_from_cache(fresh_cache, monkeypatch):
    # vgg11 at 16×16: the fifth max-pool gets a 1×1 map, so tracing falls back to definition order
    with pytest.warns(RuntimeWarning, match="vgg11: forward pass .* definition order"):
        seq = cache.cached_extract("vgg11", "torch", (3, 16, 16))
    assert seq.order == "definition" and len(seq.warnings) == 1
    import sys
    monkeypatch.setattr(sys.modules["archsim.tracing"], "extract", lambda *a, **k: pytest.fail("cache miss"))
    for _ in range(2):  # every reuse, not only the first
        with pytest.warns(RuntimeWarning) as rec:
            again = cache.cached_extract("vgg11", "torch", (3, 16, 16))
        assert [str(w.message) for w in rec] == list(seq.warnings)
        assert again == seq and again.warnings == seq.warnings and again.order == "definition"


def test_definition_order_warning_in_compare_and_tokens_output(fresh_cache):
    """CLI: each fallback is reported exactly once, whether extracted now or served from the cache."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    with pytest.warns(RuntimeWarning):
        cache.cached_extract("vgg11", "torch", (3, 16, 16))  # vgg11 cached; vgg13 will be extracted
    exe = str(Path(sys.executable).parent / "archsim")
    env = {**os.environ, "ARCHSIM_CACHE": str(fresh_cache)}

    def warned(r, name):
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith(f"warning: {name}: forward pass")]
        return len(lines), lines

    r = subprocess.run([exe, "compare", "vgg11", "vgg13", "--input-size", "16"], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert warned(r, "vgg11")[0] == 1 and warned(r, "vgg13")[0] == 1, r.stderr
    assert "definition order" in r.stdout
    r = subprocess.run([exe, "tokens", "vgg13", "--input-size", "16", "--json"], capture_output=True, text=True,
                       env=env, timeout=300)  # now from the cache
    assert r.returncode == 0 and warned(r, "vgg13")[0] == 1, r.stderr
    assert json.loads(r.stdout)["order"] == "definition"

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
    seq = cache.cached_extract("vgg11", "keras")
    (path,) = fresh_cache.glob("vgg11-keras-*.json")
    path.write_text(path.read_text()[:50])  # truncated, as after a crash mid-write elsewhere
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = cache.cached_extract("vgg11", "keras")
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

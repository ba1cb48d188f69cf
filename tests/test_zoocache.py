"""Zoo cache: equal to fresh extraction, resumable build, versions checked, shipped file sane."""
from __future__ import annotations

import gzip
import json
import random

import pytest

from archsim.zoo import build as zoobuild
from archsim.zoo import store as zoocache
from archsim.errors import ArchsimError
from archsim.tracing import extract

SMALL = ["tv:vgg11", "tv:resnet18", "timm:vit_tiny_patch16_224"]


@pytest.fixture(scope="module")
def small_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "zoo.json.gz"
    path, problems = zoobuild.build_zoo(out, names=SMALL, progress=False)
    zoocache.load_zoo.cache_clear()
    return zoocache.load_zoo(str(path)), problems


def test_cache_equals_fresh_extraction(small_zoo):
    z, problems = small_zoo
    assert problems == [] and sorted(z.models) == sorted(SMALL)
    for name in SMALL:
        for profile in ("torch", "keras"):
            fresh = extract(name, profile=profile)
            cached = z.seq(name, profile)
            assert cached.tokens == fresh.tokens and cached.paths == fresh.paths
            assert cached.order == "execution"
    assert z.names("torchvision") == ["tv:vgg11", "tv:resnet18"]


def test_version_mismatch_is_reported(small_zoo, monkeypatch):
    z, _ = small_zoo
    assert z.version_mismatch() is None
    monkeypatch.setattr(zoocache, "library_versions", lambda: {"torch": "9.9", "torchvision": "0.29.1", "timm": "1.0.31"})
    msg = z.version_mismatch()
    assert "torch" in msg and "9.9" in msg and "archsim zoo build" in msg
    zoocache.load_zoo.cache_clear()
    with pytest.warns(RuntimeWarning, match="archsim zoo build"):
        zoocache.load_zoo(str(z.path))
    zoocache.load_zoo.cache_clear()


def test_build_resumes_from_checkpoint_and_reports_failures(tmp_path, monkeypatch):
    out = tmp_path / "zoo.json.gz"
    versions = "-".join(zoobuild.library_versions().values())
    ckpt = out.with_name(out.name + f".{versions}.partial.jsonl")
    ckpt.write_text(json.dumps(zoobuild.extract_record("tv:vgg11")) + "\n" + '{"name": "tv:cut-by-a-ki')
    real = zoobuild.extract_record

    def guarded(name):
        assert name != "tv:vgg11", "a finished model was extracted again"
        return real(name)

    monkeypatch.setattr(zoobuild, "extract_record", guarded)
    path, problems = zoobuild.build_zoo(out, names=["tv:vgg11", "tv:no_such_model"], progress=False)
    assert not ckpt.exists()
    doc = json.loads(gzip.decompress(path.read_bytes()))
    assert list(doc["models"]) == ["tv:vgg11"]
    assert problems and problems[0]["name"] == "tv:no_such_model" and "unknown model" in problems[0]["reason"]


def test_unreadable_cache_names_the_fix(tmp_path):
    bad = tmp_path / "zoo.json.gz"
    bad.write_bytes(b"not gzip")
    zoocache.load_zoo.cache_clear()
    with pytest.raises(ArchsimError, match="archsim zoo build"):
        zoocache.load_zoo(str(bad))
    zoocache.load_zoo.cache_clear()


@pytest.mark.skipif(not zoocache.PACKAGED.exists(), reason="no shipped zoo cache")
def test_shipped_cache_matches_fresh_extraction_for_a_sample():
    zoocache.load_zoo.cache_clear()
    z = zoocache.load_zoo(str(zoocache.PACKAGED))
    assert z.version_mismatch() is None, z.version_mismatch()
    assert len(z.names("torchvision")) >= 70 and len(z.names("timm")) >= 1000
    # every model is in execution order or listed with a reason
    for name, m in z.models.items():
        assert m["o"] == "execution" or m["r"], name
    for f in z.failed:
        assert f["reason"], f["name"]
    rng = random.Random(0)
    for name in rng.sample(z.names("torchvision"), 3) + rng.sample(z.names("timm"), 4):
        fresh = extract(name)
        assert z.seq(name).tokens == fresh.tokens, name
        assert z.seq(name, "keras").tokens == fresh.with_profile("keras").tokens, name
    zoocache.load_zoo.cache_clear()

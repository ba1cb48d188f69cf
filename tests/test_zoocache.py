"""Zoo cache: equal to fresh extraction, resumable build, versions checked, damaged files, concurrent builds."""
from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archsim._io import OutputError
from archsim.cli import cli
from archsim.errors import ArchsimError, DataError
from archsim.tracing import extract
from archsim.zoo import build as zoobuild
from archsim.zoo import store as zoocache

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
        for profile in ("torch", "keras-like"):
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
    with pytest.warns(RuntimeWarning, match="line 2: incomplete"):  # the line cut by a kill is redone
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
    # every model is in execution order (Keras models: their graph order) or listed with a reason
    for name, m in z.models.items():
        assert m["o"] == ("graph" if name.startswith("keras:") else "execution") or m["r"], name
    assert len(z.names("keras")) == 40
    for f in z.failed:
        assert f["reason"], f["name"]
    rng = random.Random(0)
    for name in rng.sample(z.names("torchvision"), 3) + rng.sample(z.names("timm"), 4):
        fresh = extract(name)
        assert z.seq(name).tokens == fresh.tokens, name
        assert z.seq(name, "ops").tokens == extract(name, profile="ops", cache=True).tokens, name
        assert z.seq(name, "keras-like").tokens == fresh.with_profile("keras-like").tokens, name
    zoocache.load_zoo.cache_clear()


# ---------------------------------------------------------------------------------------------
# Damaged caches: validated after decompression; user zoo falls back, shipped/explicit → DataError
# ---------------------------------------------------------------------------------------------

def _doc(small_zoo) -> dict:
    z, _ = small_zoo
    return json.loads(gzip.decompress(z.path.read_bytes()))


def _write(path, doc) -> str:
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return str(path)


def _first(doc) -> dict:
    return doc["models"][next(iter(doc["models"]))]


DAMAGE = {
    "models is an empty list": lambda d: d.update(models=[]),
    "models is an empty dict": lambda d: d.update(models={}),
    "vocab is not a list of str": lambda d: d.update(vocab=[1, 2, 3]),
    "token id out of range": lambda d: _first(d)["t"].__setitem__(0, len(d["vocab"])),
    "negative token id": lambda d: _first(d)["t"].__setitem__(0, -1),
    "float token id": lambda d: _first(d)["t"].__setitem__(0, 1.0),
    "paths shorter than tokens": lambda d: _first(d)["p"].pop(),
    "keras index out of range": lambda d: _first(d)["k"].append(10 ** 6),
    "keras indices not increasing": lambda d: _first(d)["k"].reverse(),
    "unknown order": lambda d: _first(d).update(o="random"),
    "bad input size": lambda d: _first(d).update(i=[3, 0]),
    "missing field": lambda d: _first(d).pop("p"),
    "failed not a list": lambda d: d.update(failed={"x": 1}),
    "format": lambda d: d.update(format=1),  # a zoo from before the ops profile
    "ops token id out of range": lambda d: _first(d)["x"].__setitem__(0, len(d["vocab"])),
    "ops paths shorter than ops tokens": lambda d: _first(d)["q"].pop(),
    "every field missing": lambda d: (d.clear(), d.update(x=1)) and None,
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_zoo_structure_is_one_line_naming_the_file(small_zoo, tmp_path, case):
    doc = _doc(small_zoo)
    DAMAGE[case](doc)
    path = _write(tmp_path / "zoo.json.gz", doc)
    zoocache.load_zoo.cache_clear()
    with pytest.raises(DataError) as err:
        zoocache.load_zoo(path)
    msg = str(err.value)
    assert path in msg and "archsim zoo build" in msg and "\n" not in msg and len(msg) < 400
    zoocache.load_zoo.cache_clear()


def test_not_gzip_and_not_json_are_data_errors(tmp_path):
    for name, data in (("a.json.gz", b"not gzip"), ("b.json.gz", gzip.compress(b"{cut")),
                       ("c.json.gz", gzip.compress(b"\xff\xfe")), ("d.json.gz", gzip.compress(b"[1, 2]"))):
        (tmp_path / name).write_bytes(data)
        zoocache.load_zoo.cache_clear()
        with pytest.raises(DataError, match=name):
            zoocache.load_zoo(str(tmp_path / name))
    zoocache.load_zoo.cache_clear()


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 10 ** 6) | st.floats(allow_nan=False) | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
                     max_leaves=6)


@given(data=st.data())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_damage_is_a_data_error_or_a_usable_zoo(small_zoo, tmp_path, data):
    """Property: replace any one value of the document by any JSON; loading either raises DataError
    or gives a zoo whose every model and profile can be read (never a traceback later)."""
    doc = _doc(small_zoo)
    name = data.draw(st.sampled_from(sorted(doc["models"])))
    target = data.draw(st.sampled_from(["top", "model", "t", "p", "k", "i"]))
    value = data.draw(_JSON)
    if target == "top":
        doc[data.draw(st.sampled_from(["format", "versions", "vocab", "models", "failed"]))] = value
    elif target == "model":
        doc["models"][name][data.draw(st.sampled_from("tpkosir"))] = value
    else:
        seq = doc["models"][name][target]
        if isinstance(seq, list) and seq:
            seq[data.draw(st.integers(0, len(seq) - 1))] = value
    path = _write(tmp_path / "fuzz.json.gz", doc)
    zoocache.load_zoo.cache_clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged "versions" only warns of a mismatch
            z = zoocache.load_zoo(path)
    except DataError as exc:
        assert path in str(exc)
        return
    finally:
        zoocache.load_zoo.cache_clear()
    for zoo in zoocache.ZOOS:
        for n in z.names(zoo):
            for profile in ("torch", "keras-like"):
                seq = z.seq(n, profile)
                assert len(seq.tokens) == len(seq.paths)


def test_damaged_user_zoo_falls_back_to_the_shipped_one_with_a_warning(tmp_path, monkeypatch):
    bad = tmp_path / "user" / "zoo.json.gz"
    bad.parent.mkdir()
    bad.write_bytes(gzip.compress(b'{"format": 2, "models": []}'))
    monkeypatch.setattr(zoocache, "user_zoo_path", lambda: bad)
    zoocache.load_zoo.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match=f"{bad}.*shipped zoo cache"):
            z = zoocache.load_zoo()
        assert z.path == zoocache.PACKAGED and len(z.models) > 1000
        # through the CLI: the shipped zoo is listed, exit 0
        zoocache.load_zoo.cache_clear()
        with pytest.warns(RuntimeWarning, match=str(bad)):
            res = CliRunner().invoke(cli, ["list", "--zoo", "torchvision", "--count"])
        assert res.exit_code == 0 and int(res.stdout) == len(z.names("torchvision"))
    finally:
        zoocache.load_zoo.cache_clear()


@pytest.mark.parametrize("where", ["shipped", "explicit"])
def test_damaged_shipped_zoo_is_an_error_not_an_empty_table(tmp_path, monkeypatch, where):
    bad = tmp_path / "zoo.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"format": 2, "versions": {}, "vocab": [], "models": [],
                                              "failed": []}).encode()))
    zoocache.load_zoo.cache_clear()
    try:
        if where == "shipped":
            monkeypatch.setattr(zoocache, "user_zoo_path", lambda: tmp_path / "absent.json.gz")
            monkeypatch.setattr(zoocache, "PACKAGED", bad)
            for args in (["list", "--zoo", "all"], ["zoo", "info"], ["nearest", "vgg11", "-k", "2"]):
                res = CliRunner().invoke(cli, args)
                assert res.exit_code == 1, (args, res.output)
                assert res.stderr.strip() == (f"archsim: error: zoo cache {bad} is damaged ('models' is empty); "
                                              "run `archsim zoo build` to rebuild it"), args
        else:
            with pytest.raises(DataError, match=f"{bad} is damaged"):
                zoocache.load_zoo(str(bad))
            with pytest.raises(DataError, match="does not exist"):
                zoocache.load_zoo(str(tmp_path / "missing.json.gz"))
    finally:
        zoocache.load_zoo.cache_clear()


# ---------------------------------------------------------------------------------------------
# zoo build: bad checkpoint lines, output checked first, no temp files, concurrent builds
# ---------------------------------------------------------------------------------------------

def _fake_record(name: str) -> dict:
    return {"name": name, "ok": True, "tokens": ["Conv2d", "ReLU", "Linear"], "paths": ["c", "r", "l"],
            "keras": [0, 2], "ops": ["Conv2d", "ReLU", "Linear"], "ops_paths": ["c", "r", "l"],
            "order": "execution", "source": "torchvision", "input_size": [3, 224, 224], "reason": ""}


def _ckpt(out):
    return out.with_name(out.name + f".{'-'.join(zoobuild.library_versions().values())}.partial.jsonl")


def test_bad_checkpoint_lines_are_skipped_with_a_warning(tmp_path, monkeypatch):
    out = tmp_path / "zoo.json.gz"
    good = _fake_record("tv:good")
    lines = [json.dumps([1, 2]),                                        # valid JSON, not a record
             json.dumps({"name": "tv:a", "ok": True}),                  # fields missing
             json.dumps({**_fake_record("tv:b"), "paths": ["only-one"]}),  # paths ≠ tokens
             json.dumps({**_fake_record("tv:c"), "keras": [7]}),        # keras index out of range
             json.dumps("text"), "{not json", json.dumps(good)]
    _ckpt(out).write_bytes("\n".join(lines).encode() + b"\n\xff\xfe garbage\n")
    extracted = []
    monkeypatch.setattr(zoobuild, "extract_record", lambda n: extracted.append(n) or _fake_record(n))
    with pytest.warns(RuntimeWarning, match=r"checkpoint .*partial\.jsonl: skipped 7 damaged line\(s\)"):
        path, problems = zoobuild.build_zoo(out, names=["tv:good", "tv:a", "tv:b", "tv:c"], progress=False)
    assert extracted == ["tv:a", "tv:b", "tv:c"]  # the good line was kept, the damaged ones redone
    zoocache.load_zoo.cache_clear()
    assert sorted(zoocache.load_zoo(str(path)).models) == ["tv:a", "tv:b", "tv:c", "tv:good"]
    zoocache.load_zoo.cache_clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo.json.gz"]  # no checkpoint, no .tmp left


def test_build_output_is_checked_before_extraction(tmp_path, monkeypatch):
    monkeypatch.setattr(zoobuild, "extract_record", lambda n: pytest.fail("extraction started"))
    monkeypatch.setattr(zoobuild, "zoo_names", lambda zoo="all": pytest.fail("extraction started"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile / "zoo.json.gz", tmp_path, "/proc/archsim-zoo.json.gz"):
        with pytest.raises(OutputError):
            zoobuild.build_zoo(out, progress=False)
    res = CliRunner().invoke(cli, ["zoo", "build", "-o", str(afile / "zoo.json.gz")])
    assert res.exit_code == 1 and res.stderr.startswith("archsim: error: ") and len(res.stderr.splitlines()) == 1
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_zoo_build_bad_output_e2e(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    exe = str(Path(sys.executable).parent / "archsim")
    r = subprocess.run([exe, "zoo", "build", "-o", str(afile / "zoo.json.gz")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip() == f"archsim: error: {afile} is a file, not a folder: choose another output folder"


def test_interleaved_builds_keep_each_others_checkpoints(tmp_path, monkeypatch):
    """Build B runs to completion while build A is mid-way; A is then killed and resumed.

    B must not remove the checkpoint A is appending to, so A's finished model is not redone."""
    out = tmp_path / "zoo.json.gz"
    calls = []

    class Killed(Exception):
        pass

    def extract(name):
        calls.append(name)
        if name == "tv:a1":  # while A works, B builds the same output and finishes
            zoobuild.build_zoo(out, names=["tv:b1"], progress=False)
        if name == "tv:a2" and calls.count("tv:a2") == 1:
            raise Killed
        return _fake_record(name)

    monkeypatch.setattr(zoobuild, "extract_record", extract)
    with pytest.raises(Killed):
        zoobuild.build_zoo(out, names=["tv:a1", "tv:a2"], progress=False)
    assert calls == ["tv:a1", "tv:b1", "tv:a2"]
    kept = [json.loads(line)["name"] for line in _ckpt(out).read_text().splitlines()]
    assert sorted(kept) == ["tv:a1", "tv:b1"]  # A's finished model and B's, neither lost
    path, _ = zoobuild.build_zoo(out, names=["tv:a1", "tv:a2"], progress=False)  # A resumes
    assert calls == ["tv:a1", "tv:b1", "tv:a2", "tv:a2"]  # tv:a1 was not extracted again
    assert not _ckpt(out).exists() and sorted(p.name for p in tmp_path.iterdir()) == ["zoo.json.gz"]


_APPENDER = """
import sys
from pathlib import Path
from archsim.zoo.build import Checkpoint
tag, path = sys.argv[1], Path(sys.argv[2])
with Checkpoint(path) as log:
    for i in range(150):  # ~40 kB lines: more than one pipe/buffer page each
        log.append({"name": f"tv:{tag}{i}", "ok": True, "tokens": ["Conv2d"] * 2000,
                    "paths": ["features.%d" % j for j in range(2000)], "keras": [0], "ops": [], "ops_paths": [],
                    "order": "execution",
                    "source": "torchvision", "input_size": [3, 224, 224], "reason": ""})
"""


def test_two_processes_append_whole_lines(tmp_path):
    ckpt = tmp_path / "zoo.json.gz.partial.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _APPENDER, tag, str(ckpt)]) for tag in "xy"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any damaged line would warn
        with zoobuild.Checkpoint(ckpt) as log:
            done = log.read()
    assert len(done) == 300 and {n[3] for n in done} == {"x", "y"}


def test_build_where_every_model_fails_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "zoo.json.gz"
    monkeypatch.setattr(zoobuild, "extract_record", lambda n: {"name": n, "ok": False, "reason": "boom"})
    with pytest.raises(ArchsimError, match="no model could be extracted .*tv:x: boom"):
        zoobuild.build_zoo(out, names=["tv:x"], progress=False)
    assert not out.exists() and _ckpt(out).exists()  # the failures stay checkpointed
    with pytest.raises(ArchsimError, match="no models to build"):
        zoobuild.build_zoo(out, names=[], progress=False)


def test_building_part_of_the_zoo_into_the_default_cache_keeps_the_rest(tmp_path, monkeypatch):
    """`archsim zoo build --zoo hf` (no -o) used to overwrite the shipped cache with only the hf models."""
    default = tmp_path / "data" / "zoo.json.gz"
    default.parent.mkdir()
    zoobuild.build_zoo(default, names=["tv:vgg11"], progress=False)
    monkeypatch.setattr(zoobuild, "PACKAGED", default)
    path, _ = zoobuild.build_zoo(names=["tv:alexnet"], progress=False)
    assert path == default
    doc = json.loads(gzip.decompress(default.read_bytes()))
    assert sorted(doc["models"]) == ["tv:alexnet", "tv:vgg11"]
    assert sorted(p.name for p in default.parent.iterdir()) == ["zoo.json.gz"]  # no part file left
    zoocache.load_zoo.cache_clear()

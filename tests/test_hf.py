"""``hf:`` models: transformers architectures from their default configs, offline, in every profile and the zoo."""
from __future__ import annotations

import gzip
import json
import socket

import pytest

pytest.importorskip("transformers")

from click.testing import CliRunner  # noqa: E402

from archsim._io import library_versions  # noqa: E402

from archsim.cli import cli  # noqa: E402
from archsim.errors import ModelLoadError, UnknownNameError, UsageError  # noqa: E402
from archsim.models import get_model, list_models  # noqa: E402
from archsim.models import hf_source  # noqa: E402
from archsim.tracing import extract, trace  # noqa: E402
from archsim.zoo import build as zoobuild  # noqa: E402
from archsim.zoo import store as zoocache  # noqa: E402

SMALL = ("bert", "gpt2", "vit", "t5")
TRANSFORMERS = __import__("transformers").__version__


@pytest.fixture(scope="module")
def traced():
    """One forward pass per small model (torch + ops), shared by the tests."""
    return {t: trace(f"hf:{t}") for t in SMALL}


@pytest.mark.parametrize("model_type", SMALL)
def test_every_profile_is_a_traced_sequence(traced, model_type):
    seqs = traced[model_type]
    assert seqs["torch"].order == "execution" and not seqs["torch"].warnings
    for profile in ("torch", "keras-like", "ops"):
        seq = seqs[profile] if profile in seqs else seqs["torch"].with_profile(profile)
        assert len(seq) > 20 and seq.source == "hf", profile
        assert not {"Identity", "Flatten"} & set(seq.tokens), profile
    ops = seqs["ops"].tokens
    # the canonical ops a vision transformer is made of, so hf: and timm: models compare
    assert {"Linear", "Attention", "Add"} <= set(ops), ops
    assert ("LayerNorm" if model_type != "t5" else "RMSNorm") in ops


def test_transformers_modules_take_canonical_tokens(traced):
    gpt2 = traced["gpt2"]
    # GPT-2's Conv1D is a linear layer; its NewGELUActivation (a tanh formula) is one GELU in ops
    assert "Conv1D" not in gpt2["torch"].tokens and gpt2["torch"].counts()["Linear"] == 48
    assert gpt2["ops"].counts()["GELU"] == 12 and "Tanh" not in gpt2["ops"].tokens
    assert "RMSNorm" in traced["t5"]["torch"].tokens  # T5LayerNorm is an RMS norm
    # no key/value cache concatenations, no mask bookkeeping in the ops
    assert "Cat" not in traced["bert"]["ops"].tokens


def test_integer_arithmetic_is_bookkeeping_for_transformers_models(traced):
    import torch

    from archsim.optrace import op_tokens
    i, f = torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)
    assert op_tokens(torch.Tensor.__mul__, (i, i), {}) == ("Mul",)  # other models: as the zoo recorded them
    assert op_tokens(torch.Tensor.__mul__, (i, i), {}, integer_arithmetic=False) == ()
    assert op_tokens(torch.Tensor.__mul__, (i, f), {}, integer_arithmetic=False) == ("Mul",)
    # RoBERTa's position ids (cumsum(mask) * mask) are no Mul: it computes what BERT does
    assert extract("hf:roberta", profile="ops").tokens == traced["bert"]["ops"].tokens


def test_inputs_follow_the_model():
    assert trace("hf:vit")["torch"].input_size == (3, 224, 224)
    assert extract("hf:bert", profile="ops", input_size=(3, 32, 32)).input_size == (32,)  # last number: length
    whisper = trace("hf:whisper")
    assert whisper["torch"].order == "execution" and whisper["torch"].input_size == (80, 3000)
    assert {"Conv1d", "Attention"} <= set(whisper["ops"].tokens)


def test_a_transformers_module_given_directly_is_traced():
    module = hf_source.build_hf("bert")
    seq = extract(module, profile="ops")
    assert seq.order == "execution" and seq.tokens == extract("hf:bert", profile="ops").tokens


def test_listing():
    names = list_models("hf:*")
    for t in ("bert", "gpt2", "t5", "llama", "vit", "whisper"):
        assert f"hf:{t}" in names
    assert list_models("bert*", source="hf")[:1] == ["hf:bert"]
    r = CliRunner().invoke(cli, ["list", "--source", "hf", "--count"])
    assert r.exit_code == 0 and int(r.output.split()[0]) == len(names)


def test_cli_compare_and_zoo_info_describe_hf_models():
    """The header shows a text model's input (a sequence length, not an empty size); zoo info counts hf."""
    r = CliRunner().invoke(cli, ["compare", "hf:bert", "hf:roberta"])
    assert r.exit_code == 0, r.output
    assert "bert: 152 layers, hf, ops profile, execution order, input 16\n" in r.output
    r = CliRunner().invoke(cli, ["zoo", "info"])
    assert r.exit_code == 0 and " hf)" in r.output.splitlines()[1]


@pytest.mark.parametrize("name, error, words", [
    ("hf:bert-base-uncased", UsageError, "checkpoint name"),
    ("hf:google/vit-base-patch16-224", UsageError, "hub repository"),
    ("hf:robert", UnknownNameError, "did you mean roberta"),
])
def test_names_that_would_download_are_refused(name, error, words):
    with pytest.raises(error, match=words):
        get_model(name)
    r = CliRunner().invoke(cli, ["tokens", name])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsim: error: ") and words in lines[0]
    assert "Traceback" not in r.output


def test_missing_transformers_says_how_to_install(monkeypatch):
    monkeypatch.setattr(hf_source, "installed", lambda: False)
    with pytest.raises(ModelLoadError, match=r"pip install 'archsim-neurn\[hf\]'"):
        get_model("hf:bert")


def test_no_network_is_touched(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("network access")
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    hf_source.hf_names.cache_clear()
    seq = extract("hf:bert", profile="ops")  # never the token cache: a real build and trace
    assert seq.order == "execution" and len(seq) > 100
    import os
    assert "HF_HUB_OFFLINE" in os.environ and "TRANSFORMERS_OFFLINE" in os.environ  # set before the import


def test_token_cache_key_holds_the_transformers_version():
    from archsim.tokencache import cache_key
    assert cache_key("hf:bert", "ops", None)["transformers"] == TRANSFORMERS
    assert "transformers" not in cache_key("tv:vgg11", "ops", None)


def test_module_tokens():
    assert hf_source.module_token("MistralRMSNorm") == "RMSNorm"
    assert hf_source.module_token("ConvNextLayerNorm") == "LayerNorm"
    assert hf_source.module_token("QuickGELUActivation") == "GELU"
    assert hf_source.module_token("LlamaRotaryEmbedding") == "RotaryEmbedding"
    assert hf_source.module_token("BertSelfAttention") is None


# ---------------------------------------------------------------------------------------------
# the zoo: hf records shipped, nearest finds the family
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    zoocache.load_zoo.cache_clear()
    z = zoocache.load_zoo(str(zoocache.PACKAGED))
    yield z
    zoocache.load_zoo.cache_clear()


def test_shipped_zoo_has_the_hf_records(shipped):
    names = shipped.names("hf")
    assert len(names) >= 400
    for t in ("bert", "gpt2", "t5", "llama", "vit", "whisper", "roberta"):
        assert f"hf:{t}" in names
    assert all(shipped.models[n]["o"] == "execution" for n in names)
    assert "transformers" in shipped.versions
    assert len(shipped.names("all")) == len(shipped.models)
    zoocache.validate(json.loads(gzip.decompress(zoocache.PACKAGED.read_bytes())))
    # a stored record is what a fresh extraction gives
    for t in ("gpt2", "vit"):
        fresh = trace(f"hf:{t}")
        assert shipped.seq(f"hf:{t}", "ops").tokens == fresh["ops"].tokens
        assert shipped.seq(f"hf:{t}", "torch").tokens == fresh["torch"].tokens


def test_nearest_roberta_is_bert(shipped):
    from archsim.zoo import nearest
    top = [r["name"] for r in nearest("hf:roberta", k=3)]
    assert "hf:bert" in top, top
    assert "hf:roberta" not in top  # the query itself is left out


# ---------------------------------------------------------------------------------------------
# zoo building: per-model timeout, merging a part into a cache without re-extracting it
# ---------------------------------------------------------------------------------------------

def test_extract_record_times_out():
    rec = zoobuild.extract_record("hf:bert", timeout_s=0.001)
    assert rec == {"name": "hf:bert", "ok": False, "reason": "timeout: building and tracing took over 0.001 s"}


def test_the_timeout_never_interrupts_logging_or_imports():
    """Raised inside logging, the timeout once left logging's lock held: the next thread to log hung forever."""
    import logging
    import sys
    import threading

    seen = []

    class Capture(logging.Filter):
        def filter(self, record):
            seen.append(sys._getframe())
            return False

    log = logging.getLogger("archsim-test-alarm")
    log.addFilter(Capture())
    log.warning("x")
    assert not zoobuild._safe_to_interrupt(seen[0])  # called from inside logging.Logger.handle
    assert zoobuild._safe_to_interrupt(sys._getframe())
    # A model that logs on every step still times out, and leaves logging usable from other threads.
    rec = zoobuild.extract_record("hf:bert", timeout_s=0.001)
    assert rec["ok"] is False and rec["reason"].startswith("timeout")
    other = threading.Thread(target=lambda: logging.getLogger("archsim-test-other").warning("y"))
    other.start()
    other.join(timeout=10)
    assert not other.is_alive()


def test_build_zoo_passes_the_timeout_on(tmp_path):
    from archsim.errors import ArchsimError
    with pytest.raises(ArchsimError, match="timeout: building and tracing took over"):
        zoobuild.build_zoo(tmp_path / "z.json.gz", names=["hf:bert"], progress=False, timeout_s=0.001)
    assert not (tmp_path / "z.json.gz").exists()


def _zoo(path, models: dict, failed=(), versions=None):
    vocab = sorted({t for toks, _ in models.values() for t in toks})
    doc = {"format": zoocache.FORMAT, "versions": versions or dict(library_versions()), "vocab": vocab,
           "failed": list(failed),
           "models": {n: {"t": [vocab.index(t) for t in toks], "p": [""] * len(toks), "k": list(range(len(toks))),
                          "x": [vocab.index(t) for t in toks], "q": [""] * len(toks), "o": order, "s": "x",
                          "i": [16], "r": "" if order == "execution" else "fell back"}
                      for n, (toks, order) in models.items()}}
    path.write_bytes(gzip.compress(json.dumps(doc).encode()))
    return path


def test_merge_zoo_adds_records_and_remaps_tokens(tmp_path):
    base = _zoo(tmp_path / "base.json.gz", {"tv:a": (["Conv2d", "ReLU"], "execution"),
                                            "hf:old": (["Linear"], "execution")})
    part = _zoo(tmp_path / "part.json.gz", {"hf:new": (["Embedding", "Linear"], "execution"),
                                            "hf:old": (["Attention"], "execution"),
                                            "hf:slow": (["Linear"], "definition")},
                failed=[{"name": "hf:bad", "reason": "ValueError: no"}],
                versions={**library_versions(), "transformers": TRANSFORMERS})
    out, added = zoobuild.merge_zoo(base, part, out=tmp_path / "merged.json.gz", traced_only=True)
    z = zoocache.load_zoo(str(out))
    zoocache.load_zoo.cache_clear()
    assert sorted(z.models) == ["hf:new", "hf:old", "tv:a"]
    assert z.seq("tv:a").tokens == ("Conv2d", "ReLU") and z.seq("hf:new", "ops").tokens == ("Embedding", "Linear")
    assert z.seq("hf:old").tokens == ("Attention",)  # replaced
    assert {f["name"] for f in z.failed} == {"hf:bad", "hf:slow"} and len(added) == 2
    assert z.versions == {**library_versions(), "transformers": TRANSFORMERS}
    clash = _zoo(tmp_path / "clash.json.gz", {"hf:x": (["Linear"], "execution")},
                 versions={**library_versions(), "torch": "0.1"})
    with pytest.raises(UsageError, match="different libraries"):
        zoobuild.merge_zoo(base, clash, out=tmp_path / "never.json.gz")
    assert not (tmp_path / "never.json.gz").exists()

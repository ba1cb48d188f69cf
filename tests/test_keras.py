"""keras: models: the real keras.applications layer lists, shipped so that nothing needs Keras."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import archsim
from archsim.errors import ModelLoadError, UsageError
from archsim.models import keras_source
from archsim.models.keras_source import KERAS_NAMES, shipped_sequences

PAPER = {"VGG16": "CCMCCMCCCMCCCMCCCMLLL", "VGG19": "CCMCCMCCCCMCCCCMCCCCMLLL"}


def test_every_model_is_shipped_in_every_profile():
    for name in KERAS_NAMES:
        seqs = shipped_sequences(name, f"keras:{name}")
        assert seqs is not None, name
        assert seqs["keras"].tokens == seqs["torch"].tokens and len(seqs["ops"]) > 10, name
        assert "InputLayer" not in seqs["keras"].tokens and "Flatten" not in seqs["keras"].tokens


def test_paper_strings_from_the_real_keras_lists():
    for name, letters in PAPER.items():
        assert str(archsim.extract(f"keras:{name}", profile="keras")) == letters


def test_listing_and_resolving_need_no_keras():
    assert archsim.list_models("keras:ResNet5*") == ["keras:ResNet50", "keras:ResNet50V2"]
    assert archsim.get_model("keras:VGG16").source == "keras"
    with pytest.raises(LookupError, match="did you mean .*ResNet50"):
        archsim.get_model("keras:ResNet5")


def test_a_pytorch_model_has_no_keras_list():
    with pytest.raises(UsageError, match="keras-like"):
        archsim.extract("tv:vgg16", profile="keras")
    assert str(archsim.extract("tv:vgg16", profile="keras-like")) == PAPER["VGG16"]


def test_keras_models_are_in_the_zoo_and_find_their_pytorch_kin():
    zoo = archsim.load_zoo()
    assert len(zoo.names("keras")) == len(KERAS_NAMES)
    rows = archsim.nearest("keras:ResNet50", zoo="all", k=5, profile="ops")
    assert any(r["name"] in ("tv:resnet50", "timm:resnet50") for r in rows), rows
    with pytest.raises(UsageError, match="no Keras layer list"):
        zoo.seq("tv:resnet50", "keras")


def test_missing_keras_is_one_line_with_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ModelLoadError, match=r"pip install 'archsim-neurn\[keras\]'"):
        keras_source.import_keras()


def test_another_backend_is_named():
    code = ("import os; os.environ['KERAS_BACKEND'] = 'numpy'\n"
            "from archsim.models.keras_source import import_keras\n"
            "try:\n    import_keras()\nexcept Exception as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KERAS_BACKEND": "numpy"}).stdout
    assert out.startswith("ModelLoadError") and "KERAS_BACKEND=numpy" in out and "torch" in out


try:
    keras = keras_source.import_keras()
except ModelLoadError:  # the test extra installs Keras; without it the shipped sequences are all we test
    keras = None
needs_keras = pytest.mark.skipif(keras is None, reason="Keras is not installed")


@needs_keras
def test_names_match_the_installed_keras():
    found = sorted(n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n)))
    assert tuple(found) == KERAS_NAMES


@needs_keras
@pytest.mark.parametrize("name", ["VGG16", "ResNet50", "MobileNetV2", "InceptionResNetV2", "ConvNeXtTiny",
                                  "NASNetMobile"])
def test_shipped_sequences_equal_a_fresh_extraction(name):
    fresh = keras_source.keras_sequences(keras_source.build_keras(name), f"keras:{name}")
    shipped = shipped_sequences(name, f"keras:{name}")
    for profile in ("keras", "ops"):
        assert fresh[profile].tokens == shipped[profile].tokens, (name, profile)
        assert fresh[profile].paths == shipped[profile].paths, (name, profile)

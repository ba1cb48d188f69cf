"""User-supplied domain files (usps, svhn, mnistm-real): every bad file is one line naming it, before any use.

Each case writes a tiny file in the real format (bz2 libsvm text, a scipy .mat, a torch .pt) into a
temporary data root; issue #9, section 2, item 2.
"""
from __future__ import annotations

import bz2
import json
import os
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy.io import savemat

from neurn.cli import cli
from neurn.domains import load_domain, split_size
from neurn.domains import registry
from neurn.errors import CorruptData


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Fresh cache and data root per test (the size cache must not carry over between cases)."""
    monkeypatch.setenv("NEURN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NEURN_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


RNG = np.random.default_rng(0)


def usps_text(labels=range(1, 11), values=None, extra: str = "") -> str:
    """libsvm rows 'label 1:v ... 256:v', values in [-1, 1] unless given."""
    rows = []
    for i, label in enumerate(labels):
        vals = RNG.uniform(-1, 1, 256) if values is None else values[i]
        rows.append(f"{label} " + " ".join(f"{j + 1}:{v:.6f}" for j, v in enumerate(vals)))
    return "\n".join(rows) + "\n" + extra


def write_usps(root, text: str, split: str = "test"):
    path = root / "usps" / ("usps.t.bz2" if split == "test" else "usps.bz2")
    path.parent.mkdir(exist_ok=True)
    with bz2.open(path, "wt") as f:
        f.write(text)
    return path


def write_svhn(root, X, y, split: str = "test"):
    path = root / "svhn" / f"{split}_32x32.mat"
    path.parent.mkdir(exist_ok=True)
    savemat(path, {"X": X, "y": y})
    return path


def write_mnistm(root, images, labels, split: str = "test"):
    path = root / "mnistm" / f"mnist_m_{split}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save((images, labels), path)
    return path


def svhn_X(n: int = 4, dtype=np.uint8):
    return RNG.integers(0, 256, (32, 32, 3, n)).astype(dtype)


def mnistm_images(n: int = 6):
    return torch.randint(0, 256, (n, 28, 28, 3), dtype=torch.uint8)


def refused(name: str, path, *fragments: str) -> str:
    """Load the domain, expect CorruptData naming ``path``; return the (one-line) message."""
    with pytest.raises(CorruptData) as err:
        load_domain(name, "test")
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# --- USPS -------------------------------------------------------------------------------------

def test_usps_good_file_maps_labels_1_to_10_onto_0_to_9(isolated_dirs):
    values = np.full((2, 256), -1.0)
    values[1] = 1.0
    write_usps(isolated_dirs, usps_text([1, 10], values))
    x, y = load_domain("usps", "test", size=16, channels=1)
    assert y.tolist() == [0, 9]
    assert (x[0] == 0).all() and (x[1] == 1).all()


@pytest.mark.parametrize("label,shown", [("0", "0"), ("11", "11"), ("-4", "-4"), ("54", "54")])
def test_usps_labels_outside_1_to_10_are_refused(isolated_dirs, label, shown):
    # labels were only shifted by one: 0 became -1, 54 became 53, and both were accepted
    path = write_usps(isolated_dirs, usps_text(["3", label, "7"]))
    refused("usps", path, "labels must be 1-10", f"found {shown}", "1 of 3 labels")


def test_usps_fractional_label_is_refused(isolated_dirs):
    path = write_usps(isolated_dirs, usps_text(["3", "2.5"]))
    refused("usps", path, "whole numbers", "2.5")


def test_usps_pixels_outside_minus1_1_are_refused_not_clipped(isolated_dirs):
    # values in 0-255 used to be clipped to an all-white image
    values = RNG.uniform(0, 255, (2, 256))
    path = write_usps(isolated_dirs, usps_text([1, 2], values))
    refused("usps", path, "must be in [-1, 1]", "not clipped")


def test_usps_empty_file_is_refused(isolated_dirs):
    # an empty file used to give 0 images and accuracy 0.0 recorded as "ok"
    path = write_usps(isolated_dirs, "\n\n")
    refused("usps", path, "holds no images")


@pytest.mark.parametrize("line,fragment", [
    ("3 1:0.5 2:abc", "libsvm format"), ("3 1:0.5 257:0.1", "indices must be 1-256"), ("3 1:0.5 1:0.2", "twice"),
    ("3 0:0.5", "indices must be 1-256"), ("x 1:0.5", "not a number"), ("3 1:nan", "libsvm format"),
])
def test_usps_malformed_rows_are_refused(isolated_dirs, line, fragment):
    path = write_usps(isolated_dirs, usps_text([1, 2], extra=line + "\n"))
    refused("usps", path, fragment)


def test_usps_omitted_features_are_zero_as_in_libsvm(isolated_dirs):
    write_usps(isolated_dirs, "2 1:1 256:-1\n")
    x, y = load_domain("usps", "test", size=16, channels=1)
    assert y.tolist() == [1]
    assert x[0, 0, 0, 0] == 1 and x[0, 0, -1, -1] == 0 and x[0, 0, 5, 5] == 0.5


def test_usps_not_bz2_is_refused(isolated_dirs):
    path = isolated_dirs / "usps" / "usps.t.bz2"
    path.parent.mkdir()
    path.write_bytes(b"plain text, not bz2")
    refused("usps", path, "not a bz2-compressed libsvm")


# --- SVHN -------------------------------------------------------------------------------------

def test_svhn_label_10_is_digit_0(isolated_dirs):
    write_svhn(isolated_dirs, svhn_X(4), np.array([[10], [1], [9], [0]]))
    _, y = load_domain("svhn", "test")
    assert y.tolist() == [0, 1, 9, 0]


@pytest.mark.parametrize("bad", [-4, 54, 11])
def test_svhn_labels_outside_0_to_10_are_refused(isolated_dirs, bad):
    # `% 10` used to turn -4 into 6 and 54 into 4 silently
    path = write_svhn(isolated_dirs, svhn_X(3), np.array([[1], [bad], [2]]))
    refused("svhn", path, "labels must be 0-10", "10 means digit 0", f"found {bad}")


def test_svhn_float_pixels_in_0_1_are_used_as_is(isolated_dirs):
    X = RNG.uniform(0, 1, (32, 32, 3, 2))
    write_svhn(isolated_dirs, X, np.array([[1], [2]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no notice: this is a valid layout and range
        x, _ = load_domain("svhn", "test")
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), X[..., 0], atol=1e-6)


def test_svhn_float_pixels_in_0_255_are_divided_with_a_notice(isolated_dirs):
    # float pixels in 0-255 used to be clamped to an all-white image
    X = svhn_X(2).astype(np.float64)
    path = write_svhn(isolated_dirs, X, np.array([[1], [2]]))
    with pytest.warns(UserWarning, match="dividing by 255") as rec:
        x, _ = load_domain("svhn", "test")
    assert str(path) in str(rec[0].message)
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy(), X[..., 1] / 255, atol=1e-6)


@pytest.mark.parametrize("X,fragment", [
    (np.full((32, 32, 3, 2), 300, np.int32), "integer pixels must be 0-255; found values from 300"),
    (np.full((32, 32, 3, 2), -1, np.int16), "integer pixels must be 0-255; found values from -1"),
    (np.full((32, 32, 3, 2), -0.5), "float pixels must be in [0, 1]"),
    (np.full((32, 32, 3, 2), 256.0), "float pixels must be in [0, 1]"),
])
def test_svhn_out_of_range_pixels_are_refused_not_wrapped(isolated_dirs, X, fragment):
    path = write_svhn(isolated_dirs, X, np.array([[1], [2]]))
    refused("svhn", path, fragment)


def test_svhn_nan_pixels_are_refused(isolated_dirs):
    X = RNG.uniform(0, 1, (32, 32, 3, 2))
    X[3, 4, 1, 1] = np.nan
    path = write_svhn(isolated_dirs, X, np.array([[1], [2]]))
    refused("svhn", path, "1 pixel value(s) are NaN")


def test_svhn_nan_label_is_refused(isolated_dirs):
    path = write_svhn(isolated_dirs, svhn_X(2), np.array([[1.0], [np.nan]]))
    refused("svhn", path, "NaN")


def test_svhn_count_mismatch_is_refused(isolated_dirs):
    path = write_svhn(isolated_dirs, svhn_X(4), np.array([[1], [2], [3]]))
    refused("svhn", path, "holds 4 images but 3 labels")


def test_svhn_empty_is_refused(isolated_dirs):
    path = write_svhn(isolated_dirs, np.zeros((32, 32, 3, 0), np.uint8), np.zeros((0, 1)))
    refused("svhn", path, "holds no images")


@pytest.mark.parametrize("axes,name", [((3, 0, 1, 2), "channels-last (N, H, W, C)"),
                                       ((3, 2, 0, 1), "channels-first (N, C, H, W)")])
def test_svhn_other_layouts_are_transposed_with_a_notice(isolated_dirs, axes, name):
    X = svhn_X(2)
    path = write_svhn(isolated_dirs, np.transpose(X, axes), np.array([[1], [2]]))
    with pytest.warns(UserWarning, match="transposing") as rec:
        x, _ = load_domain("svhn", "test")
    assert str(path) in str(rec[0].message) and name in str(rec[0].message)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), X[..., 0] / 255, atol=1e-6)


def test_svhn_unknown_layout_is_refused(isolated_dirs):
    path = write_svhn(isolated_dirs, np.zeros((32, 30, 3, 2), np.uint8), np.array([[1], [2]]))
    refused("svhn", path, "images have shape (32, 30, 3, 2)", "MATLAB (H, W, C, N)")


def test_svhn_missing_variable_is_refused(isolated_dirs):
    path = isolated_dirs / "svhn" / "test_32x32.mat"
    path.parent.mkdir()
    savemat(path, {"X": svhn_X(2)})
    refused("svhn", path, "no y variable")


# --- MNIST-M (.pt) ----------------------------------------------------------------------------

def test_mnistm_real_good_file(isolated_dirs):
    images = mnistm_images(6)
    write_mnistm(isolated_dirs, images, torch.arange(6))
    x, y = load_domain("mnistm-real", "test", size=28)
    assert y.tolist() == list(range(6))
    torch.testing.assert_close(x, images.permute(0, 3, 1, 2).float() / 255)


def test_mnistm_real_float_pixels_in_0_255_are_not_wrapped(isolated_dirs):
    # np.asarray(images, dtype=np.uint8) used to turn 0.0-1.0 floats into a black image and wrap 300 to 44
    images = torch.rand(3, 28, 28, 3) * 255
    path = write_mnistm(isolated_dirs, images, torch.tensor([1, 2, 3]))
    with pytest.warns(UserWarning, match="dividing by 255"):
        x, _ = load_domain("mnistm-real", "test", size=28)
    torch.testing.assert_close(x, images.permute(0, 3, 1, 2) / 255, atol=1e-6, rtol=0)
    write_mnistm(isolated_dirs, torch.full((2, 28, 28, 3), 300, dtype=torch.int16), torch.tensor([1, 2]))
    refused("mnistm-real", path, "integer pixels must be 0-255; found values from 300 to 300")


def test_mnistm_real_float_pixels_in_0_1_are_kept(isolated_dirs):
    images = torch.rand(3, 28, 28, 3)
    write_mnistm(isolated_dirs, images, torch.tensor([1, 2, 3]))
    x, _ = load_domain("mnistm-real", "test", size=28)
    torch.testing.assert_close(x, images.permute(0, 3, 1, 2), atol=1e-6, rtol=0)
    assert x.max() > 0.9  # not the black image uint8 truncation gave


@pytest.mark.parametrize("labels", [torch.tensor([-4, 1, 2]), torch.tensor([1, 54, 2]), torch.tensor([10, 1, 2])])
def test_mnistm_real_labels_outside_0_9_are_refused(isolated_dirs, labels):
    path = write_mnistm(isolated_dirs, mnistm_images(3), labels)
    bad = next(v for v in labels.tolist() if not 0 <= v <= 9)
    refused("mnistm-real", path, "labels must be 0-9", f"found {bad}")


def test_mnistm_real_channels_first_is_transposed_with_a_notice(isolated_dirs):
    images = mnistm_images(2)
    path = write_mnistm(isolated_dirs, images.permute(0, 3, 1, 2).contiguous(), torch.tensor([3, 4]))
    with pytest.warns(UserWarning, match="channels-first") as rec:
        x, _ = load_domain("mnistm-real", "test", size=28)
    assert str(path) in str(rec[0].message)
    torch.testing.assert_close(x, images.permute(0, 3, 1, 2).float() / 255)


@pytest.mark.parametrize("images,labels,fragment", [
    (torch.zeros(0, 28, 28, 3, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64), "holds no images"),
    (torch.zeros(5, 28, 28, 3, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), "holds 5 images but 4 labels"),
    (torch.zeros(5, 28, 28, dtype=torch.uint8), torch.zeros(5, dtype=torch.int64), "images have shape (5, 28, 28)"),
    (torch.zeros(2, 28, 28, 3, dtype=torch.bool), torch.zeros(2, dtype=torch.int64), "booleans"),
    (torch.zeros(2, 28, 28, 3), torch.zeros(2, 2, dtype=torch.int64), "labels have shape (2, 2)"),
])
def test_mnistm_real_bad_contents_are_refused(isolated_dirs, images, labels, fragment):
    path = write_mnistm(isolated_dirs, images, labels)
    refused("mnistm-real", path, fragment)


def test_mnistm_real_nan_pixels_are_refused(isolated_dirs):
    images = torch.rand(2, 28, 28, 3)
    images[1, 2, 3, 0] = float("nan")
    path = write_mnistm(isolated_dirs, images, torch.tensor([1, 2]))
    refused("mnistm-real", path, "NaN")


def test_mnistm_real_not_a_pair_is_refused(isolated_dirs):
    path = isolated_dirs / "mnistm" / "mnist_m_test.pt"
    path.parent.mkdir()
    torch.save({"images": mnistm_images(2)}, path)
    refused("mnistm-real", path, "holds a dict")


def test_the_whole_file_is_checked_even_with_a_limit(isolated_dirs):
    # a bad label past the first `limit` items must still stop the run before anything is trained
    path = write_svhn(isolated_dirs, svhn_X(4), np.array([[1], [2], [3], [77]]))
    with pytest.raises(CorruptData, match="found 77") as err:
        load_domain("svhn", "test", limit=2)
    assert str(path) in str(err.value)


# --- the generic loader contract -------------------------------------------------------------

def test_any_loader_returning_out_of_range_data_is_refused(monkeypatch):
    bad = registry.DomainInfo("bad", "d", "s", {"test": 2}, 8, 1,
                              loader=lambda split, limit, root: (np.full((2, 8, 8), 3.0), np.array([1, 2])))
    monkeypatch.setitem(registry.DOMAINS._entries, "bad", bad)
    with pytest.raises(CorruptData, match="outside \\[0, 1\\]"):
        load_domain("bad", "test")
    labels = registry.DomainInfo("bad", "d", "s", {"test": 2}, 8, 1,
                                 loader=lambda split, limit, root: (np.zeros((2, 8, 8)), np.array([1, 12])))
    monkeypatch.setitem(registry.DOMAINS._entries, "bad", labels)
    with pytest.raises(CorruptData, match="labels that are not integers 0-9"):
        load_domain("bad", "test")


# --- true sizes: split_size and `neurn domains` ----------------------------------------------

def test_split_size_reads_the_real_count_and_remembers_it(isolated_dirs, monkeypatch):
    path = write_svhn(isolated_dirs, svhn_X(5), np.ones((5, 1)))
    assert split_size("svhn", "test") == 5
    assert split_size("syn", "test") == 10000
    calls = []
    info = registry.get_domain("svhn")
    monkeypatch.setitem(registry.DOMAINS._entries, "svhn", info.__class__(
        **{**info.__dict__, "loader": lambda *a: calls.append(a) or info.loader(*a)}))
    assert split_size("svhn", "test") == 5 and calls == []  # remembered: one stat, no load
    write_svhn(isolated_dirs, svhn_X(7), np.ones((7, 1)))
    os.utime(path, ns=(1, 1))  # a new version of the file (mtime differs)
    assert split_size("svhn", "test") == 7 and len(calls) == 1


def test_split_size_works_with_an_unwritable_cache(isolated_dirs, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("NEURN_CACHE", str(blocker / "cache"))
    write_svhn(isolated_dirs, svhn_X(3), np.ones((3, 1)))
    assert split_size("svhn", "test") == 3


def test_split_size_ignores_a_damaged_size_cache(isolated_dirs, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "user-file-sizes.json").write_text("[1, 2")
    write_svhn(isolated_dirs, svhn_X(3), np.ones((3, 1)))
    assert split_size("svhn", "test") == 3
    assert isinstance(json.loads((cache / "user-file-sizes.json").read_text()), dict)


def _row(output: str, name: str) -> list[str]:
    return next(line for line in output.splitlines() if line.startswith(name + " ")).split()


def test_domains_command_reports_true_counts(isolated_dirs):
    # it used to print the official 26032 / 2007 whatever the files held
    write_svhn(isolated_dirs, svhn_X(3), np.ones((3, 1)))
    write_usps(isolated_dirs, usps_text([1, 2, 3, 4]))
    result = CliRunner().invoke(cli, ["domains"])
    assert result.exit_code == 0, result.output
    assert _row(result.output, "svhn")[1:4] == ["ready", "(73257)", "3"]
    assert _row(result.output, "usps")[1:4] == ["ready", "(7291)", "4"]
    assert _row(result.output, "mnistm-real")[1:4] == ["absent", "(59001)", "(9001)"]
    assert _row(result.output, "mnist")[1:4] == ["ready", "60000", "10000"]
    assert "official size" in result.output


def test_domains_command_flags_a_corrupt_file(isolated_dirs):
    path = write_mnistm(isolated_dirs, mnistm_images(3), torch.tensor([1, 54, 2]))
    result = CliRunner().invoke(cli, ["domains"])
    assert result.exit_code == 0, result.output
    assert _row(result.output, "mnistm-real")[1:4] == ["corrupt", "(59001)", "corrupt"]
    warning = next(line for line in result.output.splitlines() if line.startswith("warning:"))
    assert str(path) in warning and "labels must be 0-9" in warning

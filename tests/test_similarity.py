"""Similarity/correlation matrices: properties, agreement with align(), clustering, cache and errors."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archsim
from archsim.alignment import Scoring, align
from archsim.errors import ArchsimError
from archsim.matrices import cluster_order, correlation, load_sequences, pair_matrices, similarity_matrix
from archsim.tokens import LayerSeq

ALPHABET = ["Conv2d", "ReLU", "MaxPool2d", "Linear", "BatchNorm2d"]


def _seqs(lists):
    return [LayerSeq(f"m{i}", tuple(t)) for i, t in enumerate(lists)]


token_lists = st.lists(st.lists(st.sampled_from(ALPHABET), max_size=25), min_size=2, max_size=6)


@settings(max_examples=25)
@given(token_lists)
def test_matrix_matches_align_on_random_sequences(lists):
    seqs = _seqs(lists)
    df = similarity_matrix(seqs)
    score, matches, length = pair_matrices(seqs)
    n = len(seqs)
    for i in range(n):
        for j in range(i + 1, n):
            al = align(seqs[i], seqs[j])  # the matrix's row model is a, the column model b
            assert (score[i, j], matches[i, j], length[i, j]) == (al.score, al.matches, al.length)
            assert df.iloc[i, j] == pytest.approx(al.similarity)
    assert np.array_equal(df.values, df.values.T)
    assert (np.diag(df.values) == 1).all()
    assert ((df.values >= 0) & (df.values <= 1)).all()


@settings(max_examples=20)
@given(token_lists, st.integers(1, 3), st.integers(-3, 0), st.integers(-3, -1))
def test_custom_scoring_matches_align(lists, match, mismatch, gap):
    seqs = _seqs(lists)
    sc = Scoring(match, mismatch, gap, substitution={("Conv2d", "Linear"): 0})
    score, matches, length = pair_matrices(seqs, sc)
    for i in range(len(seqs)):
        for j in range(i + 1, len(seqs)):
            al = align(seqs[i], seqs[j], scoring=sc)
            assert (score[i, j], matches[i, j], length[i, j]) == (al.score, al.matches, al.length)


@settings(max_examples=40)
@given(st.lists(st.lists(st.floats(0, 1), min_size=6, max_size=6), min_size=6, max_size=6))
def test_correlation_is_bounded_and_symmetric(rows):
    import pandas as pd
    m = np.array(rows)
    m = (m + m.T) / 2
    np.fill_diagonal(m, 1.0)
    c = correlation(pd.DataFrame(m, index=list("abcdef"), columns=list("abcdef"))).values
    finite = c[np.isfinite(c)]
    assert ((finite >= -1) & (finite <= 1)).all()
    assert np.allclose(np.nan_to_num(c), np.nan_to_num(c.T))


@pytest.fixture(scope="module")
def paper44():
    seqs = load_sequences(archsim.get_preset("paper44"), progress=False)
    sim = similarity_matrix(seqs)
    return seqs, sim, correlation(sim)


def test_paper44_matrix_properties(paper44):
    seqs, sim, corr = paper44
    assert sim.shape == (44, 44) and list(sim.index) == [e.label for e in archsim.get_preset("paper44")]
    assert np.array_equal(sim.values, sim.values.T)
    assert (np.diag(sim.values) == 1).all()
    assert ((sim.values >= 0) & (sim.values <= 1)).all()
    assert ((corr.values >= -1) & (corr.values <= 1)).all()
    assert np.allclose(np.diag(corr.values), 1)


def test_vgg16_vgg19_more_alike_than_vgg16_vit(paper44):
    _, sim, corr = paper44
    assert corr.loc["vgg16", "vgg19"] > corr.loc["vgg16", "vit"]
    assert sim.loc["vgg16", "vgg19"] > sim.loc["vgg16", "vit"]
    assert sim.loc["vgg16", "vgg19"] == pytest.approx(21 / 24)  # the paper's strings: 21 matches, 24 columns


def test_real_pairs_match_align(paper44):
    seqs, sim, _ = paper44
    by = {s.name: s for s in seqs}
    for a, b in [("resnet50", "resnet101"), ("vgg11", "vit"), ("nasnetLarge", "inceptionResnetv2"),
                 ("CORnet", "midas"), ("u-net", "efficientNetb7")]:
        i, j = sorted([list(sim.index).index(a), list(sim.index).index(b)])
        x, y = sim.index[i], sim.index[j]
        assert sim.loc[x, y] == pytest.approx(align(by[x], by[y]).similarity)


def test_cluster_order_is_a_permutation(paper44):
    _, sim, corr = paper44
    order = cluster_order(corr)
    assert sorted(order) == sorted(corr.index)
    clustered = correlation(sim, cluster=True)
    assert list(clustered.index) == order == list(clustered.columns)
    assert clustered.loc["vgg16", "vit"] == corr.loc["vgg16", "vit"]
    # the three VGGs end up next to each other
    pos = sorted(order.index(v) for v in ("vgg11", "vgg16", "vgg19"))
    assert pos[2] - pos[0] == 2


def test_names_profile_override_and_labels(session_cache_dir):
    df = similarity_matrix(["vgg11", "tv:vgg16"], profile="keras-like")
    assert list(df.index) == ["vgg11", "tv:vgg16"]
    keras = load_sequences(["vgg11"], profile="keras-like")[0]
    assert "ReLU" not in keras.tokens and keras.profile == "keras-like"


def test_errors_are_one_line_archsim_errors():
    with pytest.raises(ArchsimError, match="only once; repeated: vgg11"):
        similarity_matrix(["vgg11", "vgg11"])
    with pytest.raises(ArchsimError, match="torch-profile"):
        similarity_matrix([LayerSeq("k", ("Conv2d",), profile="keras-like"), "vgg11"], profile="torch")
    with pytest.raises(ArchsimError, match="no models"):
        similarity_matrix([])
    with pytest.raises(ArchsimError, match="cannot compare"):
        similarity_matrix([3, "vgg11"])


def test_corrupted_cache_file_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSIM_CACHE", str(tmp_path))
    first = similarity_matrix(["vgg11", "vgg13"])
    (path,) = tmp_path.glob("vgg13-ops-*.json")
    path.write_bytes(b"\x00garbage{")
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = similarity_matrix(["vgg11", "vgg13"])
    assert again.equals(first)
    assert path.read_text().startswith("{")

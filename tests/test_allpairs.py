"""The all-pairs kernel equals align() and _stats() on every pair, tie-breaking included."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archsim
from archsim.alignment import Scoring, _stats, align
from archsim.errors import UsageError
from archsim.kernel import (LANES, _plan, all_pairs, default_table, encode_many, lane_dtype, padding_efficiency,
                            pair_stats, triu_pairs)


def _ref(seqs, pairs, sub, gap):
    if sub is None:
        sub = default_table(max((int(x.max()) + 1 for x in seqs if len(x)), default=1))
    return np.array([_stats(np.asarray(seqs[i], np.int64), np.asarray(seqs[j], np.int64), sub, gap)
                     for i, j in pairs], dtype=np.int64).reshape(-1, 3)


def _check(seqs, pairs, sub, gap, threads=None):
    got = np.stack(pair_stats(seqs, pairs, sub, gap, threads), axis=1)
    want = _ref(seqs, pairs, sub, gap)
    bad = np.flatnonzero((got != want).any(axis=1))
    assert bad.size == 0, f"{bad.size} pairs differ, first {pairs[bad[0]]}: {got[bad[0]]} vs {want[bad[0]]}"


def _random_seqs(rng, count, k, lo, hi):
    return [rng.integers(0, k, rng.integers(lo, hi + 1)).astype(np.int32) for _ in range(count)]


TABLES = {
    "paper": (None, -2),
    "2/-1/-1": (lambda k: default_table(k, 2, -1), -1),
    "1/-1/-3": (lambda k: default_table(k, 1, -1), -3),
    # mismatch == 2·gap: the score no longer tells diagonal steps apart, so D is carried
    "1/-2/-1": (lambda k: default_table(k, 1, -2), -1),
    "zero-match": (lambda k: default_table(k, 0, -1), -1),
}


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_random_batches_match_stats(table, k):
    """Seeded batches: tiny alphabets (many ties), empty and length-1 sequences, several tables."""
    rng = np.random.default_rng(k * 101 + len(table))
    seqs = _random_seqs(rng, 36, k, 0, 30) + [np.zeros(0, np.int32), np.array([0], np.int32)]
    make, gap = TABLES[table]
    sub = default_table(k) if make is None else make(k)
    pairs = triu_pairs(len(seqs))
    pairs = np.concatenate([pairs, pairs[:, ::-1], np.stack([np.arange(len(seqs))] * 2, axis=1)])
    _check(seqs, pairs, sub, gap)


def test_substitution_table_random():
    """A general symmetric table (gather path) with a non-uniform diagonal."""
    rng = np.random.default_rng(7)
    k = 6
    sub = rng.integers(-4, 4, (k, k))
    sub = np.triu(sub) + np.triu(sub, 1).T
    np.fill_diagonal(sub, rng.integers(0, 4, k))
    seqs = _random_seqs(rng, 50, k, 0, 40)
    _check(seqs, triu_pairs(len(seqs)), sub, -2)


def test_very_unequal_lengths():
    """Long against short and empty: the padded lanes must not leak into short ones."""
    rng = np.random.default_rng(3)
    seqs = _random_seqs(rng, 6, 3, 300, 400) + _random_seqs(rng, 30, 3, 0, 5) + _random_seqs(rng, 10, 3, 50, 120)
    pairs = triu_pairs(len(seqs))
    _check(seqs, np.concatenate([pairs, pairs[:, ::-1]]), None, -2)


def test_int32_lanes():
    """Scores too large for int16 lanes switch to int32 and stay exact."""
    rng = np.random.default_rng(11)
    seqs = _random_seqs(rng, 30, 4, 0, 60)
    _check(seqs, triu_pairs(len(seqs)), default_table(4, 600, -500), -450)
    sub = rng.integers(-900, 900, (4, 4))
    _check(seqs, triu_pairs(len(seqs)), np.triu(sub) + np.triu(sub, 1).T, -700)


def test_thousands_of_pairs_and_threads_agree():
    """Several full batches, in any order and on 1 or 2 threads."""
    rng = np.random.default_rng(5)
    seqs = _random_seqs(rng, 80, 4, 0, 80)
    pairs = triu_pairs(len(seqs))
    assert len(pairs) > 3000
    _check(seqs, pairs, None, -2, threads=1)
    one = pair_stats(seqs, pairs, threads=1)
    two = pair_stats(seqs, pairs, threads=2)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)
    perm = rng.permutation(len(pairs))
    for x, y in zip(one, pair_stats(seqs, pairs[perm])):
        np.testing.assert_array_equal(x[perm], y)


alphabet = st.sampled_from("CBRMLN")


@settings(max_examples=60)
@given(st.lists(st.text(alphabet, max_size=25), min_size=1, max_size=12),
       st.integers(1, 3), st.integers(-3, 0), st.integers(-3, -1))
def test_hypothesis_against_align(strings, match, mismatch, gap):
    """Every pair (both orientations) equals the full traceback of align()."""
    ids, vocab = encode_many(strings)
    sc = Scoring(match, mismatch, gap)
    sub = sc.table(vocab) if vocab else None
    pairs = np.array([(i, j) for i in range(len(strings)) for j in range(len(strings))]).reshape(-1, 2)
    s, mt, ln = pair_stats(ids, pairs, sub, gap)
    for p, (i, j) in enumerate(pairs):
        al = align(strings[i], strings[j], scoring=sc)
        assert (s[p], mt[p], ln[p]) == (al.score, al.matches, al.length), (strings[i], strings[j])


@pytest.fixture(scope="module")
def zoo():
    """A few real architectures (extracted on the meta device)."""
    names = ["resnet50", "vgg16", "timm:vit_tiny_patch16_224", "densenet121", "mobilenet_v3_small", "alexnet"]
    return [archsim.extract(n) for n in names]


def test_real_models_against_align(zoo):
    """Real sequences, both orientations, paper scoring: equal to align() column by column counts."""
    ids, vocab = encode_many(zoo)
    pairs = np.array([(i, j) for i in range(len(zoo)) for j in range(len(zoo))])
    s, mt, ln = pair_stats(ids, pairs, threads=2)
    for p, (i, j) in enumerate(pairs):
        al = align(zoo[i], zoo[j])
        assert (s[p], mt[p], ln[p]) == (al.score, al.matches, al.length), (zoo[i].name, zoo[j].name)


def test_real_models_with_substitution(zoo):
    """A substitution table over the joint vocabulary equals align() with the same Scoring."""
    ids, vocab = encode_many(zoo)
    sc = Scoring(2, -2, -1, substitution={("ReLU", "GELU"): 1, ("BatchNorm2d", "LayerNorm"): 0,
                                          ("Conv2d", "Linear"): -1})
    s, mt, ln = all_pairs(ids, sc.table(vocab), sc.gap)
    for p, (i, j) in enumerate(triu_pairs(len(zoo))):
        al = align(zoo[i], zoo[j], scoring=sc)
        assert (s[p], mt[p], ln[p]) == (al.score, al.matches, al.length), (zoo[i].name, zoo[j].name)


def test_encode_many_matches_encode():
    """One sorted joint vocabulary; a string is a letter string, a tuple holds token names."""
    ids, vocab = encode_many(["CBR", ("MaxPool2d", "Conv2d"), "", ("M",)])
    assert vocab == ["BatchNorm2d", "Conv2d", "M", "MaxPool2d", "ReLU"]  # a class named M is not MaxPool2d
    assert [x.tolist() for x in ids] == [[1, 0, 4], [3, 1], [], [2]]
    assert encode_many([]) == ([], [])


def test_plan_queues_every_pair_once():
    """Each pair sits in exactly one lane queue; groups sweep at least their pairs' columns."""
    rng = np.random.default_rng(2)
    n, m = rng.integers(0, 900, 1000), rng.integers(0, 900, 1000)
    q, qs, gcols, grows = _plan(n, m)
    assert sorted(q.tolist()) == list(range(1000))
    assert qs[0] == 0 and qs[-1] == 1000 and (np.diff(qs) >= 0).all()
    for g in range(len(gcols)):
        lanes = [q[qs[g * LANES + l]:qs[g * LANES + l + 1]] for l in range(LANES)]
        assert max(m[x].max(initial=0) for x in lanes) <= gcols[g]
        assert max(n[x].sum() for x in lanes) == grows[g]
    assert 0.5 < padding_efficiency(n, m) <= 1.0


def test_edge_cases_and_errors():
    """No pairs, empty sequences only, bad ids and bad pair indices."""
    assert all(x.shape == (0,) for x in all_pairs([np.array([1, 2])]))
    s, mt, ln = pair_stats([np.zeros(0, np.int32)] * 2, [[0, 1]])
    assert (s[0], mt[0], ln[0]) == (0, 0, 0)
    s, mt, ln = pair_stats([np.zeros(0, np.int32), np.array([0, 0, 0])], [[0, 1], [1, 0]])
    assert s.tolist() == [-6, -6] and mt.tolist() == [0, 0] and ln.tolist() == [3, 3]
    with pytest.raises(ValueError):
        pair_stats([np.array([0, 5])], [[0, 0]], default_table(3), -2)
    with pytest.raises(ValueError):
        pair_stats([np.array([0])], [[0, 1]])
    assert LANES >= 16


# ---------------------------------------------------------------- large scores (issue #9, item 3)

BIG = 2**31 - 1


def test_lane_type_follows_the_bound():
    """int16 for the paper's scores, int32 above 32767, int64 above 2³¹−1, refused above 2⁶¹."""
    assert lane_dtype(1200 * 2, 60) is np.int16
    assert lane_dtype(40_000, 60) is np.int32 and lane_dtype(100, 40_000) is np.int32
    assert lane_dtype(2**31, 60) is np.int64 and lane_dtype(2**61, 60) is np.int64
    with pytest.raises(UsageError, match="overflow 64-bit"):
        lane_dtype(2**61 + 1, 60)
    s, mt, ln = all_pairs(encode_many(["CBR", "CR"])[0])
    assert s.dtype == mt.dtype == ln.dtype == np.int32  # the common path keeps int32 results


def test_issue_example_in_every_entry_point():
    """The issue's pair (true score −20,999,999,999) through the kernel and the N×N matrices."""
    from archsim.matrices import pair_matrices
    from archsim.tokens import LayerSeq
    a, b = "CRCBBMMRLRMRRLRBBBLBRC", "L"
    sc = Scoring(gap=-10**9)
    ids, vocab = encode_many([a, b])
    s, mt, ln = pair_stats(ids, [[0, 1], [1, 0]], sc.table(vocab), sc.gap)
    assert s.tolist() == [-20999999999] * 2 and mt.tolist() == [1, 1] and ln.tolist() == [22, 22]
    assert s.dtype == np.int64
    score, matches, length = pair_matrices([LayerSeq.from_letters(a), LayerSeq.from_letters(b)], sc)
    assert (score[0, 1], matches[0, 1], length[0, 1]) == (-20999999999, 1, 22)


@pytest.mark.parametrize("table", ["uniform", "mismatch=2gap", "random"])
def test_int64_lanes_match_stats(table):
    """Scores near ±(2³¹−1) run in int64 lanes and equal the int64 _stats reference."""
    rng = np.random.default_rng(13)
    k = 4
    seqs = _random_seqs(rng, 24, k, 0, 40) + [np.zeros(0, np.int32)]
    if table == "uniform":
        sub, gap = default_table(k, BIG, -BIG), -(BIG - 7)
    elif table == "mismatch=2gap":  # diagonal steps carried, not derived from the score
        sub, gap = default_table(k, BIG, -(2**30) * 2 + 2), -(2**30) + 1
    else:
        sub = rng.integers(-BIG, BIG, (k, k))
        sub, gap = np.triu(sub) + np.triu(sub, 1).T, -BIG
    pairs = triu_pairs(len(seqs))
    _check(seqs, np.concatenate([pairs, pairs[:, ::-1]]), sub, gap)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet, max_size=20), min_size=1, max_size=6), st.data())
def test_hypothesis_large_scores_against_align(strings, data):
    """Any valid Scoring, up to ±(2³¹−1): every pair equals align() (checked against the reference)."""
    mismatch = data.draw(st.integers(-BIG, BIG - 1))
    match = data.draw(st.integers(mismatch + 1, BIG))
    gap = data.draw(st.integers(-BIG, -1))
    ids, vocab = encode_many(strings)
    sc = Scoring(match, mismatch, gap)
    pairs = np.array([(i, j) for i in range(len(strings)) for j in range(len(strings))]).reshape(-1, 2)
    s, mt, ln = pair_stats(ids, pairs, sc.table(vocab) if vocab else None, gap)
    for p, (i, j) in enumerate(pairs):
        al = align(strings[i], strings[j], scoring=sc)
        assert (s[p], mt[p], ln[p]) == (al.score, al.matches, al.length), (strings[i], strings[j], sc)


def _t(dtype, off, diag=1):
    t = np.full((3, 3), off, dtype=dtype)
    np.fill_diagonal(t, diag)
    return t


@pytest.mark.parametrize("sub, gap, needle", [
    (_t(float, -2.5), -2, "integer scores"),  # was truncated to -2 silently
    (_t(float, np.nan), -2, "integer scores"),
    (_t(bool, False, True), -2, "integer scores"),
    (_t(np.uint64, 2**63), -2, "integer scores"),
    (None, True, "gap must be an integer"),
    (None, float("nan"), "gap must be an integer"),
    (None, -1.5, "gap must be an integer"),
    (None, "-2", "gap must be an integer"),
    (_t(np.int64, 2**62), -2, "overflow 64-bit"),
    (np.zeros((3, 2), np.int64), -2, "square"),
])
def test_kernel_refuses_bad_scores(sub, gap, needle):
    ids, _ = encode_many(["CBR", "CR"])
    with pytest.raises(UsageError, match=needle):
        pair_stats(ids, [[0, 1]], sub, gap)

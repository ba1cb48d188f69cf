"""The Numba NW aligner against a pure-Python reference, Biopython, and its documented rules."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archsim.alignment import GAP_A, GAP_B, MATCH, MISMATCH, Scoring, align, align_stats
from archsim.errors import UsageError
from archsim.tokens import LayerSeq

seqs = st.text(alphabet="CRMBLDA", min_size=0, max_size=25)


def reference(a: str, b: str, match=1, mismatch=-2, gap=-2):
    """Textbook NW: fill, then traceback preferring diagonal, then up, then left."""
    n, m = len(a), len(b)
    h = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        h[i][0] = i * gap
    for j in range(m + 1):
        h[0][j] = j * gap
    s = lambda x, y: match if x == y else mismatch  # noqa: E731
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            h[i][j] = max(h[i - 1][j - 1] + s(a[i - 1], b[j - 1]), h[i - 1][j] + gap, h[i][j - 1] + gap)
    ops, path, i, j = [], [(n, m)], n, m
    while i or j:
        if i and j and h[i][j] == h[i - 1][j - 1] + s(a[i - 1], b[j - 1]):
            ops.append(MATCH if a[i - 1] == b[j - 1] else MISMATCH)
            i, j = i - 1, j - 1
        elif i and h[i][j] == h[i - 1][j] + gap:
            ops.append(GAP_B)
            i -= 1
        else:
            ops.append(GAP_A)
            j -= 1
        path.append((i, j))
    return h, ops[::-1], path[::-1]


@settings(max_examples=1200)
@given(seqs, seqs)
def test_matches_reference_dp(a, b):
    h, ops, path = reference(a, b)
    al = align(a, b)
    assert al.matrix.tolist() == h
    assert al.score == h[-1][-1]
    assert list(al.ops) == ops
    assert list(al.path) == path
    assert al.matches == ops.count(MATCH)
    assert al.mismatches == ops.count(MISMATCH)
    assert al.gaps == ops.count(GAP_A) + ops.count(GAP_B)
    assert al.length == len(ops)
    assert align_stats(a, b) == (al.score, al.matches, al.length)


@settings(max_examples=300)
@given(seqs, seqs, st.integers(1, 4), st.integers(-5, 0), st.integers(-5, -1))
def test_other_scores_match_reference(a, b, match, mismatch, gap):
    h, ops, _ = reference(a, b, match, mismatch, gap)
    al = align(a, b, match=match, mismatch=mismatch, gap=gap)
    assert al.score == h[-1][-1] and list(al.ops) == ops
    assert align_stats(a, b, Scoring(match, mismatch, gap)) == (al.score, al.matches, al.length)


@settings(max_examples=300)
@given(seqs, seqs)
def test_score_equals_biopython(a, b):
    from Bio.Align import PairwiseAligner
    bio = PairwiseAligner(mode="global", match_score=1, mismatch_score=-2,
                          open_gap_score=-2, extend_gap_score=-2)
    if not a or not b:  # Biopython refuses empty sequences; NW gives gap × length
        assert align(a, b).score == -2 * (len(a) + len(b))
        return
    assert align(a, b).score == int(bio.score(a, b))


def test_paper_first_row_and_column_are_gap_multiples():
    al = align("CCMCCMCCCMCCCMCCCMLLL", "CRMCRMCRCRMCRCRMCRCRMALRDLRDL")
    assert al.matrix.shape == (22, 30)
    assert al.matrix[0].tolist() == [-2 * j for j in range(30)]
    assert al.matrix[:, 0].tolist() == [-2 * i for i in range(22)]


def test_identical_sequences_have_similarity_one_and_others_less():
    assert align("CCMCCM", "CCMCCM").similarity == 1.0
    assert align("CCMCCM", "CCMCCM").normalized_score == 1.0
    assert align("CCMCCM", "CCMCCMC").similarity < 1.0


def test_tie_prefers_diagonal_over_left():
    # H[1,2] = -1 is reached both diagonally and from the left: the diagonal wins.
    al = align("A", "AA")
    assert al.ops == (GAP_A, MATCH)
    assert al.path == ((0, 0), (0, 1), (1, 2))


def test_tie_prefers_up_over_left():
    # With mismatch -5 the cell (1,1) = -4 is reached from above and from the left: up wins.
    al = align("A", "B", mismatch=-5)
    assert al.score == -4
    assert al.ops == (GAP_A, GAP_B)
    assert al.path == ((0, 0), (0, 1), (1, 1))


def test_empty_sequences_score_gap_times_length():
    assert align("", "").score == 0 and align("", "").similarity == 1.0
    assert align("", "CRM").score == -6 and align("", "CRM").ops == (GAP_A,) * 3
    assert align("CR", "").score == -4 and align("CR", "").gaps == 2


def test_vgg16_vs_vgg19_paper_strings():
    al = align("CCMCCMCCCMCCCMCCCMLLL", "CCMCCMCCCCMCCCCMCCCCMLLL")
    assert (al.score, al.matches, al.mismatches, al.gaps, al.length) == (15, 21, 0, 3, 24)
    assert al.similarity == pytest.approx(21 / 24)
    assert {ta for ta, tb, op in al.pairs if op != MATCH} == {None}
    assert {tb for ta, tb, op in al.pairs if op != MATCH} == {"Conv2d"}  # the extra convolutions (letters decoded)


def test_layerseq_inputs_use_token_names_not_letters():
    a = LayerSeq("x", ("Conv2d", "ReLU", "Linear"))
    b = LayerSeq("y", ("Conv2d", "GELU", "Linear"))
    al = align(a, b)
    assert al.name_a == "x" and al.name_b == "y"
    assert al.pairs[1] == ("ReLU", "GELU", MISMATCH)


def test_substitution_matrix_overrides_pairs():
    sc = Scoring(substitution={("ReLU", "GELU"): 1})
    al = align(["Conv2d", "ReLU"], ["Conv2d", "GELU"], scoring=sc)
    assert al.score == 2 and al.mismatches == 1  # scored like a match, still counted as different


def test_scoring_rejects_fractional_scores():
    with pytest.raises(ValueError, match="integer"):
        Scoring(match=0.5)


def test_print_shows_biopython_style_markers():
    text = str(align("CCMCCM", "CCMCM"))
    lines = text.splitlines()
    assert lines[0].split()[2] == "CCMCCM"
    assert set(lines[1].split()[1]) <= {"|", ".", "-"} and "-" in lines[1]
    assert "-" in lines[2].split()[2]


def test_to_dict_is_json_ready():
    d = json.loads(json.dumps(align("CRM", "CM").to_dict(matrix=True)))
    for k in ("score", "similarity", "matches", "mismatches", "gaps", "length", "tokens_a", "tokens_b", "ops", "matrix"):
        assert k in d
    assert d["ops"][1]["op"] == GAP_B and d["ops"][1]["b"] is None


def test_matrix_dtype_and_long_sequences():
    rng = np.random.default_rng(0)
    a = "".join(rng.choice(list("CRMB"), 600))
    b = "".join(rng.choice(list("CRMB"), 450))
    al = align(a, b)
    assert al.matrix.shape == (601, 451)
    assert align_stats(a, b) == (al.score, al.matches, al.length)


# ---------------------------------------------------------------- large scores (issue #9, item 3)

BIG = 2**31 - 1  # SCORE_LIMIT: the largest score magnitude Scoring accepts


@st.composite
def scorings(draw, top=BIG):
    """Valid (match, mismatch, gap): match > mismatch, gap < 0, magnitudes up to ``top``."""
    mismatch = draw(st.integers(-top, top - 1))
    match = draw(st.integers(mismatch + 1, top))
    gap = draw(st.integers(-top, -1))
    return match, mismatch, gap


def test_issue_example_large_gap_is_exact():
    """`compare --tokens CRCBBMMRLRMRRLRBBBLBRC L --gap -1000000000` printed 474836478 (int32 wrap)."""
    a, b = "CRCBBMMRLRMRRLRBBBLBRC", "L"
    al = align(a, b, gap=-10**9)
    h, ops, _ = reference(a, b, gap=-10**9)
    assert al.score == h[-1][-1] == -20999999999
    assert (al.matches, al.length) == (1, 22) and list(al.ops) == ops
    assert al.matrix.dtype == np.int64 and al.matrix.tolist() == h
    assert align_stats(a, b, Scoring(gap=-10**9)) == (al.score, al.matches, al.length)


def test_paper_scores_keep_the_int32_matrix():
    """The common path stays int32 (the fast path is not widened for everyone)."""
    assert align("CCMCCM", "CCMCM").matrix.dtype == np.int32
    # the bound (n+m+1)·max|score| decides: (3 + 2 + 1)·2**29 passes int32, (1 + 0 + 1)·2**29 does not
    assert align("CCM", "CM", gap=-(2**29)).matrix.dtype == np.int64
    assert align("C", "", gap=-(2**29)).matrix.dtype == np.int32


@settings(max_examples=200, deadline=None)
@given(seqs, seqs, scorings())
def test_large_scores_match_reference(a, b, sc):
    """Scores up to ±(2³¹−1): matrix, score, ops and align_stats equal the Python-int reference."""
    match, mismatch, gap = sc
    h, ops, path = reference(a, b, match, mismatch, gap)
    al = align(a, b, match=match, mismatch=mismatch, gap=gap)
    assert al.score == h[-1][-1] and list(al.ops) == ops and list(al.path) == path
    assert al.matrix.tolist() == h
    assert align_stats(a, b, Scoring(match, mismatch, gap)) == (al.score, al.matches, al.length)


@pytest.mark.parametrize("kw, needle", [
    ({"gap": 0}, "gap score must be negative (it is a penalty), got 0"),
    ({"gap": 3}, "got 3"),
    ({"match": -2}, "match score (-2) must be greater than the mismatch score (-2)"),
    ({"match": 1, "mismatch": 5}, "(5)"),
    ({"match": True}, "got True"),
    ({"gap": np.bool_(True)}, "got True"),
    ({"gap": float("nan")}, "got nan"),
    ({"gap": float("-inf")}, "got -inf"),
    ({"mismatch": -2.5}, "got -2.5"),
    ({"gap": "-2"}, "got '-2'"),
    ({"gap": None}, "got None"),
    ({"gap": -(2**31)}, "got -2147483648"),
    ({"match": 10**30}, "got 1000000000000000000000000000000"),
])
def test_scoring_rejects_bad_values_naming_them(kw, needle):
    with pytest.raises(UsageError) as exc:
        Scoring(**kw)
    assert needle in str(exc.value)


def test_scoring_accepts_integral_numbers_and_validates_substitution():
    sc = Scoring(np.int64(2), -1.0, np.int32(-3))
    assert (sc.match, sc.mismatch, sc.gap) == (2, -1, -3) and all(type(v) is int for v in (sc.match, sc.mismatch, sc.gap))
    assert Scoring(substitution={("ReLU", "GELU"): np.int8(0)}).substitution == {("ReLU", "GELU"): 0}
    with pytest.raises(UsageError, match="substitution ReLU/GELU score .* got 0.5"):
        Scoring(substitution={("ReLU", "GELU"): 0.5})
    with pytest.raises(UsageError, match="substitution keys .* got 'ReLU'"):
        Scoring(substitution={"ReLU": 1})
    with pytest.raises(UsageError, match="2147483647"):
        align("C", "C", scoring=Scoring(substitution={("C", "M"): 2**40}))


def test_refuses_what_int64_cannot_hold():
    """A bound beyond int64 is refused before any DP runs (only reachable past Scoring's limits)."""
    from archsim.alignment import score_dtype
    assert score_dtype(10, 10, BIG) is np.int64 and score_dtype(10, 10, 2) is np.int32
    with pytest.raises(UsageError, match="overflow 64-bit"):
        score_dtype(2**33, 2**33, BIG)


def test_compare_cli_large_gap_and_bad_scores():
    from click.testing import CliRunner

    from archsim.cli import cli
    r = CliRunner().invoke(cli, ["compare", "--tokens", "CRCBBMMRLRMRRLRBBBLBRC", "L", "--gap", "-1000000000"])
    assert r.exit_code == 0 and "score -20999999999 " in r.output
    for args, needle in ((["--gap", "0"], "gap score must be negative"),
                         (["--match", "-5"], "must be greater than the mismatch"),
                         (["--gap", "-99999999999"], "got -99999999999")):
        # an unknown model name: the scores are checked before any model is loaded
        r = CliRunner().invoke(cli, ["compare", "nosuch_model_x", "vgg11", *args])
        assert r.exit_code == 2, r.output
        err = r.stderr if hasattr(r, "stderr") else r.output
        assert err.strip().splitlines() == [f"archsim: error: {err.split('error: ', 1)[1].strip()}"]
        assert needle in err and "Traceback" not in err


# ---------------------------------------------------------------- letter strings (issue #9, item 10)

def test_letter_strings_are_decoded_to_tokens():
    """A str is a letter string: "CCM" aligns against token names, and a class named M stays apart."""
    vgg = LayerSeq("v", ("Conv2d", "Conv2d", "MaxPool2d"))
    assert align("CCM", vgg).matches == 3  # was 0: "C" never equalled "Conv2d"
    al = align(["Conv2d", "M"], vgg)
    assert al.matches == 1 and al.pairs[-1] == ("M", "MaxPool2d", MISMATCH)
    top, _, bot = str(al).splitlines()[:3]
    assert top.split()[2][1] != "M" and bot.split()[2] == "CCM"

"""Needleman-Wunsch global alignment of layer sequences (Numba DP fill and traceback).

Traceback rule (it decides ``matches`` and so the similarity index): from cell (n, m)
back to (0, 0), take the diagonal step if it explains the cell's score, else the step up
(a token of ``a`` against a gap), else the step left (a token of ``b`` against a gap).
Rows of the DP matrix belong to ``a``, columns to ``b``.

Scores are exact: every score must be an integer within ±(2³¹−1), and the DP runs in int32
when ``(n+m+1)·max|score|`` fits (no cell or candidate can pass that bound), else in int64.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence, Union

import numpy as np
from numba import njit

from .errors import UsageError, shorten
from .tokens import LayerSeq, letter, letters, tokens_from_letters

MATCH, MISMATCH, GAP_B, GAP_A = "match", "mismatch", "gap_b", "gap_a"
OPS = (MATCH, MISMATCH, GAP_B, GAP_A)  # gap_b: a's token against a gap in b; gap_a: the reverse

SeqLike = Union[LayerSeq, str, Sequence[str]]

SCORE_LIMIT = 2**31 - 1  # |score| bound: (n+m+1)·SCORE_LIMIT stays far inside int64
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def check_score(name: str, value) -> int:
    """``value`` as an int score, or ``UsageError`` naming it.

    Integers (numpy ones too) and integral floats are accepted; bools, fractions, NaN,
    infinities, non-numbers and magnitudes over ``SCORE_LIMIT`` are refused.
    """
    if type(value) is int and -SCORE_LIMIT <= value <= SCORE_LIMIT:  # the common case, fast
        return value
    shown = repr(value) if isinstance(value, str) else str(value)  # np.True_ prints as True
    bad = f"{name} score must be an integer within ±{SCORE_LIMIT}, got {shorten(shown)}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise UsageError(bad)
    if not isinstance(value, numbers.Integral):
        if not math.isfinite(value) or int(value) != value:
            raise UsageError(bad)
    v = int(value)
    if abs(v) > SCORE_LIMIT:
        raise UsageError(bad)
    return v


def score_dtype(n: int, m: int, top: int, limit: int = _INT64_MAX) -> type:
    """``np.int32`` when every DP value of an n×m alignment fits, else ``np.int64``.

    ``top`` is the largest score magnitude.  A path to cell (i, j) has at most i + j steps, so
    every cell and every candidate one step further lies within ``(n + m + 1)·top``; beyond
    ``limit`` the alignment is refused with ``UsageError``.
    """
    bound = (int(n) + int(m) + 1) * max(int(top), 1)
    if bound <= _INT32_MAX:
        return np.int32
    if bound <= limit:
        return np.int64
    raise UsageError(f"alignment scores could reach {bound:.3g} and overflow 64-bit integers "
                     f"(lengths {n} and {m}, largest score magnitude {top}); use smaller scores")


def _top(sub: np.ndarray, gap: int) -> int:
    """Largest score magnitude, in Python ints (``np.abs`` wraps at the int64 minimum)."""
    vals = [abs(int(gap))]
    if sub.size:
        vals += [abs(int(sub.max())), abs(int(sub.min()))]
    return max(vals)


@dataclass(frozen=True)
class Scoring:
    """NW scores: the paper's +1 match, −2 mismatch, −2 (linear) gap unless told otherwise.

    ``substitution`` optionally overrides the score of given token pairs (symmetric, any
    integer).  Scores are integers within ±``SCORE_LIMIT``; ``match`` must exceed ``mismatch``
    and ``gap`` must be negative (a penalty), else ``UsageError`` names the value.
    """

    match: int = 1
    mismatch: int = -2
    gap: int = -2
    substitution: Mapping[tuple[str, str], int] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        for k in ("match", "mismatch", "gap"):
            object.__setattr__(self, k, check_score(k, getattr(self, k)))
        if self.match <= self.mismatch:
            raise UsageError(f"the match score ({self.match}) must be greater than the mismatch score "
                             f"({self.mismatch})")
        if self.gap >= 0:
            raise UsageError(f"the gap score must be negative (it is a penalty), got {self.gap}")
        if self.substitution is not None:
            if not isinstance(self.substitution, Mapping):
                raise UsageError(f"substitution must map (token, token) pairs to scores, "
                                 f"got {shorten(repr(self.substitution))}")
            subs = {}
            for key, v in self.substitution.items():
                if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(t, str) for t in key)):
                    raise UsageError(f"substitution keys must be (token, token) pairs, got {shorten(repr(key))}")
                subs[key] = check_score(f"substitution {key[0]}/{key[1]}", v)
            object.__setattr__(self, "substitution", subs)

    def table(self, vocab: Sequence[str]) -> np.ndarray:
        """Dense score table over ``vocab`` (token ids index rows and columns)."""
        k = len(vocab)
        s = np.full((k, k), self.mismatch, dtype=np.int64)
        np.fill_diagonal(s, self.match)
        if self.substitution:
            idx = {t: i for i, t in enumerate(vocab)}
            for (x, y), v in self.substitution.items():
                if x in idx and y in idx:
                    s[idx[x], idx[y]] = s[idx[y], idx[x]] = int(v)
        return s


PAPER = Scoring()


@njit(cache=True, nogil=True)
def _row(prev, cur, srow, gap, first):
    """One DP row: diagonal/vertical moves (vectorizable), then horizontal ones as a running max."""
    m = cur.shape[0] - 1
    for j in range(1, m + 1):
        d = prev[j - 1] + srow[j - 1]
        u = prev[j] + gap
        cur[j] = d if d >= u else u
    run = first
    cur[0] = first
    for j in range(1, m + 1):
        run = max(run + gap, cur[j])
        cur[j] = run


# _profile, _fill and _align compute in the dtype of ``sub`` (int32, or int64 when
# ``score_dtype`` says int32 could overflow); Numba compiles one version of each.


@njit(cache=True, nogil=True)
def _profile(b, sub):
    # Score of every token against all of b, contiguous per token (no gathers in the row loop).
    prof = np.empty((sub.shape[0], b.shape[0]), dtype=sub.dtype)
    for t in range(sub.shape[0]):
        for j in range(b.shape[0]):
            prof[t, j] = sub[t, b[j]]
    return prof


@njit(cache=True, nogil=True)
def _fill(a, b, sub, gap):
    """The full (n+1)×(m+1) DP matrix."""
    n, m = a.shape[0], b.shape[0]
    T = sub.dtype.type
    g = T(gap)
    prof = _profile(b, sub)
    h = np.empty((n + 1, m + 1), dtype=sub.dtype)
    for j in range(m + 1):
        h[0, j] = j * g
    for i in range(1, n + 1):
        _row(h[i - 1], h[i], prof[a[i - 1]], g, T(i) * g)
    return h


@njit(cache=True, nogil=True)
def _align(a, b, sub, gap):
    """Score and traceback (op codes, path cells) storing one direction byte per cell.

    Directions follow the documented rule: diagonal if it explains the score, else up, else left.
    """
    n, m = a.shape[0], b.shape[0]
    T = sub.dtype.type
    g = T(gap)
    prof = _profile(b, sub)
    dirs = np.empty((n + 1, m + 1), dtype=np.int8)
    prev = np.empty(m + 1, dtype=sub.dtype)
    cur = np.empty(m + 1, dtype=sub.dtype)
    for j in range(m + 1):
        prev[j] = j * g
        dirs[0, j] = 2
    for i in range(1, n + 1):
        srow = prof[a[i - 1]]
        _row(prev, cur, srow, g, T(i) * g)
        drow = dirs[i]
        drow[0] = 1
        for j in range(1, m + 1):
            c = cur[j]
            drow[j] = 0 if c == prev[j - 1] + srow[j - 1] else (1 if c == prev[j] + g else 2)
        prev, cur = cur, prev
    score = prev[m]
    ops = np.empty(n + m, dtype=np.int8)
    cells = np.empty((n + m + 1, 2), dtype=np.int32)
    i, j, k = n, m, 0
    cells[0, 0] = i
    cells[0, 1] = j
    while i > 0 or j > 0:
        d = dirs[i, j]
        if d == 0:
            ops[k] = 0 if a[i - 1] == b[j - 1] else 1
            i -= 1
            j -= 1
        elif d == 1:
            ops[k] = 2
            i -= 1
        else:
            ops[k] = 3
            j -= 1
        k += 1
        cells[k, 0] = i
        cells[k, 1] = j
    return score, ops[:k][::-1].copy(), cells[:k + 1][::-1].copy()


@njit(cache=True, nogil=True)
def _stats(a, b, sub, gap):
    """Score, matches and alignment length of the traceback path, in O(m) memory.

    Each cell carries the counts of the path the traceback rule would take from it,
    so the result equals ``align`` without storing the DP matrix.
    """
    n, m = a.shape[0], b.shape[0]
    h = np.empty(m + 1, dtype=np.int64)
    mt = np.zeros(m + 1, dtype=np.int64)
    ln = np.empty(m + 1, dtype=np.int64)
    for j in range(m + 1):
        h[j] = j * gap
        ln[j] = j
    for i in range(1, n + 1):
        diag_h, diag_m, diag_l = h[0], mt[0], ln[0]
        h[0] = i * gap
        mt[0] = 0
        ln[0] = i
        ai = a[i - 1]
        for j in range(1, m + 1):
            up_h, up_m, up_l = h[j], mt[j], ln[j]
            s = sub[ai, b[j - 1]]
            d = diag_h + s
            u = up_h + gap
            lf = h[j - 1] + gap
            best = d
            if u > best:
                best = u
            if lf > best:
                best = lf
            if best == d:
                nm = diag_m + (1 if ai == b[j - 1] else 0)
                nl = diag_l + 1
            elif best == u:
                nm = up_m
                nl = up_l + 1
            else:
                nm = mt[j - 1]
                nl = ln[j - 1] + 1
            diag_h, diag_m, diag_l = up_h, up_m, up_l
            h[j] = best
            mt[j] = nm
            ln[j] = nl
    return h[m], mt[m], ln[m]


def align_stats(a: SeqLike, b: SeqLike, scoring: Scoring | None = None) -> tuple[int, int, int]:
    """``(score, matches, length)`` of ``align(a, b)`` without building the DP matrix (int64 DP)."""
    sc = scoring if scoring is not None else PAPER
    ia, ib, vocab = encode(a, b)
    sub = _table(sc, vocab)
    score_dtype(len(ia), len(ib), _top(sub, sc.gap))  # refuses what int64 cannot hold
    s, mt, ln = _stats(ia, ib, sub, sc.gap)
    return int(s), int(mt), int(ln)


def _table(sc: Scoring, vocab: Sequence[str]) -> np.ndarray:
    return sc.table(vocab) if vocab else np.zeros((1, 1), dtype=np.int64)


def _dp_inputs(sc: Scoring, ia: np.ndarray, ib: np.ndarray, vocab: Sequence[str]) -> np.ndarray:
    """The substitution table in the dtype the DP must run in (int32 when it provably fits)."""
    sub = _table(sc, vocab)
    return sub.astype(score_dtype(len(ia), len(ib), _top(sub, sc.gap)))


def _as_tokens(x: SeqLike) -> tuple[str, ...]:
    """Token names: a ``str`` is a one-letter string (``C`` is Conv2d), any other sequence holds names."""
    if isinstance(x, LayerSeq):
        return x.tokens
    if isinstance(x, str):
        return tokens_from_letters(x)
    return tuple(x)


def encode(a: SeqLike, b: SeqLike) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Token ids of both sequences over their joint (sorted) vocabulary (strings are letter strings)."""
    ta, tb = _as_tokens(a), _as_tokens(b)
    vocab = sorted(set(ta) | set(tb))
    idx = {t: i for i, t in enumerate(vocab)}.__getitem__
    return (np.fromiter(map(idx, ta), np.int64, len(ta)), np.fromiter(map(idx, tb), np.int64, len(tb)), vocab)


@dataclass(frozen=True, eq=False)
class Alignment:
    """A global alignment: score, DP matrix, traceback path and the aligned token pairs.

    ``matrix`` is computed on first access (the traceback itself only keeps one
    direction byte per cell), so aligning many long pairs stays cheap.
    """

    a: tuple[str, ...]
    b: tuple[str, ...]
    score: int
    opcodes: np.ndarray = field(repr=False)  # int8: 0 match, 1 mismatch, 2 gap_b, 3 gap_a
    cells: np.ndarray = field(repr=False)  # (length+1, 2) traceback cells from (0, 0) to (n, m)
    name_a: str = "a"
    name_b: str = "b"
    paths_a: tuple[str, ...] = field(default=(), repr=False)
    paths_b: tuple[str, ...] = field(default=(), repr=False)
    scoring: Scoring = field(default=PAPER, repr=False)

    @cached_property
    def matrix(self) -> np.ndarray:
        """The (n+1)×(m+1) DP matrix (rows: ``a``, columns: ``b``), int32 or, for large scores, int64."""
        ia, ib, vocab = encode(self.a, self.b)
        return _fill(ia, ib, _dp_inputs(self.scoring, ia, ib, vocab), self.scoring.gap)

    @cached_property
    def path(self) -> tuple[tuple[int, int], ...]:
        """Traceback cells from (0, 0) to (n, m)."""
        return tuple(map(tuple, self.cells.tolist()))

    @cached_property
    def ops(self) -> tuple[str, ...]:
        """One op per alignment column: match, mismatch, gap_b (a vs gap) or gap_a (gap vs b)."""
        return tuple(OPS[o] for o in self.opcodes.tolist())

    @property
    def matches(self) -> int:
        """Aligned columns with equal tokens."""
        return int(np.count_nonzero(self.opcodes == 0))

    @property
    def mismatches(self) -> int:
        """Aligned columns with different tokens."""
        return int(np.count_nonzero(self.opcodes == 1))

    @property
    def gaps(self) -> int:
        """Columns where one sequence has a gap."""
        return int(np.count_nonzero(self.opcodes >= 2))

    @property
    def length(self) -> int:
        """Number of alignment columns."""
        return int(self.opcodes.shape[0])

    @property
    def similarity(self) -> float:
        """Similarity index: matches / alignment length (1.0 only for identical sequences)."""
        return self.matches / self.length if self.length else 1.0

    @property
    def normalized_score(self) -> float:
        """Score divided by the best possible score, ``match × max(len(a), len(b))``."""
        top = self.scoring.match * max(len(self.a), len(self.b))
        return self.score / top if top else 1.0

    @property
    def pairs(self) -> list[tuple[str | None, str | None, str]]:
        """Aligned columns as ``(token_a or None, token_b or None, op)``."""
        out = []
        for (i0, j0), (i1, j1), op in zip(self.path, self.path[1:], self.ops):
            out.append((self.a[i0] if i1 > i0 else None, self.b[j0] if j1 > j0 else None, op))
        return out

    def columns(self) -> list[dict]:
        """Aligned columns with positions and module paths, for diffs and JSON."""
        rows = []
        for (i0, j0), (i1, j1), op in zip(self.path, self.path[1:], self.ops):
            ia = i0 if i1 > i0 else None
            jb = j0 if j1 > j0 else None
            rows.append({
                "op": op,
                "a": None if ia is None else self.a[ia], "a_index": ia,
                "a_path": None if ia is None or not self.paths_a else self.paths_a[ia],
                "b": None if jb is None else self.b[jb], "b_index": jb,
                "b_path": None if jb is None or not self.paths_b else self.paths_b[jb],
            })
        return rows

    def to_dict(self, matrix: bool = False) -> dict:
        """JSON-ready summary (the DP matrix only when asked)."""
        d = {
            "a": self.name_a, "b": self.name_b,
            "score": int(self.score), "similarity": self.similarity,
            "normalized_score": self.normalized_score,
            "matches": self.matches, "mismatches": self.mismatches, "gaps": self.gaps,
            "length": self.length,
            "scoring": {"match": self.scoring.match, "mismatch": self.scoring.mismatch, "gap": self.scoring.gap},
            "tokens_a": list(self.a), "tokens_b": list(self.b), "ops": self.columns(),
        }
        if matrix:
            d["matrix"] = self.matrix.tolist()
        return d

    def format(self, width: int = 80) -> str:
        """Biopython-style text: the two letter strings with ``|`` match, ``.`` mismatch, ``-`` gap."""
        letters(sorted(set(self.a) | set(self.b)))  # new tokens get letters in sorted order
        top, mid, bot = [], [], []
        for ta, tb, op in self.pairs:
            top.append(letter(ta) if ta is not None else "-")
            bot.append(letter(tb) if tb is not None else "-")
            mid.append({MATCH: "|", MISMATCH: ".", GAP_A: "-", GAP_B: "-"}[op])
        label = max(len(self.name_a), len(self.name_b), 1)
        lines: list[str] = []
        ia = ib = 0
        step = max(10, width - label - 14)
        for s in range(0, max(len(top), 1), step):
            ca, cm, cb = "".join(top[s:s + step]), "".join(mid[s:s + step]), "".join(bot[s:s + step])
            lines.append(f"{self.name_a:<{label}} {ia:>5} {ca} {ia + len(ca) - ca.count('-')}")
            lines.append(f"{'':<{label}} {s:>5} {cm}")
            lines.append(f"{self.name_b:<{label}} {ib:>5} {cb} {ib + len(cb) - cb.count('-')}")
            lines.append("")
            ia += len(ca) - ca.count("-")
            ib += len(cb) - cb.count("-")
        return "\n".join(lines).rstrip("\n") + "\n"

    def __str__(self) -> str:
        return self.format()

    def matrix_text(self) -> str:
        """The DP matrix as a table, traceback cells marked with ``*``."""
        on_path = set(self.path)
        letters(sorted(set(self.a) | set(self.b)))
        head = ["", "-"] + [letter(t) for t in self.b]
        rows = [head]
        for i in range(self.matrix.shape[0]):
            lab = "-" if i == 0 else letter(self.a[i - 1])
            rows.append([lab, *(f"{self.matrix[i, j]}{'*' if (i, j) in on_path else ''}"
                                for j in range(self.matrix.shape[1]))])
        w = max(len(c) for r in rows for c in r)
        return "\n".join(" ".join(c.rjust(w) for c in r) for r in rows) + "\n"


def align(a: SeqLike, b: SeqLike, match: int = 1, mismatch: int = -2, gap: int = -2,
          scoring: Scoring | None = None) -> Alignment:
    """Globally align two layer sequences.

    Args:
        a, b: ``LayerSeq``s, token-name lists, or one-letter strings (``"CCM"``: Conv2d, Conv2d, MaxPool2d).
        match, mismatch, gap: scores, used when ``scoring`` is not given (validated by ``Scoring``).
        scoring: a ``Scoring`` (with an optional substitution table).

    Returns:
        The ``Alignment``; its score is exact (int64 DP when int32 could overflow).
    """
    sc = scoring if scoring is not None else Scoring(match, mismatch, gap)
    ta, tb = _as_tokens(a), _as_tokens(b)  # letter strings decoded once
    ia, ib, vocab = encode(ta, tb)
    score, opcodes, cells = _align(ia, ib, _dp_inputs(sc, ia, ib, vocab), sc.gap)
    return Alignment(
        a=ta, b=tb, score=int(score), opcodes=opcodes, cells=cells,
        name_a=a.name if isinstance(a, LayerSeq) else "a",
        name_b=b.name if isinstance(b, LayerSeq) else "b",
        paths_a=a.paths if isinstance(a, LayerSeq) else (),
        paths_b=b.paths if isinstance(b, LayerSeq) else (),
        scoring=sc,
    )

"""Many NW alignments per call: score, matches and length, vectorized across pairs.

Inter-sequence SIMD in the style of SWIPE/Opal: ``LANES`` pairs are aligned side by side,
lane ``l`` of every DP column holding pair ``l``'s cell, so the innermost loop runs over lanes
with no dependency between them and LLVM emits AVX-512/AVX2 code.  As in SWIPE, each lane
streams a queue of pairs: when its pair's last row is done it takes its result (row
``len(a)``, column ``len(b)``) and restarts on the next pair, so lanes never wait for the
longest ``a``.  Pairs are grouped by ``len(b)`` (the columns a group sweeps) and spread over
the lanes longest-first, which keeps padding small; groups run on Numba threads (``prange``,
dynamic scheduling, costliest first).

The results equal ``archsim.align.align`` / ``_stats`` for every pair, tie-breaking included:
each cell carries the counts of the path the traceback rule (diagonal, else up, else left)
would follow from it.  With a uniform table (one match and one mismatch score) only the
match count is carried: the number of diagonal steps, hence the length, follows from the
score, ``score = M·match + (D−M)·mismatch + (n+m−2D)·gap``.  Scores run in int16 lanes when
``(n+m+1)·max|score|`` provably fits, else in int32, else in int64 (the same kernel compiled
for wider lanes: slower, but exact, so that every entry point accepts the scores ``align``
accepts); only bounds beyond 2⁶¹ are refused.

    >>> ids, vocab = encode_many(["CBRCBRM", "CBRM", "CRM"])
    >>> score, matches, length = all_pairs(ids)   # pairs (0, 1), (0, 2), (1, 2)
    >>> score.tolist(), matches.tolist(), length.tolist()
    ([-2, -5, 1], [4, 3, 3], [7, 7, 4])
"""
from __future__ import annotations

from typing import Sequence, Union

import numba
import numpy as np
from numba import njit, prange, uint64

from .alignment import PAPER
from .errors import UsageError
from .tokens import LayerSeq, tokens_from_letters

LANES = 64  # pairs side by side: two 512-bit vectors of int16 (measured faster than 32 here)
_INT16_MAX = 32767
_INT32_MAX = 2**31 - 1
# int64 lanes: the uniform path's length recovery adds three terms of up to the bound each.
_INT64_SAFE = 2**61

# The DP state of one group lives in one flat array, one block per column j; the two row
# buffers swap roles on odd and even rows.  Every access in the lane loop is then at a
# constant offset from the column's block, so LLVM proves that stores never overlap the
# loads of other lanes and vectorizes without runtime alias checks or a scalar fallback.
# Indices are unsigned so that Numba emits no negative-index wraparound selects.
_L = uint64(LANES)
_L2, _L3, _L4, _L5, _L6 = (uint64(k * LANES) for k in (2, 3, 4, 5, 6))
_Z = uint64(0)
_SU = uint64(5 * LANES)  # uniform: H0 M0 H1 M1 b
_ST = uint64(7 * LANES)  # table:   H0 M0 D0 H1 M1 D1 b

TokenSeq = Union[LayerSeq, str, Sequence[str]]


def encode_many(seqs: Sequence[TokenSeq]) -> tuple[list[np.ndarray], list[str]]:
    """Token-id arrays of all sequences over their joint sorted vocabulary (as ``align.encode``).

    A ``str`` is a one-letter string (``"CBR"``: Conv2d, BatchNorm2d, ReLU); any other sequence holds names.
    """
    toks = [s.tokens if isinstance(s, LayerSeq) else tokens_from_letters(s) if isinstance(s, str) else tuple(s)
            for s in seqs]
    vocab = sorted(set().union(*toks)) if toks else []
    idx = {t: i for i, t in enumerate(vocab)}
    return [np.fromiter((idx[t] for t in t_), np.int32, len(t_)) for t_ in toks], vocab


def default_table(k: int, match: int = PAPER.match, mismatch: int = PAPER.mismatch) -> np.ndarray:
    """A k×k uniform substitution table (``match`` on the diagonal, ``mismatch`` elsewhere)."""
    s = np.full((max(k, 1), max(k, 1)), mismatch, dtype=np.int64)
    np.fill_diagonal(s, match)
    return s


# ---------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True, inline="always")
def _sweep_uniform(W, atok, h0, m, g, tx, dm, SH, SM, DH, DM):
    # One DP row of every lane: read from slots (SH, SM) of each column block, write (DH, DM).
    T = W.dtype.type
    zero = T(0)
    for l0 in range(LANES):
        W[DH + uint64(l0)] = h0[l0]
        W[DM + uint64(l0)] = zero
    for j in range(1, m + 1):
        o = uint64(j) * _SU
        p = o - _SU
        for l0 in range(LANES):
            l = uint64(l0)
            hu = W[o + SH + l]
            mu = W[o + SM + l]
            hd = W[p + SH + l]
            md = W[p + SM + l]
            hl = W[p + DH + l]
            mlf = W[p + DM + l]
            e1 = T(atok[l0] == W[o + _L4 + l])
            # Every operation is cast back to the lane type so LLVM keeps 16-bit lanes.
            d = T(T(hd + tx) + T(e1 * dm))
            up = hu >= hl  # up wins ties with left
            e = T(max(hu, hl) + g)
            mo = mu if up else mlf
            mdl = T(md + e1)
            isd = d >= e  # the diagonal wins all ties
            W[o + DH + l] = max(d, e)
            W[o + DM + l] = mdl if isd else mo


@njit(cache=True, nogil=True, inline="always")
def _sweep_table(W, atok, arow, h0, sub, m, g, SH, SM, SD, DH, DM, DD):
    # As _sweep_uniform, plus the count of diagonal steps; scores come from the table.
    T = W.dtype.type
    zero = T(0)
    one = T(1)
    for l0 in range(LANES):
        W[DH + uint64(l0)] = h0[l0]
        W[DM + uint64(l0)] = zero
        W[DD + uint64(l0)] = zero
    for j in range(1, m + 1):
        o = uint64(j) * _ST
        p = o - _ST
        for l0 in range(LANES):
            l = uint64(l0)
            hu = W[o + SH + l]
            mu = W[o + SM + l]
            du = W[o + SD + l]
            hd = W[p + SH + l]
            md = W[p + SM + l]
            dd = W[p + SD + l]
            hl = W[p + DH + l]
            mlf = W[p + DM + l]
            dlf = W[p + DD + l]
            b = W[o + _L6 + l]
            e1 = T(atok[l0] == b)
            d = T(hd + sub[arow[l0] + b])
            up = hu >= hl
            e = T(max(hu, hl) + g)
            mo = mu if up else mlf
            do = du if up else dlf
            isd = d >= e
            W[o + DH + l] = max(d, e)
            W[o + DM + l] = T(md + e1) if isd else mo
            W[o + DD + l] = T(dd + one) if isd else do


@njit(cache=True, nogil=True)
def _start(l, W, S, SH, SB, mc, ids, offs, pa, pb, q, qend, cur, r, pn, pm, aoff, gap, out_s, out_m, out_d):
    """Put lane ``l`` on its next pair with a non-empty ``a`` (row 0 into slot SH); False when none is left."""
    T = W.dtype.type
    while cur[l] < qend:
        p = q[cur[l]]
        n = offs[pa[p] + 1] - offs[pa[p]]
        m = offs[pb[p] + 1] - offs[pb[p]]
        if n == 0:  # no rows to stream: the result is row 0
            out_s[p] = m * gap
            out_m[p] = 0
            out_d[p] = 0
            cur[l] += 1
            continue
        r[l] = 0
        pn[l] = n
        pm[l] = m
        aoff[l] = offs[pa[p]]
        b0 = offs[pb[p]]
        ul = uint64(l)
        for j in range(mc + 1):
            o = uint64(j) * S + ul
            W[o + SH] = T(j * gap)
            W[o + SH + _L] = T(0)
            if S == _ST:
                W[o + SH + _L2] = T(0)
            W[o + SB] = T(ids[b0 + j - 1]) if 1 <= j <= m else T(0)
        return True
    return False


@njit(cache=True, nogil=True)
def _group(ids, offs, pa, pb, q, qs, g, mc, uniform, match, mismatch, sub, k, gap, W, atok, arow, h0,
           cur, qe, r, pn, pm, aoff, active, out_s, out_m, out_d):
    """Stream every lane's queue of pairs of group ``g`` through ``mc`` columns."""
    T = W.dtype.type
    S = _SU if uniform else _ST
    SB = _L4 if uniform else _L6
    hi = _L2 if uniform else _L3  # second row buffer: slots hi, hi+L[, hi+2L]
    tg = T(gap)
    tx = T(mismatch)
    dm = T(match - mismatch)
    left = 0
    for l in range(LANES):
        cur[l] = qs[g * LANES + l]
        qe[l] = qs[g * LANES + l + 1]
        active[l] = _start(l, W, S, _Z, SB, mc, ids, offs, pa, pb, q, qe[l], cur, r, pn, pm, aoff, gap,
                           out_s, out_m, out_d)
        left += active[l]
    t = 0
    while left:
        src = _Z if t % 2 == 0 else hi
        dst = hi if t % 2 == 0 else _Z
        for l in range(LANES):
            if active[l]:
                a = ids[aoff[l] + r[l]]
                atok[l] = T(a)
                arow[l] = np.int32(a) * k
                h0[l] = T((r[l] + 1) * gap)
            else:  # an idle lane computes on harmlessly until the group ends
                atok[l] = T(0)
                arow[l] = 0
                h0[l] = T(0)
        if uniform:
            _sweep_uniform(W, atok, h0, mc, tg, tx, dm, src, src + _L, dst, dst + _L)
        else:
            _sweep_table(W, atok, arow, h0, sub, mc, tg, src, src + _L, src + _L2, dst, dst + _L, dst + _L2)
        for l in range(LANES):
            if active[l]:
                r[l] += 1
                if r[l] == pn[l]:  # last row of this pair: take the result at column len(b)
                    p = q[cur[l]]
                    o = uint64(pm[l]) * S + uint64(l) + dst
                    out_s[p] = W[o]
                    out_m[p] = W[o + _L]
                    if not uniform:
                        out_d[p] = W[o + _L2]
                    cur[l] += 1
                    active[l] = _start(l, W, S, dst, SB, mc, ids, offs, pa, pb, q, qe[l], cur, r, pn, pm,
                                       aoff, gap, out_s, out_m, out_d)
                    left -= 1 - active[l]
        t += 1


@njit(cache=True, nogil=True, parallel=True)
def _run(ids, offs, pa, pb, q, qs, gcols, gorder, uniform, match, mismatch, sub, k, gap, like,
         out_s, out_m, out_d):
    """Every group, costliest first; with chunk size 1 idle threads take the next group."""
    width = 5 * LANES if uniform else 7 * LANES
    for x in prange(gorder.shape[0]):
        g = gorder[x]
        W = np.zeros((gcols[g] + 1) * width, dtype=like.dtype)
        atok = np.zeros(LANES, dtype=like.dtype)
        h0 = np.zeros(LANES, dtype=like.dtype)
        arow = np.zeros(LANES, dtype=np.int32)
        cur = np.zeros(LANES, np.int64)
        qe = np.zeros(LANES, np.int64)
        r = np.zeros(LANES, np.int64)
        pn = np.zeros(LANES, np.int64)
        pm = np.zeros(LANES, np.int64)
        aoff = np.zeros(LANES, np.int64)
        active = np.zeros(LANES, np.bool_)
        _group(ids, offs, pa, pb, q, qs, g, gcols[g], uniform, match, mismatch, sub, k, gap, W,
               atok, arow, h0, cur, qe, r, pn, pm, aoff, active, out_s, out_m, out_d)


_MAX_SPAN = 96


@njit(cache=True, nogil=True)
def _plan(n, m):
    """Groups by len(b) (cut where the estimated padded cells are fewest) and lane queues.

    Returns ``q`` (pair indices, group by group, lane by lane), ``qs`` (queue bounds,
    ``LANES`` per group), each group's columns and its rows (the longest lane's total).
    """
    P = n.shape[0]
    order = np.argsort(m * (n.max() + 1) + n)
    ms = m[order]
    ns = n[order]
    # Cut candidates every half batch; a group costs (its longest b) × (rows of its fullest
    # lane, at least its longest a) × LANES cells.
    step = max(1, LANES // 2)
    nc = (P + step - 1) // step + 1
    cand = np.minimum(np.arange(nc) * step, P)
    best = np.full(nc, np.inf)
    prev = np.zeros(nc, np.int64)
    best[0] = 0.0
    for e in range(1, nc):
        nmax = 0
        nsum = 0
        # Groups span at most _MAX_SPAN candidates: keeps planning linear in the pair count
        # (a million zoo pairs) at no measurable cost in padding.
        for s in range(e - 1, max(-1, e - 1 - _MAX_SPAN), -1):
            for p in range(cand[s], cand[s + 1]):
                nmax = max(nmax, ns[p])
                nsum += ns[p]
            rows = max(nmax, (nsum + LANES - 1) // LANES)
            cost = best[s] + float(ms[cand[e] - 1] + 1) * float(rows + 1) * LANES
            if cost < best[e]:
                best[e] = cost
                prev[e] = s
    cuts = [nc - 1]
    while cuts[-1] > 0:
        cuts.append(prev[cuts[-1]])
    cuts = cuts[::-1]
    G = len(cuts) - 1
    q = np.empty(P, np.int64)
    qs = np.zeros(G * LANES + 1, np.int64)
    gcols = np.zeros(G, np.int64)
    grows = np.zeros(G, np.int64)
    lane = np.zeros(P, np.int64)
    pos = 0
    for g in range(G):
        lo, hi = cand[cuts[g]], cand[cuts[g + 1]]
        gcols[g] = ms[hi - 1]
        # Longest a first, each to the least loaded lane: lanes end close together.
        idx = order[lo:hi][np.argsort(-ns[lo:hi])]
        load = np.zeros(LANES, np.int64)
        cnt = np.zeros(LANES, np.int64)
        for x in range(idx.shape[0]):
            best_l = 0
            for l in range(1, LANES):
                if load[l] < load[best_l]:
                    best_l = l
            load[best_l] += n[idx[x]]
            cnt[best_l] += 1
            lane[x] = best_l
        grows[g] = load.max()
        start = np.zeros(LANES, np.int64)
        for l in range(1, LANES):
            start[l] = start[l - 1] + cnt[l - 1]
        for l in range(LANES):
            qs[g * LANES + l] = pos + start[l]
        fill = start.copy()
        for x in range(idx.shape[0]):
            l = lane[x]
            q[pos + fill[l]] = idx[x]
            fill[l] += 1
        pos += idx.shape[0]
    qs[G * LANES] = pos
    return q, qs, gcols, grows


# ---------------------------------------------------------------------------- public API


def padding_efficiency(n: np.ndarray, m: np.ndarray) -> float:
    """Useful DP cells over the cells the kernel computes (idle lanes and padding included)."""
    n = np.asarray(n, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    if n.size == 0:
        return 1.0
    _, _, gcols, grows = _plan(n, m)
    done = int((gcols * grows).sum()) * LANES
    return float((n * m).sum() / done) if done else 1.0


def _uniform(sub: np.ndarray) -> tuple[bool, int, int]:
    k = sub.shape[0]
    match = int(sub[0, 0])
    if k == 1:
        return True, match, match
    off = sub[~np.eye(k, dtype=bool)]
    ok = bool((np.diag(sub) == match).all() and (off == off[0]).all())
    return ok, match, int(off[0])


def lane_dtype(bound: int, k: int) -> type:
    """The narrowest lane type whose DP cannot overflow: int16, int32 or int64.

    ``bound`` is ``(max(n + m) + 1)·max|score|`` (no cell or candidate exceeds it), ``k`` the
    alphabet size (token ids are stored in the lanes too).  Beyond 2⁶¹ raises ``UsageError``.
    """
    if bound <= _INT16_MAX and k <= _INT16_MAX:
        return np.int16
    if bound <= _INT32_MAX and k <= _INT32_MAX:
        return np.int32
    if bound <= _INT64_SAFE:
        return np.int64
    raise UsageError(f"alignment scores could reach {bound:.3g} and overflow 64-bit integers; "
                     f"use smaller scores or shorter sequences")


def _int_table(sub) -> np.ndarray:
    """``sub`` as an int64 array, refusing bools, fractions, NaN and values beyond int64."""
    raw = np.asarray(sub)
    kind = raw.dtype.kind
    ok = kind == "i" or (kind == "u" and (raw.size == 0 or int(raw.max()) <= np.iinfo(np.int64).max))
    if kind == "f":
        with np.errstate(invalid="ignore"):
            ok = bool(np.isfinite(raw).all() and (raw == np.round(raw)).all()
                      and (raw.size == 0 or np.abs(raw).max() < 2.0**63))
    if not ok:
        raise UsageError(f"substitution table must hold integer scores within int64, got dtype {raw.dtype}")
    return raw.astype(np.int64)


def pair_stats(seqs: Sequence[np.ndarray], pairs: np.ndarray, sub: np.ndarray | None = None,
               gap: int = PAPER.gap, threads: int | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score, matches, length)`` of ``align(seqs[i], seqs[j])`` per row ``(i, j)`` of ``pairs``.

    Args:
        seqs: token-id arrays (``encode_many``).
        pairs: ``(P, 2)`` indices into ``seqs``.
        sub: a square integer table over those ids (default: the paper's +1/−2).
        gap: the linear gap score (an integer).
        threads: defaults to Numba's current thread count, capped at ``NUMBA_NUM_THREADS``.

    Returns:
        Three int32 arrays, or int64 ones when the scores need int64 lanes (``lane_dtype``);
        every value is exact.  Bad tables, ids or scores raise ``UsageError`` (a ``ValueError``).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    P = pairs.shape[0]
    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    offs = np.zeros(len(seqs) + 1, dtype=np.int64)
    np.cumsum(lens, out=offs[1:])
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]) if len(seqs) else np.zeros(0, np.int64)
    if sub is None:
        sub = default_table(int(ids.max()) + 1 if ids.size else 1)
    sub = _int_table(sub)
    k = sub.shape[0] if sub.ndim else 0
    if sub.ndim != 2 or sub.shape[1] != k or k == 0:
        raise UsageError(f"substitution table must be square and non-empty, got shape {sub.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= k):
        raise UsageError(f"token ids must lie in [0, {k}) to index the substitution table")
    if P and (pairs.min() < 0 or pairs.max() >= len(seqs)):
        raise UsageError("pair indices out of range")
    gap = _check_gap(gap)
    if P == 0:
        return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    n, m = lens[pairs[:, 0]], lens[pairs[:, 1]]
    uniform, match, mismatch = _uniform(sub)
    # Skipping the diagonal-step count needs the score to determine it.
    uniform = uniform and (k == 1 or mismatch != 2 * gap)
    # Any path to cell (i, j) has at most i + j steps, so |H| ≤ (i + j)·max|score|, and the
    # candidates one step further stay within (n + m + 1)·max|score| (Python ints: no wrap).
    top = max(abs(int(sub.max())), abs(int(sub.min())), abs(gap), 1)
    bound = (int((n + m).max()) + 1) * top
    like = np.zeros(1, lane_dtype(bound, k))
    odt = np.int64 if like.dtype == np.int64 else np.int32
    out = (np.zeros(P, odt), np.zeros(P, odt), np.zeros(P, odt))

    q, qs, gcols, grows = _plan(n, m)
    gorder = np.argsort(-(gcols + 1) * (grows + 1), kind="stable")
    sc = np.zeros(P, np.int64)
    mt = np.zeros(P, np.int64)
    dg = np.zeros(P, np.int64)
    want = numba.get_num_threads() if threads is None else int(threads)
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(want, numba.config.NUMBA_NUM_THREADS)))
    # Dynamic scheduling: a thread slowed by other processes simply takes fewer groups.
    prev_chunk = numba.set_parallel_chunksize(1)
    try:
        _run(ids, offs, pairs[:, 0].copy(), pairs[:, 1].copy(), q, qs, gcols, gorder, uniform,
             match, mismatch, sub.astype(like.dtype).ravel(), k, gap, like, sc, mt, dg)
    finally:
        numba.set_parallel_chunksize(prev_chunk)
        numba.set_num_threads(prev)
    if uniform:
        if k == 1:
            dg = mt  # a single token: every diagonal step is a match
        else:
            dg = (sc - mt * (match - mismatch) - (n + m) * gap) // (mismatch - 2 * gap)
    for arr, src in zip(out, (sc, mt, n + m - dg)):
        arr[:] = src
    return out


def _check_gap(gap) -> int:
    """The gap score as an int (any integer the lanes can hold; ``Scoring`` is stricter)."""
    if isinstance(gap, (bool, np.bool_)) or not isinstance(gap, (int, np.integer, float, np.floating)):
        raise UsageError(f"gap must be an integer score, got {gap!r}")
    if isinstance(gap, (float, np.floating)) and not (np.isfinite(gap) and int(gap) == gap):
        raise UsageError(f"gap must be an integer score, got {gap!r}")
    return int(gap)


def triu_pairs(n: int) -> np.ndarray:
    """The ``(P, 2)`` index pairs ``i < j`` of ``n`` sequences, row-major (``np.triu_indices`` order)."""
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1).astype(np.int64)


def all_pairs(seqs: Sequence[np.ndarray], sub: np.ndarray | None = None, gap: int = PAPER.gap,
              threads: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pair_stats`` of every pair ``i < j``, in ``triu_pairs(len(seqs))`` order."""
    return pair_stats(seqs, triu_pairs(len(seqs)), sub, gap, threads)

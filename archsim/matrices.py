"""N×N similarity-index and correlation-similarity matrices over many models, with clustering."""
from __future__ import annotations

from typing import Iterable, Sequence, Union

import numpy as np

from .alignment import PAPER, Scoring
from .errors import ArchsimError, UnknownNameError, UsageError, shorten
from .presets import PresetEntry
from .tokens import DEFAULT_PROFILE, PROFILES, LayerSeq

ModelItem = Union[str, PresetEntry, LayerSeq]

# Above this many DP cells the pair loop runs in batches so a progress bar can advance.
_PROGRESS_CELLS = 200_000_000
# progress=None: bars appear only once work has taken this long (cache hits stay silent).
_PROGRESS_DELAY_S = 1.0


def _bar(progress: bool | None, **kw):
    from tqdm import tqdm
    return tqdm(disable=progress is False, delay=0 if progress else _PROGRESS_DELAY_S, leave=False, **kw)


def _label(item: ModelItem) -> str:
    if isinstance(item, PresetEntry):
        return item.label
    if isinstance(item, LayerSeq):
        return item.name
    return str(item)


def _load_one(item: ModelItem, profile: str | None, cache: bool) -> LayerSeq:
    from .tracing import extract
    if isinstance(item, LayerSeq):
        if profile is None or profile == item.profile:
            return item
        try:
            return item.with_profile(profile)
        except ValueError as exc:
            raise ArchsimError(f"{shorten(item.name)}: {exc}") from exc
    if isinstance(item, PresetEntry):
        seq = extract(item.model, profile=profile or item.profile, cache=cache)
    elif isinstance(item, str):
        seq = extract(item, profile=profile or DEFAULT_PROFILE, cache=cache)
    else:
        raise UsageError(f"cannot compare {type(item).__name__} {shorten(repr(item))}: give a model name, "
                           f"a PresetEntry or a LayerSeq")
    label = _label(item)
    if seq.name == label:
        return seq
    return LayerSeq(label, seq.tokens, seq.paths, seq.profile, seq.order, seq.source, seq.input_size, seq.warnings)


def load_sequences(models: Iterable[ModelItem], profile: str | None = None, cache: bool = True,
                   progress: bool | None = None) -> list[LayerSeq]:
    """Token sequences of ``models`` (names, preset entries or LayerSeqs), named by their labels."""
    items = list(models)
    if profile is not None and profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    labels = [_label(m) for m in items]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise UsageError(f"each model may appear only once; repeated: {', '.join(shorten(d) for d in dupes)}")
    out = []
    with _bar(progress, total=len(items), desc="tokens", unit="model") as bar:
        for item, label in zip(items, labels):
            bar.set_postfix_str(label, refresh=False)
            out.append(_load_one(item, profile, cache))
            bar.update()
    return out


def pair_matrices(seqs: Sequence[LayerSeq], scoring: Scoring | None = None,
                  progress: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(score, matches, length)`` N×N arrays; pair (i, j), i < j, aligns ``seqs[i]`` (rows) against ``seqs[j]``."""
    from .kernel import encode_many, pair_stats, triu_pairs
    sc = scoring if scoring is not None else PAPER
    n = len(seqs)
    ids, vocab = encode_many(list(seqs))
    sub = sc.table(vocab) if vocab else np.zeros((1, 1), dtype=np.int64)
    pairs = triu_pairs(n)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    cost = (lengths[pairs[:, 0]] + 1) * (lengths[pairs[:, 1]] + 1)
    total = int(cost.sum())
    score = np.zeros(len(pairs), dtype=np.int64)
    matches = np.zeros(len(pairs), dtype=np.int64)
    length = np.zeros(len(pairs), dtype=np.int64)
    # One kernel call is fastest; split into a few calls only to move a progress bar.
    batched = progress is True or (progress is None and total >= _PROGRESS_CELLS)
    with _bar(progress, total=total, desc="align", unit="cell", unit_scale=True) as bar:
        for b in np.array_split(np.arange(len(pairs)), 20 if batched else 1):
            if len(b):
                got = pair_stats(ids, pairs[b], sub, sc.gap)
                for dst, src in zip((score, matches, length), got):
                    dst[b] = src
                bar.update(int(cost[b].sum()))
    pi, pj = pairs[:, 0], pairs[:, 1]
    out = []
    for flat, diag in ((score, lengths * sc.match), (matches, lengths), (length, lengths)):
        m = np.zeros((n, n), dtype=np.int64)
        m[pi, pj] = flat
        m[pj, pi] = flat
        m[np.arange(n), np.arange(n)] = diag
        out.append(m)
    return out[0], out[1], out[2]


def similarity_matrix(models: Iterable[ModelItem], profile: str | None = None, scoring: Scoring | None = None,
                      cluster: bool = False, cache: bool = True, progress: bool | None = None):
    """N×N similarity indices (matches / alignment length; symmetric, diagonal 1) as a DataFrame.

    ``models`` are names, ``PresetEntry``s (each with its own profile unless ``profile``
    is given) or ``LayerSeq``s; names go through the token cache when ``cache`` is True.
    """
    import pandas as pd
    seqs = load_sequences(models, profile, cache, progress)
    if not seqs:
        raise UsageError("no models given")
    _, matches, length = pair_matrices(seqs, scoring, progress)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(length > 0, matches / np.maximum(length, 1), 1.0)
    np.fill_diagonal(sim, 1.0)
    labels = [s.name for s in seqs]
    df = pd.DataFrame(sim, index=pd.Index(labels, name="model"), columns=pd.Index(labels, name="model"))
    df.attrs.update(metric="similarity", profiles={s.name: s.profile for s in seqs},
                    orders={s.name: s.order for s in seqs})
    return reorder(df, cluster_order(df)) if cluster else df


def correlation(df, cluster: bool = False):
    """Pearson correlation between the rows of a similarity matrix: the paper's correlation similarity in [−1, 1]."""
    import pandas as pd
    vals = df.to_numpy(dtype=float)
    if vals.shape[0] != vals.shape[1]:
        raise UsageError(f"correlation needs a square similarity matrix, got {vals.shape[0]}×{vals.shape[1]}")
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(vals) if len(vals) > 1 else np.ones((1, 1))
    corr = np.clip(np.atleast_2d(corr), -1.0, 1.0)  # rounding can step just past ±1
    out = pd.DataFrame(corr, index=df.index.copy(), columns=df.columns.copy())
    out.attrs.update(df.attrs)
    out.attrs["metric"] = "correlation"
    return reorder(out, cluster_order(out)) if cluster else out


def linkage(df, method: str = "average") -> np.ndarray:
    """SciPy linkage of a similarity/correlation matrix (distance = 1 − value), leaves optimally ordered."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform
    vals = np.nan_to_num(df.to_numpy(dtype=float), nan=0.0)
    dist = 1.0 - (vals + vals.T) / 2.0
    np.fill_diagonal(dist, 0.0)
    dist = np.clip(dist, 0.0, None)
    if len(dist) < 2:
        raise UsageError("clustering needs at least two models")
    y = squareform(dist, checks=False)
    z = hierarchy.linkage(y, method=method)
    return hierarchy.optimal_leaf_ordering(z, y) if len(dist) > 2 else z


def cluster_order(df, method: str = "average") -> list[str]:
    """Labels of ``df`` in hierarchical-clustering leaf order."""
    from scipy.cluster import hierarchy
    if len(df) < 3:
        return list(df.index)
    return [df.index[i] for i in hierarchy.leaves_list(linkage(df, method))]


def reorder(df, order: Sequence[str]):
    """``df`` with rows and columns in ``order``."""
    out = df.loc[list(order), list(order)]
    out.attrs.update(df.attrs)
    return out


__all__ = ["similarity_matrix", "correlation", "linkage", "cluster_order", "reorder", "load_sequences",
           "pair_matrices"]

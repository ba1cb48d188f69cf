"""Family bands of a clustered similarity matrix: contiguous clusters of the leaf order, named by prefix.

The zoo matrix is too large for one label per row, so the explorer (``archsim zoo map``) and the
static overview of ``archsim matrix --zoo`` label *bands*: runs of the hierarchical-clustering leaf
order that form one subtree of the linkage, each named by the dominant prefix of its models' names
(``timm:resnet*``, ``tv+timm:vgg*``, ``keras:EfficientNet*``).  Nothing here knows model families:
a name is ``source:base`` (``hf:org/model`` counts its part after the last ``/``), a *stem* is a
prefix of the base that ends at a word boundary (``_``, ``-``, ``.``, a letter/digit change or a
lower→upper case change), and stems compare case-insensitively, so any new source gets bands too.

The cut runs top-down: a subtree becomes a band when one stem covers at least ``purity`` of its
models (unless its two halves are each named by unrelated stems: vgg and resnet stay apart), or
when it is no larger than ``min_size``; otherwise it splits into its two children.  Neighbouring
bands with the same label then merge.

    >>> dominant_prefix(["tv:vgg11", "tv:vgg16", "timm:vgg16", "tv:alexnet"])
    ('tv+timm:vgg*', 0.75)
    >>> dominant_prefix(["keras:EfficientNetB0", "keras:EfficientNetV2S", "keras:EfficientNetB7"])
    ('keras:EfficientNet*', 1.0)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Sequence

import numpy as np

PURITY = 0.6  # a stem must cover this share of a subtree for it to be one named band


@dataclass(frozen=True)
class Band:
    """One family band: positions ``start`` to ``stop - 1`` of the clustered order.

    ``label`` is the dominant prefix (``timm:resnet*``) and ``share`` the fraction of the band's
    models that carry it (a band of unrelated leftovers has a low share).
    """

    label: str
    start: int
    stop: int
    share: float

    @property
    def size(self) -> int:
        """How many models the band holds."""
        return self.stop - self.start

    @property
    def center(self) -> float:
        """The middle of the band in matrix coordinates (row ``i`` spans ``i - 0.5 .. i + 0.5``)."""
        return (self.start + self.stop - 1) / 2


@dataclass(frozen=True)
class Families:
    """A clustered order of ``names`` and its family bands (which tile ``range(len(names))``)."""

    names: tuple[str, ...]
    order: np.ndarray  # order[p] = index into names of the model at position p
    bands: tuple[Band, ...]

    def labelled(self, min_size: int | None = None) -> list[Band]:
        """The bands large enough to name on an axis (default: at least ``max(3, N / 200)`` models)."""
        floor = max(3, len(self.names) // 200) if min_size is None else min_size
        return [b for b in self.bands if b.size >= floor]

    def ticks(self, min_gap: float | None = None, min_size: int | None = None) -> list[Band]:
        """The bands to label on an axis, in order: named ones, largest first, none closer than ``min_gap``.

        A band labelled only by its source (``timm:*``, a run without a common stem) is ticked only when
        every model in it comes from that source and that source is a minority of all the names (under
        a third): a run of ``hf:`` text transformers (bert, roberta, ernie, ...) is worth naming in a
        zoo of mostly timm models, a mixed run of timm models is not.  Stem-named bands are placed
        first.  ``min_gap`` is in rows (default N / 50, so at most about 50 labels share an axis).
        """
        gap = len(self.names) / 50 if min_gap is None else min_gap
        bands = self.labelled(min_size)
        named = [b for b in bands if not b.label.endswith(":*") and b.label != "*"]
        per_source = Counter(_parts(n)[0] for n in self.names)
        minority = {s for s, c in per_source.items() if c < len(self.names) / 3}
        by_source = [b for b in bands if b.label.endswith(":*") and b.share >= 1.0 and b.label[:-2] in minority]
        chosen: list[Band] = []
        for group in (named, by_source):
            for b in sorted(group, key=lambda b: (-b.size, b.start)):
                if all(abs(b.center - c.center) >= gap for c in chosen):
                    chosen.append(b)
        return sorted(chosen, key=lambda b: b.start)

    def band_of(self) -> np.ndarray:
        """For every position of the order, the index of its band."""
        out = np.empty(len(self.names), dtype=np.int32)
        for k, b in enumerate(self.bands):
            out[b.start:b.stop] = k
        return out


def _split(name: str) -> tuple[str, str]:
    """``(source, base)``: ``timm:resnet50`` → (timm, resnet50); ``hf:org/vit-base`` → (hf, vit-base)."""
    source, _, rest = name.partition(":") if ":" in name else ("", "", name)
    return source, rest.rsplit("/", 1)[-1]


def stems(base: str) -> list[str]:
    """The prefixes of ``base`` that end at a word boundary, shortest first, the whole name last.

    >>> stems("resnet50d_gn")
    ['resnet', 'resnet50', 'resnet50d', 'resnet50d_gn']
    >>> stems("ConvNeXtTiny")
    ['Conv', 'ConvNe', 'ConvNeXt', 'ConvNeXtTiny']
    """
    out = []
    for i in range(1, len(base)):
        p, c = base[i - 1], base[i]
        if not c.isalnum():
            if p.isalnum():
                out.append(base[:i])
        elif (p.isalpha() and c.isdigit()) or (p.isdigit() and c.isalpha()) or (p.islower() and c.isupper()):
            out.append(base[:i])
    if base and base[-1].isalnum():
        out.append(base)
    return out


def dominant_prefix(names: Sequence[str], share: float = PURITY) -> tuple[str, float]:
    """The label of a group of model names and the fraction of the group it describes.

    The label is ``sources:stem*`` for the stem (case-insensitive) that most names carry, the
    longest of those on a tie, provided at least ``share`` of the names carry it; its sources are
    ordered by how many of those names they hold (``tv+timm:vgg*``).  Without such a stem the
    label is the most common source and ``*`` (``timm:*``), the fraction that source's share.

    Args:
        names: qualified model names (``source:base``; a name without ``:`` has an empty source).
        share: the fraction of names a stem must cover, in (0, 1].

    Returns:
        ``(label, fraction)``; ``("", 0.0)`` for no names.
    """
    label, frac, _ = _dominant(names, share)
    return label, frac


def _dominant(names: Sequence[str], share: float) -> tuple[str, float, str | None]:
    """``dominant_prefix``'s label and fraction, and its stem as spelled (None for a ``source:*`` label)."""
    if not names:
        return "", 0.0, None
    parts = [_parts(n) for n in names]
    count = Counter(chain.from_iterable(p[1] for p in parts))  # each stem once per name
    best = max(count, key=lambda s: (count[s], len(s), s), default=None)  # most common, then most specific
    if best is None or count[best] < share * len(names) - 1e-9:
        sources = Counter(p[0] for p in parts)
        src, c = sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return (f"{src}:*" if src else "*"), c / len(names), None
    members = Counter(p[0] for p in parts if best in p[1])
    srcs = "+".join(s for s, _ in sorted(members.items(), key=lambda kv: (-kv[1], kv[0])))
    spelled = Counter(p[2][p[1].index(best)] for p in parts if best in p[1])
    shown = sorted(spelled.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]  # the usual spelling
    return (f"{srcs}:{shown}*" if srcs else f"{shown}*"), count[best] / len(names), shown


@lru_cache(maxsize=1 << 16)
def _parts(name: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(source, stems lower-cased and distinct, the same stems as spelled)`` of one name."""
    source, base = _split(name)
    spelled = {x.lower(): x for x in stems(base)}
    return source, tuple(spelled), tuple(spelled.values())


def bands_from_linkage(z: np.ndarray, names: Sequence[str], purity: float = PURITY,
                       min_size: int | None = None) -> Families:
    """Cut linkage ``z`` over ``names`` into contiguous, labelled bands of its leaf order.

    Args:
        z: a SciPy linkage matrix over ``len(names)`` observations.
        names: the model names, in the matrix's order.
        purity: a subtree whose dominant stem covers this share of it is one band.
        min_size: a subtree this small is one band whatever its names (default ``max(2, N / 100)``).

    Returns:
        The ``Families``: leaf order and bands (neighbouring bands with equal labels merged).
    """
    from scipy.cluster import hierarchy
    n = len(names)
    if n == 0:
        return Families((), np.zeros(0, dtype=np.int64), ())
    if n == 1:
        label, sh = dominant_prefix(names, purity)
        return Families(tuple(names), np.zeros(1, dtype=np.int64), (Band(label, 0, 1, sh),))
    small = max(2, n // 100) if min_size is None else min_size
    root = hierarchy.to_tree(z)
    memo: dict[int, tuple[list[int], str | None]] = {}

    def named(node) -> tuple[list[int], str | None]:
        """The subtree's leaves and its stem when one covers ``purity`` of it, else None."""
        if node.id not in memo:
            leaves = node.pre_order()
            _, _, stem = _dominant([names[i] for i in leaves], purity)
            memo[node.id] = leaves, stem
        return memo[node.id]

    groups: list[list[int]] = []
    stack = [root]  # explicit stack: a chain-shaped tree is deeper than Python's recursion limit
    while stack:
        node = stack.pop()
        leaves, stem = named(node)
        if node.is_leaf() or node.count <= small:
            groups.append(leaves)
            continue
        # a named subtree is one band unless it joins two named, unrelated families (vgg, resnet),
        # each larger than min_size: resnet* over resnet50* and resnet101* stays one band
        kids = [named(c)[1] for c in (node.left, node.right) if c.count > small]
        split = len(kids) == 2 and None not in kids and not _related(kids[0], kids[1])
        if stem is not None and not split:
            groups.append(leaves)
        else:
            stack.extend((node.right, node.left))  # left is popped first: groups come in leaf order
    order = np.array([i for g in groups for i in g], dtype=np.int64)
    runs: list[tuple[str, str | None, list[str]]] = []  # label, stem, names
    for g in groups:
        group = [names[i] for i in g]
        label, _, stem = _dominant(group, purity)
        if runs and runs[-1][0] == label:
            runs[-1][2].extend(group)
        else:
            runs.append((label, stem, group))
    bands, pos = [], 0
    for label, stem, group in runs:
        if stem is None:  # a "source:*" label: the share of that source
            src = label[:-2] if label.endswith(":*") else ""
            share = sum(_parts(x)[0] == src for x in group) / len(group)
        else:
            share = sum(stem.lower() in _parts(x)[1] for x in group) / len(group)
        bands.append(Band(label, pos, pos + len(group), share))
        pos += len(group)
    return Families(tuple(names), order, tuple(bands))


def _related(a: str, b: str) -> bool:
    """One stem is a stem of the other (``resnet``, ``resnet50``; ``EfficientNet``, ``efficientnetV2``; not
    ``vit``, ``vitamin``).  Stems as spelled: their case changes are word boundaries."""
    return a.lower() in (s.lower() for s in stems(b)) or b.lower() in (s.lower() for s in stems(a))


def family_bands(sim: np.ndarray, names: Sequence[str], purity: float = PURITY, min_size: int | None = None,
                 method: str = "average") -> Families:
    """Cluster a similarity matrix (``archsim.matrices.linkage``) and cut it into family bands.

    Args:
        sim: N×N similarities (1 − similarity is the distance).
        names: the N model names.
        purity: see ``bands_from_linkage``.
        min_size: see ``bands_from_linkage``.
        method: the SciPy linkage method.

    Returns:
        The ``Families`` of ``names``.
    """
    import pandas as pd

    from ..errors import UsageError
    from ..matrices import linkage
    sim = np.asarray(sim, dtype=float)
    if sim.shape != (len(names), len(names)):
        raise UsageError(f"a {sim.shape} matrix does not fit {len(names)} names")
    if len(names) < 2:
        return bands_from_linkage(np.zeros((0, 4)), names, purity, min_size)
    z = linkage(pd.DataFrame(sim), method=method)
    return bands_from_linkage(z, names, purity, min_size)

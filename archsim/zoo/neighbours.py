"""Nearest zoo architectures to a model: one query aligned against every cached zoo sequence."""
from __future__ import annotations

import numbers

import numpy as np

from ..alignment import PAPER, Scoring
from ..errors import UnknownNameError, UsageError, shorten
from ..tokens import DEFAULT_PROFILE, PROFILES, LayerSeq

# The sources whose models the zoo caches (``LayerSeq.source`` -> zoo name prefix).
_ZOO_PREFIX = {"torchvision": "tv", "timm": "timm", "keras": "keras", "hf": "hf"}


def _query_seq(model, profile: str) -> LayerSeq:
    if isinstance(model, LayerSeq):
        return model.with_profile(profile) if model.profile != profile else model
    from ..models import is_factory_reference
    from ..tracing import extract
    return extract(model, profile=profile, cache=isinstance(model, str) and not is_factory_reference(model))


def _zoo_identity(query: LayerSeq, names) -> set[str]:
    """The zoo entry that *is* the query (to leave out of its own neighbours), or nothing.

    Only a torchvision/timm model resolved by name is a zoo model; a user's ``mine.py:resnet50``
    (source ``custom``) is never excluded, whatever its factory is called.
    """
    prefix = _ZOO_PREFIX.get(query.source)
    if prefix is None:
        return set()
    return {n for n in (f"{prefix}:{query.name}", query.name) if n in names}


def nearest(model, zoo: str = "all", k: int = 10, profile: str | None = None,
            scoring: Scoring = PAPER) -> list[dict]:
    """The ``k`` zoo models most similar to ``model``.

    Args:
        model: a model name, ``file.py:factory``, an ``nn.Module`` or a ``LayerSeq``.
        zoo: ``torchvision``, ``timm``, ``keras``, ``hf`` or ``all``.
        k: how many neighbours (at least 1).
        profile: ``ops``, ``torch`` or ``keras`` (default: a ``LayerSeq``'s own profile, else ``ops``).
        scoring: alignment scores.

    Returns:
        Up to ``k`` dicts (rank, name, similarity, score, matches, length, layers), most similar first.
        The query itself is left out only when it is that zoo model (resolved by name).
    """
    from ..kernel import encode_many, pair_stats
    from .store import ZOOS, load_zoo
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise UsageError(f"k must be a whole number ≥ 1, got {shorten(repr(k), 30)}")
    if zoo not in ZOOS:
        raise UnknownNameError("zoo", zoo, ZOOS)
    if profile is None:
        profile = model.profile if isinstance(model, LayerSeq) else DEFAULT_PROFILE
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    z = load_zoo()
    names = z.names(zoo)
    query = _query_seq(model, profile)
    own = _zoo_identity(query, set(names))
    names = [n for n in names if n not in own]
    seqs = [query] + [z.seq(n, profile) for n in names]
    ids, vocab = encode_many(seqs)
    pairs = np.column_stack([np.zeros(len(names), np.int64), np.arange(1, len(names) + 1)])
    score, matches, length = pair_stats(ids, pairs, scoring.table(vocab), scoring.gap)
    sim = np.where(length > 0, matches / np.maximum(length, 1), 1.0)
    order = np.lexsort((-score, -sim))[:int(k)]  # similarity first, score breaks ties
    return [{"rank": r + 1, "name": names[i], "similarity": float(sim[i]), "score": int(score[i]),
             "matches": int(matches[i]), "length": int(length[i]), "layers": len(seqs[i + 1])}
            for r, i in enumerate(order)]

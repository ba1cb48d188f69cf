"""Nearest zoo architectures to a model: one query aligned against every cached zoo sequence."""
from __future__ import annotations

import numpy as np

from ..alignment import PAPER, Scoring
from ..tokens import LayerSeq


def _query_seq(model, profile: str) -> LayerSeq:
    if isinstance(model, LayerSeq):
        return model.with_profile(profile) if model.profile != profile else model
    from ..models import is_factory_reference
    from ..tracing import extract
    return extract(model, profile=profile, cache=isinstance(model, str) and not is_factory_reference(model))


def nearest(model, zoo: str = "all", k: int = 10, profile: str = "torch",
            scoring: Scoring = PAPER) -> list[dict]:
    """The ``k`` zoo models most similar to ``model`` (name, ``file.py:factory``, nn.Module or LayerSeq)."""
    from ..kernel import encode_many, pair_stats
    from .store import load_zoo
    z = load_zoo()
    names = z.names(zoo)
    query = _query_seq(model, profile)
    own = {query.name, f"tv:{query.name}", f"timm:{query.name}"}
    names = [n for n in names if n not in own]
    seqs = [query] + [z.seq(n, profile) for n in names]
    ids, vocab = encode_many(seqs)
    pairs = np.column_stack([np.zeros(len(names), np.int64), np.arange(1, len(names) + 1)])
    score, matches, length = pair_stats(ids, pairs, scoring.table(vocab), scoring.gap)
    sim = np.where(length > 0, matches / np.maximum(length, 1), 1.0)
    order = np.lexsort((-score, -sim))[:k]  # similarity first, score breaks ties
    return [{"rank": r + 1, "name": names[i], "similarity": float(sim[i]), "score": int(score[i]),
             "matches": int(matches[i]), "length": int(length[i]), "layers": len(seqs[i + 1])}
            for r, i in enumerate(order)]


"""The zoo explorer: one self-contained, offline HTML page to browse the whole-zoo similarity matrix.

``archsim zoo map -o zoo.html`` writes it.  The page holds plotly.js (inline, from the plotly
package), its own script and style (``explorer_template.html`` next to this module) and the data:

* the model names in clustered order and their family bands (``archsim.zoo.families``);
* the upper triangle of the matches and alignment-length matrices (similarity = matches / length,
  the score follows from them for a uniform scoring), as little-endian typed arrays;
* every model's token ids (the profile's tokens; the vocabulary once);
* each model's ``k`` nearest models and their alignments (traceback steps, run-length coded),
  so the side panel shows them without computing; any other pair is aligned in the page by a
  small JavaScript Needleman-Wunsch with archsim's traceback rule.

The binary arrays are zlib-compressed into one base64 string, which the page inflates with the
browser's ``DecompressionStream``: the matrices of ~1,500 models shrink from ~4.4 MB to ~0.7 MB.
"""
from __future__ import annotations

import base64
import importlib
import json
import re
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ..alignment import PAPER, Scoring
from ..errors import ArchsimError, UnknownNameError, UsageError, shorten
from ..tokens import DEFAULT_PROFILE, PROFILES, LayerSeq

TEMPLATE = Path(__file__).with_name("explorer_template.html")
K_DEFAULT = 10
FORMAT = 1  # the page's data layout; the template checks it
_STEP = {0: 0, 1: 0, 2: 1, 3: 2}  # opcodes (match, mismatch, gap_b, gap_a) -> diagonal, up, left
_RUN = 64  # one byte per run: step in the top two bits, run length - 1 in the low six


def _uint(values: np.ndarray) -> np.ndarray:
    """``values`` (non-negative ints) in the narrowest of uint8/16/32 that holds them."""
    top = int(values.max()) if values.size else 0
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return values.astype(dt)
    raise ArchsimError(f"value {top} is too large for the explorer page")


def encode_steps(opcodes: np.ndarray) -> bytes:
    """Run-length code an alignment's traceback (``Alignment.opcodes``) as one byte per run of ≤ 64 steps.

    >>> encode_steps(np.array([0, 1, 0, 2, 3, 3], dtype=np.int8)).hex()
    '024081'
    """
    steps = np.array([_STEP[int(o)] for o in range(4)], dtype=np.uint8)[np.asarray(opcodes, dtype=np.int64)]
    if not steps.size:
        return b""
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    lengths = np.diff(np.r_[starts, steps.size])
    reps = (lengths + _RUN - 1) // _RUN  # runs longer than 64 take several bytes
    out_len = np.full(int(reps.sum()), _RUN, dtype=np.int64)
    out_len[np.cumsum(reps) - 1] = lengths - _RUN * (reps - 1)
    out_step = np.repeat(steps[starts], reps).astype(np.int64)
    return ((out_step << 6) | (out_len - 1)).astype(np.uint8).tobytes()


def _check_k(k) -> None:
    """``k`` (neighbours per model) must be a whole number ≥ 1."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UsageError(f"k must be a whole number ≥ 1, got {shorten(repr(k), 30)}")


def _nearest(sim: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` most similar other rows: similarity first, score breaks ties (as ``nearest``)."""
    n = len(sim)
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        s, sc = sim[i].copy(), score[i].astype(np.float64)
        s[i] = -np.inf  # never its own neighbour
        out[i] = np.lexsort((np.arange(n), -sc, -s))[:k]
    return out


def explorer_data(seqs: Sequence[LayerSeq], k: int = K_DEFAULT, scoring: Scoring = PAPER,
                  progress: bool | None = None, meta: dict | None = None) -> dict:
    """Everything the page embeds, computed from ``seqs`` (the N×N alignments run on the SIMD kernel).

    Args:
        seqs: the models (distinct names, one profile).
        k: nearest neighbours (and precomputed alignments) per model; capped at N − 1.
        scoring: a uniform scoring (no substitution table): the page derives scores from matches
            and lengths and its in-page aligner knows only match/mismatch/gap.
        progress: tqdm bars (None: only when a step takes over a second).
        meta: extra JSON-ready fields for the page header (zoo, profile, ...).

    Returns:
        A JSON-ready dict: names (clustered order), bands, ticks, vocab, scoring, and ``blob``, the
        base64 of the zlib-compressed arrays that ``arrays`` locates (offset, dtype, count).
    """
    from ..alignment import _align, score_dtype
    from ..kernel import encode_many
    from ..matrices import _bar, pair_matrices
    from .families import family_bands
    if scoring.substitution:
        raise UsageError("the explorer needs a uniform scoring (match, mismatch, gap), not a substitution table")
    seqs = list(seqs)
    n = len(seqs)
    if n < 2:
        raise UsageError(f"the explorer needs at least two models, got {n}")
    names = [s.name for s in seqs]
    if len(set(names)) != n:
        dupes = sorted({x for x in names if names.count(x) > 1})
        raise UsageError(f"each model may appear only once; repeated: {', '.join(shorten(d) for d in dupes[:5])}")
    _check_k(k)
    k = min(int(k), n - 1)
    score, matches, length = pair_matrices(seqs, scoring, progress)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where(length > 0, matches / np.maximum(length, 1), 1.0)
    np.fill_diagonal(sim, 1.0)
    fam = family_bands(sim, names)
    o = fam.order
    names = [names[i] for i in o]
    seqs = [seqs[i] for i in o]
    score, matches, length, sim = (a[np.ix_(o, o)] for a in (score, matches, length, sim))

    ids, vocab = encode_many(seqs)
    ids = [a.astype(np.int64) for a in ids]  # the dtype align() itself passes to _align
    table = scoring.table(vocab)
    top = max(abs(int(table.max())), abs(int(table.min())), abs(scoring.gap), 1)
    near = _nearest(sim, score, k)
    runs, offsets = [], [0]
    with _bar(progress, total=n * k, desc="alignments", unit="pair") as bar:
        for i in range(n):
            for j in near[i]:
                # _align is align()'s own DP and traceback, here on ids encoded once for the zoo
                sub = table.astype(score_dtype(len(ids[i]), len(ids[j]), top))
                _, opcodes, _ = _align(ids[i], ids[j], sub, scoring.gap)
                runs.append(encode_steps(opcodes))
                offsets.append(offsets[-1] + len(runs[-1]))
            bar.update(k)

    iu = np.triu_indices(n, 1)
    lens = np.array([len(a) for a in ids], dtype=np.int64)
    arrays = {
        "matches": _uint(matches[iu]), "length": _uint(length[iu]),
        "tokens": _uint(np.concatenate(ids) if lens.sum() else np.zeros(0, np.int64)),
        "tokoff": np.r_[0, np.cumsum(lens)].astype(np.uint32),
        "nearest": _uint(near.ravel()),
        "steps": np.frombuffer(b"".join(runs), dtype=np.uint8),
        "stepoff": np.array(offsets, dtype=np.uint32),
    }
    parts, index, pos = [], {}, 0
    for key, arr in arrays.items():
        raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        index[key] = {"offset": pos, "dtype": arr.dtype.name, "count": int(arr.size)}
        pad = (-len(raw)) % 8  # every array starts 8-byte aligned: typed-array views need it
        parts.append(raw + b"\0" * pad)
        pos += len(raw) + pad
    blob = zlib.compress(b"".join(parts), 9)
    ticks = fam.ticks()
    return {
        "format": FORMAT, **(meta or {}), "n": n, "k": k, "names": names, "colormap": _colormap(),
        "scoring": {"match": scoring.match, "mismatch": scoring.mismatch, "gap": scoring.gap},
        "vocab": list(vocab),
        "bands": [[b.label, b.start, b.stop, round(b.share, 3)] for b in fam.bands],
        "ticks": [fam.bands.index(b) for b in ticks],
        "arrays": index, "raw_bytes": pos, "blob": base64.b64encode(blob).decode("ascii"),
    }


def _colormap(name: str = "viridis") -> str:
    """256 RGB colours of a matplotlib colour map as one hex string (the map and ``archsim matrix`` agree)."""
    from matplotlib import colormaps
    rgb = (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return rgb.tobytes().hex()


def _script_safe(text: str) -> str:
    """``text`` safe inside a ``<script>`` element (no ``</script``, no ``<!--``)."""
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE).replace("<!--", "<\\!--")


def render_page(data: dict, title: str = "archsim zoo explorer") -> str:
    """The explorer page for ``data`` (``explorer_data``): plotly.js, script, style and data inline."""
    import html

    import plotly
    from plotly.offline import get_plotlyjs
    template = TEMPLATE.read_text(encoding="utf-8")
    payload = dict(data, plotly=plotly.__version__)
    values = {
        "TITLE": html.escape(title),
        "PLOTLY_JS": _script_safe(get_plotlyjs()),
        # JSON in a script element: "<" escaped, so no name can close the element
        "ZOO_DATA": json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c"),
    }
    # one pass: inserted text (plotly.js, names) is never searched for markers again
    return re.sub(r"\{\{(TITLE|PLOTLY_JS|ZOO_DATA)\}\}", lambda m: values[m.group(1)], template)


def write_explorer(output, zoo: str = "all", profile: str = DEFAULT_PROFILE, k: int = K_DEFAULT,
                   names: Sequence[str] | None = None, progress: bool | None = None) -> Path:
    """Write the explorer page of a cached zoo to ``output`` (checked before any work, written atomically).

    Args:
        output: the ``.html`` file to write.
        zoo: ``torchvision``, ``timm``, ``keras`` or ``all`` (any zoo ``load_zoo`` knows).
        profile: the token profile (``ops`` by default).
        k: nearest neighbours per model, with their alignments precomputed.
        names: a subset of the zoo's models instead of the whole zoo (in any order).
        progress: tqdm bars (None: only when a step takes over a second).

    Returns:
        The written path.
    """
    import time

    from .. import __version__
    from .._io import atomic_write, check_output_file
    from .store import ZOOS, load_zoo
    if zoo not in ZOOS:
        raise UnknownNameError("zoo", zoo, ZOOS)
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    _check_k(k)
    try:  # fail before the matrix, not after it
        importlib.import_module("plotly")
    except ImportError as exc:
        raise ArchsimError("the zoo explorer needs plotly: pip install plotly") from exc
    out = check_output_file(output)
    z = load_zoo()
    pool = z.names(zoo)
    if names is not None:
        unknown = [x for x in names if x not in pool]
        if unknown:
            raise UnknownNameError(f"{zoo} zoo model", unknown[0], pool)
        pool = [x for x in pool if x in set(names)]
    if len(pool) < 2:
        raise UsageError(f"the explorer needs at least two models; the {zoo} zoo of {z.path} "
                         f"{'has' if names is None else 'gives'} {len(pool)}")
    seqs = [z.seq(x, profile) for x in pool]
    t0 = time.perf_counter()
    meta = {"zoo": zoo, "profile": profile, "archsim": __version__, "versions": dict(z.versions)}
    data = explorer_data(seqs, k=k, progress=progress, meta=meta)
    data["build_seconds"] = round(time.perf_counter() - t0, 1)
    page = render_page(data, title=f"archsim zoo explorer: {len(seqs)} {zoo} models, {profile} profile")
    return atomic_write(out, page)

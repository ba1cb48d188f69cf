"""The whole-zoo N×N similarity matrix, locally or split into blocks on a dask.distributed cluster."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..alignment import PAPER, Scoring
from ..errors import ArchsimError, UnknownNameError
from ..tokens import DEFAULT_PROFILE, LayerSeq

EXECUTORS = ("local", "dask")


def block_similarity(ids: Sequence[np.ndarray], rows: np.ndarray, cols: np.ndarray, sub: np.ndarray,
                     gap: int, threads: int | None = None) -> np.ndarray:
    """Similarity indices (matches / length) of every ``rows`` × ``cols`` pair, as float32."""
    from ..kernel import pair_stats
    ri, ci = np.meshgrid(rows, cols, indexing="ij")
    keep = ri < ci  # each unordered pair once; the caller mirrors the block
    pairs = np.column_stack([ri[keep], ci[keep]]).astype(np.int64)
    out = np.zeros((len(rows), len(cols)), dtype=np.float32)
    if len(pairs):
        _, matches, length = pair_stats(list(ids), pairs, sub, gap, threads=threads)
        out[keep] = np.where(length > 0, matches / np.maximum(length, 1), 1.0)
    return out


def _blocks(n: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    starts = range(0, n, size)
    return [(np.arange(i, min(i + size, n)), np.arange(j, min(j + size, n))) for i in starts for j in starts if i <= j]


def similarity_array(seqs: Sequence[LayerSeq], scoring: Scoring = PAPER, executor: str = "local",
                     scheduler: str | None = None, block: int = 256, progress: bool = True) -> np.ndarray:
    """N×N float32 similarity matrix of ``seqs`` (diagonal 1), computed locally or on a dask cluster."""
    from ..kernel import encode_many
    if executor not in EXECUTORS:
        raise UnknownNameError("executor", executor, EXECUTORS)
    ids, vocab = encode_many(list(seqs))
    sub, n = scoring.table(vocab), len(ids)
    out = np.eye(n, dtype=np.float32)
    if executor == "local":
        rows = np.arange(n)
        out += block_similarity(ids, rows, rows, sub, scoring.gap)
    else:
        try:
            from dask.distributed import Client, as_completed
        except ImportError as exc:
            raise ArchsimError("the dask executor needs dask.distributed: pip install 'archsim-neurn[dask]'") from exc
        from tqdm import tqdm
        client = Client(scheduler) if scheduler else Client(processes=False)
        try:
            ids_f = client.scatter(list(ids), broadcast=True)
            sub_f = client.scatter(sub, broadcast=True)
            futs = {client.submit(block_similarity, ids_f, r, c, sub_f, scoring.gap, 1, pure=False): (r, c)
                    for r, c in _blocks(n, block)}
            for fut in tqdm(as_completed(futs), total=len(futs), desc="blocks", disable=not progress):
                r, c = futs[fut]
                out[np.ix_(r, c)] += fut.result()
        finally:
            client.close()  # our own connection; the cluster itself stays up
    iu = np.triu_indices(n, 1)
    out[(iu[1], iu[0])] = out[iu]
    return out


def write_zoo_matrix(zoo: str, outdir, profile: str = DEFAULT_PROFILE, executor: str = "local",
                     scheduler: str | None = None) -> list:
    """Compute the zoo's similarity matrix; write ``.npy`` (float32), names and a clustered overview PNG.

    Args:
        zoo: ``torchvision``, ``timm`` or ``all``.
        outdir: the output folder (checked before the matrix is computed).
        profile: ``torch`` or ``keras``.
        executor: ``local`` or ``dask``.
        scheduler: a dask scheduler address (None: an in-process cluster).

    Returns:
        The written paths: ``.npy``, ``_names.txt``, ``.png``.  Nothing is replaced unless all
        three were produced.
    """
    import io
    import time
    from pathlib import Path

    from ..plot import check_targets, write_outputs
    from ..tokens import PROFILES
    from .store import ZOOS, load_zoo
    if zoo not in ZOOS:
        raise UnknownNameError("zoo", zoo, ZOOS)
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    stem = Path(outdir) / f"zoo_{zoo}_{profile}_similarity"
    npy, txt, png = stem.with_suffix(".npy"), stem.with_name(stem.name + "_names.txt"), stem.with_suffix(".png")
    check_targets([npy, txt, png])  # a bad -o fails now, not after the matrix
    z = load_zoo()
    names = z.names(zoo)
    t0 = time.perf_counter()
    sim = similarity_array([z.seq(n, profile) for n in names], executor=executor, scheduler=scheduler)
    seconds = time.perf_counter() - t0
    buf = io.BytesIO()
    np.save(buf, sim, allow_pickle=False)
    image = _overview(sim, names, f"{len(names)} {zoo} models, {profile} profile, clustered "
                                   f"({seconds:.1f} s to compute)")
    return write_outputs({npy: buf.getvalue(), txt: "\n".join(names) + "\n", png: image})


def _overview(sim: np.ndarray, names: list[str], title: str) -> bytes:
    """A clustered heatmap of the whole zoo as PNG bytes (``_overview_figure``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plot import figure_bytes
    fig = _overview_figure(sim, names, title)
    try:
        return figure_bytes(fig, "png", dpi=150, tight=False)
    finally:
        plt.close(fig)


def _overview_figure(sim: np.ndarray, names: list[str], title: str):
    """The clustered heatmap of the whole zoo, family bands labelled along both axes.

    Too many rows for one label each: the family bands of ``archsim.zoo.families`` (contiguous
    clusters of the order, named by their dominant prefix such as ``timm:resnet*``) label both
    axes, with their size, and each labelled band's diagonal block is outlined.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .families import family_bands
    fam = family_bands(sim, names)
    order = fam.order
    ticks = fam.ticks()
    fig, ax = plt.subplots(figsize=(11, 10))
    try:
        im = ax.imshow(sim[np.ix_(order, order)], cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        for b in ticks:
            ax.add_patch(Rectangle((b.start - 0.5, b.start - 0.5), b.size, b.size, fill=False,
                                   edgecolor="white", linewidth=0.6, alpha=0.9))
        pos = [b.center for b in ticks]
        labels = [f"{b.label} ({b.size})" for b in ticks]
        ax.set_xticks(pos, labels, rotation=90, fontsize=6)
        ax.set_yticks(pos, labels, fontsize=6)
        ax.tick_params(length=2, pad=1)
        ax.set_title(title)
        ax.set_xlabel(f"models (clustered order; {len(ticks)} of {len(fam.bands)} family bands labelled)")
        ax.set_ylabel("models (clustered order)")
        fig.colorbar(im, ax=ax, label="similarity index (matches / alignment length)", shrink=0.8)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig

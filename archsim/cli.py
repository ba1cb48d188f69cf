"""The ``archsim`` command line (heavy libraries are imported inside the commands)."""
from __future__ import annotations

import json
import sys

import click

from .errors import ArchsimError, UsageError, cli_group
from .models.sources import SOURCES
from .tokens import DEFAULT_PROFILE, PROFILES
from .zoo.store import ZOOS

# Kept here, not imported from the modules that use them, so `archsim --help` stays light.
EXECUTORS = ("local", "dask")
CMAPS = ("rocket", "diverging", "viridis", "magma", "mako")  # archsim.plot.CMAPS (a test keeps them equal)
METRICS = ("similarity", "correlation")


@click.group(cls=cli_group("archsim", (ArchsimError,)), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archsim-neurn")
def cli() -> None:
    """Compare deep-network architectures by Needleman-Wunsch alignment of their layer sequences."""


def _load(model: str, profile: str, as_tokens: bool, input_size: int | None, use_cache: bool,
          label: str = "a"):
    from .tokens import LayerSeq
    if as_tokens:  # letters name the fixed tokens: C is Conv2d, M MaxPool2d
        return LayerSeq.from_letters(model, name=label, profile=profile)
    from .tracing import extract
    return extract(model, profile=profile, input_size=input_size, cache=use_cache)


_MARK = {"match": " ", "mismatch": "~", "gap_b": "-", "gap_a": "+"}
_COLOR = {"match": None, "mismatch": "yellow", "gap_b": "red", "gap_a": "green"}


def _diff_lines(al, full: bool, context: int = 2) -> list[str]:
    cols = al.columns()
    wt = max([6] + [len(c[k] or "") for c in cols for k in ("a", "b")])
    wp = min(36, max([0] + [len(c["a_path"] or "") for c in cols]))
    wa = 5 + wt + (2 + wp if wp else 0)

    def side(tok, path, idx):
        if tok is None:
            return ""
        return f"{idx + 1:>4} {tok:<{wt}}" + (f"  {path:<{wp}}" if path else "")

    def row(c):
        left = side(c["a"], c["a_path"], c["a_index"])
        right = side(c["b"], c["b_path"], c["b_index"])
        text = f"{_MARK[c['op']]} {left:<{wa}}  {right}".rstrip()
        return click.style(text, fg=_COLOR[c["op"]]) if _COLOR[c["op"]] else text

    keep = [full or c["op"] != "match" for c in cols]
    if not full:
        diffs = [i for i, c in enumerate(cols) if c["op"] != "match"]
        for i in diffs:
            for k in range(max(0, i - context), min(len(cols), i + context + 1)):
                keep[k] = True
    header = f"  {'#':>4} {al.name_a:<{wa - 5}}  {'#':>4} {al.name_b}"
    lines = [click.style(header, bold=True)]
    i = 0
    while i < len(cols):
        if keep[i]:
            lines.append(row(cols[i]))
            i += 1
            continue
        j = i
        while j < len(cols) and not keep[j]:
            j += 1
        lines.append(click.style(f"  ···  {j - i} matching layer{'s' if j - i != 1 else ''}  ···", dim=True))
        i = j
    return lines


def _describe(seq) -> str:
    dims = tuple(seq.input_size or ())
    # (C, H, W) images print as H×W; other inputs (a sequence length, audio, video) print every dimension
    size = "×".join(map(str, dims[1:] if len(dims) == 3 else dims)) or "n/a"
    return (f"{seq.name}: {len(seq)} layers, {seq.source}, {seq.profile} profile, "
            f"{seq.order} order, input {size}")


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--profile", type=click.Choice(PROFILES), default=DEFAULT_PROFILE, show_default=True,
              help="ops: every tensor operation (module or functional); torch: every leaf-module call; "
                   "keras: a keras: model's own layer list; keras-like: a PyTorch model folded the way Keras "
                   "lists layers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the diff.")
@click.option("--matrix", is_flag=True, help="Also print the DP matrix (traceback cells marked *).")
@click.option("--tokens", "as_tokens", is_flag=True, help="A and B are literal one-letter token strings.")
@click.option("--full", is_flag=True, help="Show every aligned layer, not only the differences.")
@click.option("--input-size", type=click.IntRange(min=1), default=None,
              help="Square input size (default: the model's own).")
@click.option("--match", type=int, default=1, show_default=True, help="Match score (> mismatch).")
@click.option("--mismatch", type=int, default=-2, show_default=True, help="Mismatch score.")
@click.option("--gap", type=int, default=-2, show_default=True,
              help="Gap score (linear, < 0). Scores are integers within ±(2³¹−1); results are exact.")
@click.option("--no-cache", is_flag=True, help="Extract afresh instead of using the token cache.")
def compare(a, b, profile, as_json, matrix, as_tokens, full, input_size, match, mismatch, gap, no_cache):
    """Align the layer sequences of models A and B and show where they differ.

    A and B are model names (vgg16, tv:vgg16, timm:resnet50d), path/to/file.py:factory,
    package.module:factory, or with --tokens literal strings such as CCMCCML.
    """
    from .alignment import Scoring, align
    scoring = Scoring(match, mismatch, gap)  # bad scores fail before any model is built
    sa = _load(a, profile, as_tokens, input_size, not no_cache)
    sb = _load(b, profile, as_tokens, input_size, not no_cache, label="b")
    al = align(sa, sb, scoring=scoring)
    if as_json:
        d = al.to_dict(matrix=matrix)
        d["profile"] = profile
        d["order"] = {"a": sa.order, "b": sb.order}
        click.echo(json.dumps(d, indent=2))
        return
    if not as_tokens:
        # A definition-order fallback was already reported as a warning by the extraction
        # (or, for a cached sequence, by the token cache): not repeated here.
        click.echo(_describe(sa))
        click.echo(_describe(sb))
        click.echo()
        for line in _diff_lines(al, full):
            click.echo(line)
        click.echo()
    click.echo(al.format())
    if matrix:
        click.echo(al.matrix_text())
    click.echo(f"score {al.score}   similarity {al.similarity:.4f} ({al.matches} matches / {al.length} columns)"
               f"   mismatches {al.mismatches}   gaps {al.gaps}   normalized score {al.normalized_score:.4f}")


@cli.command("list")
@click.argument("pattern", default="*")
@click.option("--source", type=click.Choice(("all", *SOURCES)), default="all",
              show_default=True, help="Which model source to list.")
@click.option("--count", is_flag=True, help="Only print how many models match.")
@click.option("--zoo", type=click.Choice(ZOOS), default=None,
              help="List the models in the shipped zoo cache instead of the libraries.")
def list_cmd(pattern, source, count, zoo):
    """List resolvable model names matching PATTERN (shell wildcards, e.g. 'vgg1*')."""
    if zoo:
        import fnmatch
        from .zoo.store import load_zoo
        z = load_zoo()
        rows = [n for n in z.names(zoo) if fnmatch.fnmatchcase(n.split(":", 1)[1].lower(), pattern.lower())]
        click.echo(len(rows) if count else "\n".join(rows))
        if not count:
            click.echo(f"{len(rows)} cached model{'s' if len(rows) != 1 else ''} "
                       f"(torch {z.versions['torch']}, torchvision {z.versions['torchvision']}, "
                       f"timm {z.versions['timm']})", err=True)
        return
    from .models import list_models
    rows = list_models(pattern, source)
    if count:
        click.echo(len(rows))
        return
    for name in rows:
        click.echo(name)
    click.echo(f"{len(rows)} model{'s' if len(rows) != 1 else ''}", err=True)


@cli.command()
@click.argument("model")
@click.option("--profile", type=click.Choice(PROFILES), default="torch", show_default=True)
@click.option("--input-size", type=click.IntRange(min=1), default=None,
              help="Square input size (default: the model's own).")
@click.option("--json", "as_json", is_flag=True, help="Print tokens and module paths as JSON.")
def tokens(model, profile, input_size, as_json):
    """Print the layer-token string of MODEL."""
    seq = _load(model, profile, False, input_size, True)
    if as_json:
        click.echo(json.dumps({"name": seq.name, "profile": seq.profile, "order": seq.order,
                               "source": seq.source, "tokens": list(seq.tokens), "paths": list(seq.paths),
                               "letters": str(seq)}, indent=2))
        return
    click.echo(_describe(seq))
    click.echo(str(seq))


@cli.command()
@click.argument("model")
@click.option("--zoo", type=click.Choice(ZOOS), default="all", show_default=True)
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many neighbours to show (at least 1).")
@click.option("--profile", type=click.Choice(PROFILES), default=DEFAULT_PROFILE, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the neighbours as JSON.")
def nearest(model, zoo, k, profile, as_json):
    """The K zoo architectures most similar to MODEL (a name or path/to/file.py:factory)."""
    import time
    from .zoo.neighbours import nearest as find
    t0 = time.perf_counter()
    rows = find(model, zoo=zoo, k=k, profile=profile)
    if as_json:
        click.echo(json.dumps({"query": model, "zoo": zoo, "profile": profile, "neighbours": rows}, indent=2))
        return
    w = max([len(r["name"]) for r in rows] + [5])
    click.echo(f"{'rank':>4}  {'model':<{w}}  similarity  score  layers")
    for r in rows:
        click.echo(f"{r['rank']:>4}  {r['name']:<{w}}  {r['similarity']:>10.4f}  {r['score']:>5}  {r['layers']:>6}")
    click.echo(f"({time.perf_counter() - t0:.2f} s, {zoo} zoo, {profile} profile)", err=True)


@cli.group()
def zoo() -> None:
    """The cached token sequences of every torchvision, timm, Keras and Hugging Face (hf:) model."""


@zoo.command("build")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--zoo", "which", type=click.Choice(ZOOS), default="all", show_default=True)
@click.option("-o", "--output", default=None,
              help="Output file (default: the package data, else the user cache); checked before extraction.")
def zoo_build(workers, which, output):
    """Extract every zoo model (resumable) and write the versioned zoo cache.

    Finished models go to a checkpoint beside the output, so a killed build resumes; several
    builds of the same output may run at once without losing each other's checkpoints.
    """
    from .zoo.build import build_zoo
    out, problems = build_zoo(output, workers=workers, zoo=which)
    click.echo(f"wrote {out}")
    for p in problems:
        click.echo(f"  not in execution order: {p['name']}: {p['reason']}")
    click.echo(f"{len(problems)} model(s) not extracted in execution order")


@zoo.command("info")
def zoo_info():
    """Where the zoo cache is, what built it and which models are not in execution order."""
    from .zoo.store import load_zoo
    z = load_zoo()
    n_def = sum(1 for m in z.models.values() if m["o"] == "definition")
    counts = ", ".join(f"{len(z.names(k))} {k}" for k in ZOOS if k != "all")
    click.echo(f"{z.path}\n{len(z.models)} models ({counts}), {len(z.vocab)} token types")
    click.echo("built with " + ", ".join(f"{k} {v}" for k, v in z.versions.items()))
    click.echo(f"{n_def} in definition order, {len(z.failed)} not extractable")
    for f in z.failed:
        click.echo(f"  failed: {f['name']}: {f['reason']}")
    for n, m in z.models.items():
        if m["o"] == "definition":
            click.echo(f"  definition order: {n}: {m['r']}")
    msg = z.version_mismatch()
    if msg:
        click.echo(click.style(f"warning: {msg}", fg="yellow"), err=True)


@zoo.command("map")
@click.option("--profile", type=click.Choice(PROFILES), default=DEFAULT_PROFILE, show_default=True,
              help="Token profile of every model (keras: only with --zoo keras).")
@click.option("--zoo", "which", type=click.Choice(ZOOS), default="all", show_default=True)
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,  # explorer.K_DEFAULT
              help="Nearest models listed per model; their alignments are stored in the page.")
@click.option("-o", "--output", default="zoo.html", show_default=True,
              help="The HTML file to write (checked before any work).")
def zoo_map(profile, which, k, output):
    """Write the zoo explorer: one offline HTML page with the clustered similarity map.

    The page (plotly, nothing fetched) names family bands along the axes, finds a model by
    name, and for a clicked model lists its K nearest and shows its layers aligned against any
    second model (pairs beyond the K nearest are aligned in the page).
    """
    import time
    from .zoo.explorer import write_explorer
    t0 = time.perf_counter()
    path = write_explorer(output, zoo=which, profile=profile, k=k)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    click.echo(f"({time.perf_counter() - t0:.1f} s, {which} zoo, {profile} profile)", err=True)


@cli.command()
@click.argument("models", nargs=-1)
@click.option("--preset", "preset_name", default=None, help="A named model list instead of MODELS (e.g. paper44).")
@click.option("--metric", type=click.Choice(METRICS), default="similarity", show_default=True,
              help="similarity: NW matches / alignment length; correlation: Pearson correlation of its rows.")
@click.option("--cluster", is_flag=True, help="Order rows/columns by hierarchical clustering.")
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="Tokenize every model this way (default: ops for MODELS and --zoo, each entry's own profile for --preset).")
@click.option("-o", "--output", "outdir", default=".", show_default=True,
              help="Directory for the CSV and heatmap (checked before any work).")
@click.option("--no-cache", is_flag=True, help="Extract afresh instead of using the token cache.")
@click.option("--zoo", "zoo_name", type=click.Choice(ZOOS), default=None,
              help="The whole cached zoo: writes a float32 .npy + names and a clustered overview.")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True,
              help="With --zoo: compute locally or in blocks on a dask.distributed cluster.")
@click.option("--scheduler", default=None, help="dask scheduler address (default: an in-process cluster).")
def matrix(models, preset_name, metric, cluster, profile, outdir, no_cache, zoo_name, executor, scheduler):
    """Pairwise similarity (or correlation) matrix of MODELS, --preset NAME or --zoo: CSV/NPY + heatmap."""
    from pathlib import Path

    from .presets import get_preset, list_presets
    if zoo_name:
        if models or preset_name:
            raise UsageError("give MODEL names, --preset NAME or --zoo, not several")
        from .zoo.matrix import write_zoo_matrix
        for p in write_zoo_matrix(zoo_name, Path(outdir), profile or DEFAULT_PROFILE, executor, scheduler):
            click.echo(f"wrote {p}")
        return
    if bool(models) == bool(preset_name):
        raise UsageError("give either MODEL names or --preset NAME "
                           f"(presets: {', '.join(list_presets())})")
    if models and len(models) < 2:
        raise UsageError("a matrix needs at least two models")
    items = get_preset(preset_name) if preset_name else list(models)
    from .plot import FORMATS, check_targets, csv_text, heatmap, render_figure, write_outputs
    stem = Path(outdir) / f"{preset_name or 'matrix'}_{metric}{'_clustered' if cluster else ''}"
    csv = stem.with_name(stem.name + ".csv")
    # A bad -o (unwritable, a file, a folder in a target's place) fails before any model is loaded.
    check_targets([csv, *(stem.with_name(f"{stem.name}.{fmt}") for fmt in FORMATS)])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .matrices import correlation, similarity_matrix
    df = similarity_matrix(items, profile=profile, cache=not no_cache)
    if metric == "correlation":
        df = correlation(df)
    if cluster:
        from .matrices import cluster_order, reorder
        df = reorder(df, cluster_order(df))
    fig = heatmap(df, title=f"{metric}{' (clustered)' if cluster else ''}, {len(df)} models")
    try:  # everything rendered before the first file is replaced
        outputs = {csv: csv_text(df), **render_figure(fig, stem)}
    finally:
        plt.close(fig)
    paths = write_outputs(outputs)
    click.echo(f"{len(df)}×{len(df)} {metric} matrix")
    for p in paths:
        click.echo(f"wrote {p}")


@cli.command()
@click.option("-o", "--output", "outdir", default="figures", show_default=True,
              help="Directory for the panels (checked before any work).")
@click.option("--no-cache", is_flag=True, help="Extract afresh instead of using the token cache.")
@click.option("--preset", "preset_name", default="paper44", show_default=True,
              help="The model list (paper44: the paper's Keras and PyTorch lists; paper44-torch: PyTorch only).")
@click.option("--cmap", type=click.Choice(CMAPS), default="rocket", show_default=True,
              help="Colormap of panel (a): rocket (purple lowest, skin highest, as in the paper) or diverging.")
def figures(outdir, no_cache, preset_name, cmap):
    """Regenerate every panel of the paper's Figure 6 (paper44 heatmaps, VGG zoom, DP matrices)."""
    import time
    t0 = time.perf_counter()
    import matplotlib
    matplotlib.use("Agg")

    from .figures import figure6
    paths = figure6(outdir, preset_name=preset_name, cache=not no_cache, cmap=cmap)
    for p in paths:
        click.echo(f"wrote {p}")
    click.echo(f"{len(paths)} files in {time.perf_counter() - t0:.1f} s", err=True)


def main() -> None:
    """Console-script entry point: ``archsim: error: ...`` on stderr, exit 2 for usage, 1 for failures."""
    cli(prog_name="archsim")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

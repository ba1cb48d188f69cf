"""The ``neurn`` command line."""
from __future__ import annotations

import sys
import time

import click

from archsim.errors import cli_group
from neurn.bench.protocol import DEVICES, EXECUTORS, SPLITS, TABLE_FORMATS
from neurn.bench.protocol import list_presets
from neurn._io import cache_dir, data_root as resolve_data_root
from neurn.errors import NeurnError

PRESET_NAMES = list_presets()

data_root_option = click.option(
    "--data-root", type=click.Path(file_okay=False), default=None, envvar="NEURN_DATA",
    help="Folder with user-supplied datasets (usps/, svhn/, mnistm/). Default: $NEURN_DATA or the user data dir.",
)


@click.group(cls=cli_group("neurn", (NeurnError,)), context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archsim-neurn")
def cli() -> None:
    """NeuRN: brain-inspired input normalization for domain generalization."""


@cli.command("domains")
@data_root_option
def domains_cmd(data_root: str | None) -> None:
    """List the digit domains, their split sizes, sources and whether they are present.

    Present user-supplied files are read and checked (once per file version: the count is
    remembered in the cache), so their sizes are the real ones; a bad file shows as ``corrupt``
    with a warning naming it.  Absent files show the official split size in parentheses.
    """
    from neurn.domains import available_domains, get_domain, list_domains, split_size
    from neurn.errors import CorruptData, DomainUnavailable

    have = set(available_domains(data_root, split="test"))
    rows, problems = [], []
    for name in list_domains():
        info = get_domain(name)
        status = "ready" if name in have else ("absent" if info.user_supplied else "unavailable")
        sizes = {}
        for split in ("train", "test"):
            if split not in info.splits:
                sizes[split] = "-"
                continue
            try:
                sizes[split] = str(split_size(name, split, data_root) if info.user_supplied else info.splits[split])
            except DomainUnavailable:
                sizes[split] = f"({info.splits[split]})"  # file not supplied: the official size, marked
            except CorruptData as exc:
                sizes[split], status = "corrupt", "corrupt"
                problems.append(str(exc))
        rows.append((name, status, sizes["train"], sizes["test"],
                     f"{info.native_size}x{info.native_size}x{info.native_channels}", info.source))
    header = ("domain", "status", "train", "test", "native", "source")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    for row in [header] + rows:
        click.echo("  ".join(c.ljust(w) if i < 2 else c.rjust(w) if i < 4 else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row[:5], widths))) + "  " + row[5])
    if any(size.startswith("(") for row in rows for size in row[2:4]):
        click.echo("(n): official size of a user-supplied file that is not present")
    click.echo(f"\ndata root: {resolve_data_root(data_root)}   cache: {cache_dir()}")
    for problem in problems:  # echoed, not warnings.warn: a repeated message must not be deduplicated away
        click.echo(f"warning: {problem}", err=True)


@cli.command("build")
@click.argument("names", nargs=-1)
@click.option("--split", "splits", multiple=True, type=click.Choice(SPLITS), default=("test", "train"),
              show_default=True, help="Split(s) to generate.")
def build_cmd(names: tuple[str, ...], splits: tuple[str, ...]) -> None:
    """Generate and cache the offline domains (default: mnistm and syn), timing each split."""
    from neurn.domains import load_domain

    for name in names or ("mnistm", "syn"):
        for split in splits:
            t0 = time.perf_counter()
            images, _ = load_domain(name, split)
            click.echo(f"{name}/{split}: {len(images)} images in {time.perf_counter() - t0:.1f} s")


@cli.command("figures")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default="figures", show_default=True,
              help="Folder to write the figure(s) into.")
@click.option("-n", "--per-domain", type=click.IntRange(1, 10), default=8, show_default=True,
              help="Examples per domain (one per digit).")
@click.option("-k", "--kernel-size", type=click.IntRange(1, 31), default=3, show_default=True,
              help="NeuRN window size.")
@click.option("--results", type=click.Path(), default=None,
              help="Benchmark results folder: also write neurn_gains.png (gain of neurn over erm) and, when "
                   "its records hold learning curves, neurn_curves.png.")
@click.option("--ablation", type=click.Path(), default=None,
              help="NeuRN ablation results folder (neurn bench --preset ablation): also write neurn_ablation.png "
                   "(with --results, its erm runs of the same arch are drawn as a reference line).")
@data_root_option
def figures_cmd(out_dir: str, per_domain: int, kernel_size: int, data_root: str | None,
                results: str | None, ablation: str | None) -> None:
    """Write neurn_examples.png: originals over their NeuRN versions for four domains."""
    from pathlib import Path

    from archsim._io import check_output_dir
    from neurn.plot import examples_figure

    # Every input and the output folder are checked before any figure is drawn or written.
    check_output_dir(out_dir)
    records = None
    if results is not None:
        from neurn.bench.report import load_records

        records = load_records(results, notify=_warn_line)
    ablation_records = None
    if ablation is not None:
        from neurn.bench.report import load_records

        ablation_records = load_records(ablation, notify=_warn_line)
    import matplotlib

    from neurn.plot import has_curves, plot_ablation, plot_curves, plot_gains, save_figure

    matplotlib.use("Agg")
    # The record figures are drawn before anything is written: records that cannot make one fail the
    # command with no figure half-updated.
    drawn = []
    if records is not None:
        drawn.append((plot_gains(records), Path(out_dir) / "neurn_gains.png"))
        if has_curves(records):
            drawn.append((plot_curves(records), Path(out_dir) / "neurn_curves.png"))
    if ablation_records is not None:
        drawn.append((plot_ablation(ablation_records, reference=records), Path(out_dir) / "neurn_ablation.png"))
    path = examples_figure(out_dir, n=per_domain, kernel_size=kernel_size, data_root=data_root)
    click.echo(f"wrote {path}")
    for fig, fig_path in drawn:
        click.echo(f"wrote {save_figure(fig, fig_path)}")


# --- benchmark commands (issue #5): bench, table --------------------------------------------------

def _warn_line(message: str) -> None:
    """A warning as one line on stderr (echoed, so repeated messages are never deduplicated away)."""
    click.echo(message if message.startswith("warning: ") else f"warning: {message}", err=True)


QUICK_OUT = "results/_scratch/quick"
DEFAULT_CHECKPOINT_EVERY = 500


def _explicit(ctx: click.Context, name: str) -> bool:
    """True when the user gave option ``name`` (command line or environment), not its default."""
    from click.core import ParameterSource

    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


@cli.command("bench")
@click.option("--archs", default="digitnet", show_default=True,
              help="Comma list of architectures (neurn.bench.list_archs()), or 'all'.")
@click.option("--methods", default="erm,neurn", show_default=True, help="Comma list of methods (neurn.bench.list_methods()), or 'all' (erm, neurn, randconv, "
                   "neurn+randconv; the NeuRN ablation variants are named explicitly).")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds: '0,1,2' or '0-4' (at most 1000, each below 2**31).")
@click.option("--iters", type=int, default=10_000, show_default=True, help="Training iterations (protocol: 10000).")
@click.option("--eval-limit", type=int, default=None,
              help="Evaluate only the first N test images of each target (a recorded deviation).")
@click.option("--curve-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Record the source (mnist test, first 1000 images) accuracy every M iterations as the "
                   "record's source_curve; part of the config; 0: off.")
@click.option("--domains", default=None, help="Comma list of target domains (default: every available one).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help=f"Results folder (one JSON per run); a preset has its own default (--quick: {QUICK_OUT}).")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local worker processes (default: 1, or the preset's).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads per worker (default: 1; measured faster than 2 on a shared 2-core machine).")
@click.option("--device", type=click.Choice(DEVICES), default=None,
              help="Where runs train: cpu (default), cuda, or auto (cuda when available). Recorded, not config.")
@click.option("--amp/--no-amp", default=None,
              help="Autocast (bf16, else fp16) on CUDA; refused on CPU. Recorded, not config.")
@click.option("--channels-last/--no-channels-last", default=None,
              help="Model and data in channels-last memory format. Recorded, not config.")
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=None,
              help=f"Save each run's state to OUT/.ckpt every N iterations; a killed run resumes from it "
                   f"(default: {DEFAULT_CHECKPOINT_EVERY}, or the preset's; 0: off); a finished run keeps its "
                   "last state in OUT/.ckpt/final for --extend-from. Not config: results are identical.")
@click.option("--group", type=click.IntRange(min=1), default=None,
              help="Train up to N runs of one arch as one batched model (erm with neurn, randconv with "
                   "neurn+randconv; default: 1, each alone, or the preset's). Meant for a GPU; groups train in fp32 "
                   "(not with --amp or --channels-last); each record names its group. Not config.")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address (with --executor dask).")
@click.option("--retry-failed", is_flag=True, help="Rerun the runs recorded as failed.")
@click.option("--plan", "dry_run", is_flag=True,
              help="Train nothing: list the runs left (and the checkpoints they resume from) with the time each "
                   "should take, estimated from finished runs of the same arch and method.")
@click.option("--extend-from", type=click.Path(file_okay=False), default=None,
              help="Results folder of the same sweep with fewer --iters: each run starts from the state its "
                   "shorter run kept in FOLDER/.ckpt and trains only the remaining iterations (same result as "
                   "training from scratch). --out must be another folder.")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="A named sweep (neurn.bench.protocol.PRESETS): quick, reference-gpu (every arch x 4 methods "
                   "x 3 seeds, 10,000 iterations, cuda, 8 workers, --group 6), cpu-converge (digitnet, mobilenet_v2, "
                   "vit_p4 x 4 methods x 3 seeds, 2,000 iterations, learning curves), cpu-long (vit_p4, mnasnet1_0 at "
                   "6,000 iterations), cpu-regnet (regnetx_002 at 4,000 iterations), ablation. It fixes --archs/--methods/"
                   "--seeds/--iters/--eval-limit/--curve-every; the other options override its defaults.")
@click.option("--quick", is_flag=True,
              help="Same as --preset quick: digitnet, erm vs neurn, seed 0, 300 iters, 1000 eval images, into "
                   f"{QUICK_OUT} unless --out.")
@data_root_option
@click.pass_context
def bench_cmd(ctx: click.Context, archs: str, methods: str, seeds: str, iters: int, eval_limit: int | None,
              curve_every: int, domains: str | None, out: str | None, executor: str, workers: int | None,
              threads: int | None, device: str | None, amp: bool | None, channels_last: bool | None,
              checkpoint_every: int | None, group: int | None, scheduler: str | None, retry_failed: bool, dry_run: bool,
              extend_from: str | None, preset: str | None, quick: bool, data_root: str | None) -> None:
    """Train every (arch, method, seed) on MNIST[:10000] and record its accuracy on each target domain."""
    from neurn.bench.archs import list_archs
    from neurn.bench.methods import list_methods
    from neurn.bench.protocol import ALL_ARCHS, ALL_METHODS, PRESET_FIXED, get_preset
    from neurn.bench.sweep import run_sweep

    if quick and preset:
        raise click.UsageError("--quick is --preset quick; give only one of them")
    flag = "--quick" if quick else f"--preset {preset}"
    preset = "quick" if quick else preset
    pairs_first = None
    if preset:
        spec = get_preset(preset)
        # A preset fixes what the results are: an explicit option next to it would be silently overridden.
        explicit = [f"--{n.replace('_', '-')}" for n in PRESET_FIXED if _explicit(ctx, n)]
        if explicit:
            raise click.UsageError(f"{flag} sets {', '.join(explicit)} itself; drop {flag} or "
                                   f"{'that option' if len(explicit) == 1 else 'those options'}")
        fixed, defaults = spec["fixed"], spec["defaults"]
        archs = ",".join(list_archs()) if fixed["archs"] == ALL_ARCHS else ",".join(fixed["archs"])
        methods, seeds = ",".join(fixed["methods"]), ",".join(map(str, fixed["seeds"]))
        iters, eval_limit, curve_every = fixed["iters"], fixed["eval_limit"], fixed["curve_every"]
        pairs_first = spec.get("pairs_first")
        out = out or defaults.get("out")
        workers = workers or defaults.get("workers")
        threads = threads or defaults.get("threads")
        device = device or defaults.get("device")
        if channels_last is None:
            channels_last = defaults.get("channels_last")
        if checkpoint_every is None:
            checkpoint_every = defaults.get("checkpoint_every")
        group = group or defaults.get("group")
        if amp is None and defaults.get("amp"):
            # The preset's AMP applies where it can (CUDA); an explicit --amp on CPU is refused below.
            from neurn.bench.train import resolve_device

            amp = resolve_device(device or "cpu") == "cuda"
        if quick:
            click.echo(f"--quick: a smoke run, not a result; writing to {out}", err=True)
        else:
            click.echo(f"{flag}: {spec['description']}; writing to {out}", err=True)
    if out is None:
        raise click.UsageError("--out is required (or use --quick or --preset)")
    archs = ",".join(list_archs()) if archs == "all" else archs
    methods = ",".join(ALL_METHODS) if methods == "all" else methods
    checkpoint_every = DEFAULT_CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
    recs = run_sweep(archs, methods, seeds, out, iters=iters, eval_limit=eval_limit, domains=domains,
                     executor=executor, workers=workers or 1, threads=threads, scheduler=scheduler,
                     data_root=data_root, retry_failed=retry_failed, notify=lambda m: click.echo(m, err=True),
                     device=device or "cpu", amp=bool(amp), channels_last=bool(channels_last),
                     checkpoint_every=checkpoint_every, curve_every=curve_every, pairs_first=pairs_first,
                     dry_run=dry_run, extend_from=extend_from, group=group or 1)
    if dry_run:
        return
    failed = sum(r["status"] != "ok" for r in recs)
    click.echo(f"{len(recs)} new run(s) recorded in {out} ({failed} failed); summarise with: neurn table {out}")
    if quick:
        from neurn.bench.report import format_table, load_records

        click.echo(format_table(load_records(out, notify=_warn_line), "md"))


@cli.command("table")
@click.argument("results", type=click.Path(), nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="md", show_default=True,
              help="Output format (not with --by-family, which is markdown only).")
@click.option("--method", default="neurn", show_default=True, help="Method whose gain is reported.")
@click.option("--baseline", default="erm", show_default=True,
              help="Baseline method of the gain (not with --by-family, which compares with erm and randconv).")
@click.option("--by-family", is_flag=True,
              help="Instead: per architecture family, whether --method beats erm and randconv on the unseen "
                   "targets (pooled paired t-test), and whether ERM had plateaued, as markdown. Takes several "
                   "RESULTS folders: each arch from the folder that trained it longest.")
@click.option("--archs", default=None, help="Comma list: only these architectures (default: every one recorded).")
def table_cmd(results: tuple[str, ...], fmt: str, method: str, baseline: str, by_family: bool,
              archs: str | None) -> None:
    """Per architecture x target: mean ± std over seeds, gain over the baseline, paired p-values.

    Damaged record files are named on stderr and left out; NaN accuracies are marked † and listed.
    """
    from neurn.bench.report import combine_folders, family_verdicts, format_table, load_records, select_archs

    names = [a.strip() for a in archs.split(",") if a.strip()] if archs else None
    if len(results) > 1 and not by_family:
        raise click.UsageError("several RESULTS folders combine only with --by-family; give one folder "
                               "for the full table")
    if by_family:
        # Options that --by-family cannot honour are refused, not silently ignored (their defaults are fine).
        ctx = click.get_current_context()
        if _explicit(ctx, "baseline"):
            raise click.UsageError("--baseline does not apply with --by-family, which compares --method with both "
                                   "erm and randconv; drop --baseline, or drop --by-family for the full table "
                                   "against one baseline")
        if _explicit(ctx, "fmt"):
            raise click.UsageError("--format does not apply with --by-family, whose table is markdown only; "
                                   "drop --format, or drop --by-family for the full table in csv or latex")
        records, notes = combine_folders(list(results), notify=_warn_line, method=method)
        records = select_archs(records, names)
        _warn_flagged(records)
        lines = [line for arch, line in notes.items() if names is None or arch in names]
        click.echo(family_verdicts(records, method), nl=False)
        for line in lines:
            click.echo(f"\n- {line}", nl=False)
        if lines:
            click.echo()
        return
    records = select_archs(load_records(results[0], notify=_warn_line), names)
    _warn_flagged(records)
    click.echo(format_table(records, fmt, method, baseline), nl=False)


def _warn_flagged(records: list) -> None:
    """On stderr, one line each: archs trained on several definitions or precisions, runs whose record carries
    warnings."""
    from neurn.bench.report import definition_conflicts, precision_mixes

    for line in definition_conflicts(records) + precision_mixes(records):
        _warn_line(line)
    for r in records:
        for warning in r.get("warnings") or []:
            _warn_line(f"{r['arch']}/{r['method']}/s{r['seed']}: {warning}")


def main() -> None:
    """Console-script entry point: ``neurn: error: ...`` on stderr, exit 2 for usage, 1 for failures."""
    cli(prog_name="neurn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``neurn`` command line."""
from __future__ import annotations

import sys
import time

import click

from archsim.errors import cli_group
from neurn.bench.protocol import EXECUTORS, SPLITS, TABLE_FORMATS
from neurn._io import cache_dir, data_root as resolve_data_root
from neurn.errors import NeurnError

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
              help="Benchmark results folder: also write neurn_gains.png (gain of neurn over erm).")
@data_root_option
def figures_cmd(out_dir: str, per_domain: int, kernel_size: int, data_root: str | None,
                results: str | None) -> None:
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
    path = examples_figure(out_dir, n=per_domain, kernel_size=kernel_size, data_root=data_root)
    click.echo(f"wrote {path}")
    if records is not None:
        from neurn.plot import plot_gains

        gain_path = Path(out_dir) / "neurn_gains.png"
        plot_gains(records, gain_path)
        click.echo(f"wrote {gain_path}")


# --- benchmark commands (issue #5): bench, table --------------------------------------------------

def _warn_line(message: str) -> None:
    """A warning as one line on stderr (echoed, so repeated messages are never deduplicated away)."""
    click.echo(message if message.startswith("warning: ") else f"warning: {message}", err=True)


QUICK_OPTIONS = ("archs", "methods", "seeds", "iters", "eval_limit")  # what --quick sets itself
QUICK_OUT = "results/_scratch/quick"


@cli.command("bench")
@click.option("--archs", default="digitnet", show_default=True,
              help="Comma list of architectures (neurn.bench.list_archs()), or 'all'.")
@click.option("--methods", default="erm,neurn", show_default=True, help="Comma list of methods, or 'all'.")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds: '0,1,2' or '0-4' (at most 1000, each below 2**31).")
@click.option("--iters", type=int, default=10_000, show_default=True, help="Training iterations (protocol: 10000).")
@click.option("--eval-limit", type=int, default=None,
              help="Evaluate only the first N test images of each target (a recorded deviation).")
@click.option("--domains", default=None, help="Comma list of target domains (default: every available one).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help=f"Results folder (one JSON per run); with --quick the default is {QUICK_OUT}.")
@click.option("--executor", type=click.Choice(EXECUTORS), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Local worker processes.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads per worker (default: 1; measured faster than 2 on a shared 2-core machine).")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address (with --executor dask).")
@click.option("--retry-failed", is_flag=True, help="Rerun the runs recorded as failed.")
@click.option("--quick", is_flag=True,
              help="Preset smoke run: digitnet, erm vs neurn, seed 0, 300 iters, 1000 eval images, into "
                   f"{QUICK_OUT} unless --out; cannot be combined with --archs/--methods/--seeds/--iters/"
                   "--eval-limit.")
@data_root_option
@click.pass_context
def bench_cmd(ctx: click.Context, archs: str, methods: str, seeds: str, iters: int, eval_limit: int | None,
              domains: str | None, out: str | None, executor: str, workers: int, threads: int | None,
              scheduler: str | None, retry_failed: bool, quick: bool, data_root: str | None) -> None:
    """Train every (arch, method, seed) on MNIST[:10000] and record its accuracy on each target domain."""
    from click.core import ParameterSource

    from neurn.bench.archs import list_archs
    from neurn.bench.methods import list_methods
    from neurn.bench.protocol import QUICK
    from neurn.bench.sweep import run_sweep

    if quick:
        # --quick is a fixed preset: an explicit option next to it would be silently overridden.
        explicit = [f"--{n.replace('_', '-')}" for n in QUICK_OPTIONS
                    if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]
        if explicit:
            raise click.UsageError(f"--quick sets {', '.join(explicit)} itself; drop --quick or "
                                   f"{'that option' if len(explicit) == 1 else 'those options'}")
        archs, methods = ",".join(QUICK["archs"]), ",".join(QUICK["methods"])
        seeds = ",".join(map(str, QUICK["seeds"]))
        iters, eval_limit = QUICK["iters"], QUICK["eval_limit"]
        out = out or QUICK_OUT
        click.echo(f"--quick: a smoke run, not a result; writing to {out}", err=True)
    if out is None:
        raise click.UsageError("--out is required (or use --quick)")
    archs = ",".join(list_archs()) if archs == "all" else archs
    methods = ",".join(list_methods()) if methods == "all" else methods
    recs = run_sweep(archs, methods, seeds, out, iters=iters, eval_limit=eval_limit, domains=domains,
                     executor=executor, workers=workers, threads=threads, scheduler=scheduler,
                     data_root=data_root, retry_failed=retry_failed, notify=lambda m: click.echo(m, err=True))
    failed = sum(r["status"] != "ok" for r in recs)
    click.echo(f"{len(recs)} new run(s) recorded in {out} ({failed} failed); summarise with: neurn table {out}")
    if quick:
        from neurn.bench.report import format_table, load_records

        click.echo(format_table(load_records(out, notify=_warn_line), "md"))


@cli.command("table")
@click.argument("results", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="md", show_default=True)
@click.option("--method", default="neurn", show_default=True, help="Method whose gain is reported.")
@click.option("--baseline", default="erm", show_default=True, help="Baseline method of the gain.")
def table_cmd(results: str, fmt: str, method: str, baseline: str) -> None:
    """Per architecture x target: mean ± std over seeds, gain over the baseline, paired p-values.

    Damaged record files are named on stderr and left out; NaN accuracies are marked † and listed.
    """
    from neurn.bench.report import format_table, load_records

    click.echo(format_table(load_records(results, notify=_warn_line), fmt, method, baseline), nl=False)


def main() -> None:
    """Console-script entry point: ``neurn: error: ...`` on stderr, exit 2 for usage, 1 for failures."""
    cli(prog_name="neurn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``neurn`` command line."""
from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archsim-neurn")
def cli() -> None:
    """NeuRN: brain-inspired input normalization for domain generalization."""


# --- benchmark commands (issue #5): bench, table --------------------------------------------------

@cli.command("bench")
@click.option("--archs", default="digitnet", show_default=True,
              help="Comma list of architectures (see neurn.archs.list_archs()), or 'all'.")
@click.option("--methods", default="erm,neurn", show_default=True, help="Comma list of methods, or 'all'.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds: '0,1,2' or '0-4'.")
@click.option("--iters", type=int, default=10_000, show_default=True, help="Training iterations (protocol: 10000).")
@click.option("--eval-limit", type=int, default=None,
              help="Evaluate a fixed random subset of N test images per target (a recorded deviation).")
@click.option("--domains", default=None, help="Comma list of target domains (default: every available one).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Results folder (one JSON per run).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="Local worker processes.")
@click.option("--threads", type=int, default=None, help="Torch threads per worker (default: cores / workers).")
@click.option("--scheduler", default=None, help="dask.distributed scheduler address (with --executor dask).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Folder of user-supplied domains.")
@click.option("--retry-failed", is_flag=True, help="Rerun runs recorded as failed.")
@click.option("--quick", is_flag=True, help="Preset: digitnet, erm vs neurn, seed 0, 300 iters, 1000 eval images.")
def bench_cmd(archs: str, methods: str, seeds: str, iters: int, eval_limit: int | None, domains: str | None,
              out: str | None, executor: str, workers: int, threads: int | None, scheduler: str | None,
              data_root: str | None, retry_failed: bool, quick: bool) -> None:
    """Train every (arch, method, seed) on MNIST[:10000] and record its accuracy on each target domain."""
    from neurn.archs import list_archs
    from neurn.bench import QUICK, run_sweep
    from neurn._io import NeurnError
    from neurn.methods import list_methods

    if quick:
        archs, methods = ",".join(QUICK["archs"]), ",".join(QUICK["methods"])
        seeds = ",".join(map(str, QUICK["seeds"]))
        iters, eval_limit = QUICK["iters"], QUICK["eval_limit"]
        out = out or "results/_scratch/quick"
    if out is None:
        raise click.UsageError("--out is required (or use --quick)")
    archs = ",".join(list_archs()) if archs == "all" else archs
    methods = ",".join(list_methods()) if methods == "all" else methods
    try:
        recs = run_sweep(archs, methods, seeds, out, iters=iters, eval_limit=eval_limit, domains=domains,
                         executor=executor, workers=workers, threads=threads, scheduler=scheduler,
                         data_root=data_root, retry_failed=retry_failed, notify=lambda m: click.echo(m, err=True))
    except NeurnError as e:
        raise click.UsageError(str(e)) from None
    failed = sum(r["status"] != "ok" for r in recs)
    click.echo(f"{len(recs)} new run(s) recorded in {out} ({failed} failed); summarise with: neurn table {out}")
    if quick:
        from neurn.tables import format_table, load_records

        click.echo(format_table(load_records(out), "md"))


@cli.command("table")
@click.argument("results", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex"]), default="md", show_default=True)
@click.option("--method", default="neurn", show_default=True, help="Method whose gain is reported.")
@click.option("--baseline", default="erm", show_default=True, help="Baseline method of the gain.")
def table_cmd(results: str, fmt: str, method: str, baseline: str) -> None:
    """Per architecture x target: mean ± std over seeds, gain over the baseline, paired p-values."""
    from neurn.records import BenchError
    from neurn.tables import format_table, load_records

    try:
        click.echo(format_table(load_records(results), fmt, method, baseline), nl=False)
    except BenchError as e:
        raise click.UsageError(str(e)) from None


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="neurn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``neurn`` command line."""
from __future__ import annotations

import sys

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archsim-neurn")
def cli() -> None:
    """NeuRN: brain-inspired input normalization for domain generalization."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="neurn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Errors with one clear message naming the fix, and the CLI convention both tools share.

Every error a user can cause derives from a package base (``ArchsimError`` here, ``NeurnError``
in neurn) and carries an ``exit_code``: 2 for usage mistakes and unknown names, 1 for runtime
failures.  :func:`run_cli` prints them as ``tool: error: message`` without a traceback.

    >>> str(UnknownNameError("preset", "papr44", ["paper44", "torchvision"]))
    "unknown preset 'papr44'; did you mean paper44? (choose from: paper44, torchvision)"
"""
from __future__ import annotations

import difflib
import re
import sys
import warnings
from typing import Iterable, Sequence


def shorten(text: str, width: int = 60) -> str:
    """``text`` cut to ``width`` characters with an ellipsis, for names echoed in messages.

    >>> shorten("x" * 100, 10)
    'xxxxxxxxx…'
    """
    text = str(text)
    return text if len(text) <= width else text[:width - 1] + "…"


def first_line(exc: BaseException, width: int = 200) -> str:
    """The first line of an exception's message, shortened, for one-line errors.

    >>> first_line(ValueError("bad config\\nTraceback detail"))
    'bad config'
    """
    text = str(exc).strip()
    return shorten(text.splitlines()[0] if text else "", width)


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` close matches of ``name`` among ``choices`` (case-insensitive).

    >>> did_you_mean("resnt50", ["vgg16", "resnet50", "resnet101"])
    ['resnet50', 'resnet101']
    """
    pool = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(pool), n=n, cutoff=0.6)
    if not close:
        stem = str(name).lower()[:3]
        close = sorted(c for c in pool if stem and c.startswith(stem))[:n]
    return [pool[c] for c in close]


def unknown_message(kind: str, name: str, choices: Sequence[str], hint: str = "", query: str | None = None) -> str:
    """The one-line message for an unknown registry name: did-you-mean, then the valid names."""
    sugg = did_you_mean(name if query is None else query, choices)
    msg = f"unknown {kind} {shorten(name)!r}"
    if sugg:
        msg += f"; did you mean {', '.join(sugg)}?"
    if hint:
        msg += f" ({hint})"
    elif choices:
        listed = list(choices)
        more = f", … ({len(listed)} in all)" if len(listed) > 12 else ""
        msg += f" (choose from: {', '.join(listed[:12])}{more})"
    return msg


class ArchsimError(Exception):
    """Base class of the errors archsim reports to users as a single line."""

    exit_code = 1


class UsageError(ArchsimError, ValueError):
    """A bad argument value; the CLI exits with 2."""

    exit_code = 2


class UnknownName(LookupError, ValueError):
    """What every unknown-name error of both tools is: the kind, the name, the choices, did-you-mean.

    Each tool's error (``UnknownNameError`` here, ``neurn.errors.UnknownName``) mixes this with
    its own base, so one ``except LookupError`` catches both and the CLI exits with 2.
    """

    exit_code = 2

    def __init__(self, kind: str, name: str, choices: Sequence[str] = (), hint: str = "", query: str | None = None):
        self.kind, self.name, self.choices = kind, name, list(choices)
        self.suggestions = did_you_mean(name if query is None else query, self.choices)
        super().__init__(unknown_message(kind, name, self.choices, hint, query))


class UnknownNameError(ArchsimError, UnknownName):
    """A name no registry knows (model, preset, profile, zoo ...), with did-you-mean; exit code 2."""

    exit_code = 2


class UnknownModelError(UnknownNameError):
    """A model name that neither torchvision, timm nor archsim's own registry knows."""

    def __init__(self, name: str, choices: Sequence[str] = ()):
        super().__init__("model", name, choices, hint="see `archsim list PATTERN`", query=name.split(":", 1)[-1])


class ModelLoadError(ArchsimError):
    """A user model (``file.py:factory`` or ``package.module:factory``) that could not be built."""


class DataError(ArchsimError):
    """A damaged cache or data file (named in the message)."""


def _format_warning(message, category, filename, lineno, line=None) -> str:
    # Users read "warning: ...", not the Python source line that raised it.
    return f"warning: {message}\n"


def cli_group(prog: str, handled: tuple[type[BaseException], ...]):
    """A click ``Group`` class with the shared convention: ``prog: error: ...``, exit 2 usage / 1 runtime.

    Args:
        prog: the program name printed in messages (``archsim`` or ``neurn``).
        handled: the tool's own error base classes (their ``exit_code`` is used).

    Returns:
        A ``click.Group`` subclass for ``@click.group(cls=...)``.  Its ``main`` (what the console
        script and click's ``CliRunner`` call) prints errors as one line without a traceback.
    """
    import click

    from ._io import OutputError

    class ToolGroup(click.Group):
        def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
            if not standalone_mode:
                return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            warnings.formatwarning = _format_warning
            try:
                rv = super().main(args, prog_name or prog, complete_var, standalone_mode=False, **extra)
            except click.Abort:
                click.echo(f"{prog}: aborted", err=True)
                sys.exit(130)
            except click.ClickException as exc:
                ctx = getattr(exc, "ctx", None)
                if ctx is not None:
                    click.echo(ctx.get_usage(), err=True)
                # click echoes rejected values whole: cut any over-long word (a pasted name)
                msg = re.sub(r"\S{61,}", lambda m: shorten(m.group(0)), exc.format_message())
                click.echo(f"{prog}: error: {msg}", err=True)
                sys.exit(exc.exit_code)
            except handled + (OutputError,) as exc:
                click.echo(f"{prog}: error: {exc}", err=True)
                sys.exit(getattr(exc, "exit_code", 1))
            except KeyboardInterrupt:
                click.echo(f"{prog}: interrupted", err=True)
                sys.exit(130)
            sys.exit(rv if isinstance(rv, int) else 0)  # --help / --version / ctx.exit(n) return their code

    return ToolGroup

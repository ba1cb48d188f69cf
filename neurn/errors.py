"""NeuRN's error types: each message tells the user what to do; the CLI prints it as ``neurn: error: ...``.

``exit_code`` follows the convention both tools share: 2 for usage mistakes and unknown names,
1 for runtime failures (missing or damaged data, failed runs).
"""
from __future__ import annotations

from archsim.errors import UnknownName as _UnknownName


class NeurnError(Exception):
    """Base of the errors whose message tells the user what to do (printed as one line by the CLI)."""

    exit_code = 1


class InvalidArgument(NeurnError, ValueError):
    """A bad argument value (kernel size, split, channels, limit, seeds...); exit code 2."""

    exit_code = 2


class UnknownName(NeurnError, _UnknownName):
    """A name no registry knows (domain, architecture, method, executor ...), with did-you-mean; exit code 2."""

    exit_code = 2


UnknownDomain = UnknownName  # the name neurn 0.1 used for unknown domains


class DomainUnavailable(NeurnError, FileNotFoundError):
    """A domain whose data is not on this machine (user-supplied file or optional package missing)."""


class CorruptData(NeurnError, ValueError):
    """A data file exists but fails its checksum, format or content check (named in the message)."""


class BenchError(NeurnError, ValueError):
    """Bad benchmark input or a results folder that cannot be used (named in the message)."""


class ConfigMismatch(BenchError):
    """A results folder that holds runs of another protocol: choose another ``--out``; exit code 2."""

    exit_code = 2

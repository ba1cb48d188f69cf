"""The one atomic writer, output-path checks, the cache root and library versions (shared by both tools).

Every file archsim or neurn writes goes through :func:`atomic_write`: a temp file beside the
target, then ``os.replace``, so a reader (or a killed process) never sees half a file, and no
``.tmp`` is left behind on failure.  Files get ordinary permissions (``0666 & ~umask``).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "a.txt", "hello").read_text()
    'hello'
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt']
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Callable, Union

Payload = Union[str, bytes, Callable[[Path], None]]


class OutputError(OSError):
    """An output path that cannot be written (unwritable, a file where a folder is expected, ...)."""

    exit_code = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_output_dir(folder: str | os.PathLike, create: bool = True) -> Path:
    """Make sure ``folder`` is (or can become) a writable directory; raise ``OutputError`` naming it.

    Called before long work starts, so a bad ``-o`` fails in a second, not after the job.

    Args:
        folder: the directory outputs will go to.
        create: create it (and its parents) when missing.

    Returns:
        The folder as a ``Path``.

    >>> check_output_dir("/proc/archsim-nowhere")
    Traceback (most recent call last):
    ...
    archsim._io.OutputError: cannot create the output folder /proc/archsim-nowhere: No such file or directory
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder: choose another output folder")
    if not folder.exists():
        if not create:
            raise OutputError(f"output folder {folder} does not exist")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {_reason(exc)}") from None
    try:  # os.access lies for root and on some mounts: try a real file
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".archsim-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"cannot write into {folder}: {_reason(exc)}") from None
    return folder


def check_output_file(path: str | os.PathLike) -> Path:
    """Make sure the file ``path`` can be written (its folder writable, not itself a folder)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    check_output_dir(path.parent if str(path.parent) else Path("."))
    return path


def atomic_write(path: str | os.PathLike, data: Payload) -> Path:
    """Write ``data`` (text, bytes, or a function writing to the temp path it is given) to ``path`` atomically.

    Raises ``OutputError`` (one line naming the path) when it cannot be written; nothing
    half-written is left at ``path`` and no temp file is left beside it.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        if callable(data):
            os.close(fd)
            data(Path(tmp))
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs and caches are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        _discard(tmp)
        raise
    return path


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def cache_root() -> Path:
    """The user cache folder of both tools (``platformdirs``' cache dir for ``archsim-neurn``)."""
    import platformdirs
    return Path(platformdirs.user_cache_dir("archsim-neurn"))


@lru_cache(maxsize=None)
def installed_version(package: str) -> str | None:
    """The installed version of ``package``, read without importing it (None when it is not installed)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose code defines the architectures (read without importing them)."""
    return {pkg: installed_version(pkg) or "absent" for pkg in ("torch", "torchvision", "timm")}

"""Shared test setup: a token cache kept across runs, isolated neurn folders, console-script runners."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("KERAS_BACKEND", "torch")  # keras: models run on Keras 3's torch backend
# The token cache survives between runs: its key holds the torch/torchvision/timm and tokenizer
# versions, so a stale entry can never be served, and a warm cache saves minutes of extraction.
# Never the user's own cache: tests must not depend on (or write to) it.
_TOKEN_CACHE = os.environ.get("ARCHSIM_TEST_CACHE") or str(ROOT / ".pytest_cache" / "archsim-tokens")
os.environ["ARCHSIM_CACHE"] = _TOKEN_CACHE

settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile("ci")

_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def session_cache_dir() -> str:
    """The token-cache directory shared by the test session (and kept across sessions)."""
    return _TOKEN_CACHE


@pytest.fixture(scope="module")
def isolated_neurn_dirs(tmp_path_factory):
    """A fresh NEURN_CACHE and an empty NEURN_DATA for one test module: nothing from the machine leaks in."""
    with pytest.MonkeyPatch.context() as mp:
        cache, data = tmp_path_factory.mktemp("neurn-cache"), tmp_path_factory.mktemp("neurn-data")
        mp.setenv("NEURN_CACHE", str(cache))
        mp.setenv("NEURN_DATA", str(data))
        yield cache, data


def _console(tool: str):
    exe = shutil.which(tool, path=str(_BIN)) or tool

    def run(*args: str, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
        """Run the installed console script ``tool`` with ``args``; text output captured."""
        return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout,
                              env=kw.pop("env", os.environ), **kw)

    return run


@pytest.fixture(scope="session")
def archsim_cli():
    """``archsim_cli("compare", "vgg11", "vgg13")``: the installed ``archsim`` script, end to end."""
    return _console("archsim")


@pytest.fixture(scope="session")
def neurn_cli():
    """``neurn_cli("domains")``: the installed ``neurn`` script, end to end."""
    return _console("neurn")

"""Shared test setup: a private token cache, a headless matplotlib backend, hypothesis profile."""
from __future__ import annotations

import os
import tempfile

import pytest
from hypothesis import settings

os.environ.setdefault("MPLBACKEND", "Agg")
# One cache for the whole session so the suite never touches (or depends on) the user's cache.
_SESSION_CACHE = tempfile.mkdtemp(prefix="archsim-test-cache-")
os.environ["ARCHSIM_CACHE"] = _SESSION_CACHE

settings.register_profile("ci", max_examples=200, deadline=None)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def session_cache_dir() -> str:
    """The token-cache directory shared by the test session."""
    return _SESSION_CACHE

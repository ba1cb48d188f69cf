"""Every relative link and image in the project's markdown points at a file that exists."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SKIP_DIRS = {".venv", ".git", "node_modules", "build", "dist", ".ckpt"}


def _markdown_files() -> list[Path]:
    """The tracked markdown pages (git ls-files); outside a git checkout, every page outside build folders."""
    try:
        out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
        tracked = [ROOT / line for line in out.stdout.splitlines() if line]
        if tracked:
            return sorted(p for p in tracked if p.exists())
    except (OSError, subprocess.CalledProcessError):
        pass
    return sorted(p for p in ROOT.rglob("*.md")
                  if not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
                  and not any(part.startswith((".", "_")) for part in p.relative_to(ROOT).parts[:-1]))


def _targets(text: str) -> list[str]:
    # Code spans and fenced blocks hold examples, not links.
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", t)]


def test_markdown_links_are_checked_in_the_main_pages():
    names = {p.relative_to(ROOT).as_posix() for p in _markdown_files()}
    assert {"README.md", "docs/benchmark.md", "results/cpu-converge-i2000/README.md"} <= names


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    missing = []
    for target in _targets(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_link_pattern_finds_links_and_images_but_not_code():
    text = "see [a](docs/a.md#x) and ![p](fig.png \"t\"), `[no](code.md)`, [web](https://x.org)\n```\n[no](b.md)\n```"
    assert _targets(text) == ["docs/a.md#x", "fig.png"]

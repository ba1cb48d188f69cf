"""The public API: every export resolves, no module shadows a public function, no import cycle."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import archsim
import neurn

ROOT = Path(__file__).resolve().parents[1]


def _modules(pkg) -> list[str]:
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]


def test_every_archsim_export_resolves():
    for name in archsim.__all__:
        assert getattr(archsim, name) is not None, name
    assert archsim.align("CRM", "CM").score == 0  # C=C, R vs gap, M=M


def test_every_neurn_export_resolves():
    for name in neurn.__all__:
        assert getattr(neurn, name) is not None, name
    assert neurn.domains.load_domain("digits", "test", limit=2)[0].shape == (2, 3, 32, 32)


@pytest.mark.parametrize("pkg", [archsim, neurn], ids=["archsim", "neurn"])
def test_no_module_is_named_like_a_public_function(pkg):
    public = {n for n in pkg.__all__ if callable(getattr(pkg, n)) and not isinstance(getattr(pkg, n), type)}
    for mod in _modules(pkg):
        assert mod.rsplit(".", 1)[-1] not in public, mod


def _imports(path: Path, package: str) -> set[str]:
    """Module-level imports of one file (function-level imports are lazy and cannot cycle at import time)."""
    tree = ast.parse(path.read_text())
    mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if mod.endswith(".__init__"):
        mod = mod[: -len(".__init__")]
        base = mod
    else:
        base = mod.rsplit(".", 1)[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{parent}.{node.module}" if node.module else parent
            else:
                target = node.module or ""
            if target.split(".")[0] in ("archsim", "neurn"):
                out.add(target)
                for alias in node.names:
                    out.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in ("archsim", "neurn")}
    return out


def test_no_import_cycles():
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for pkg in ("archsim", "neurn") for p in (ROOT / pkg).rglob("*.py")}
    graph = {m: {t for t in _imports(p, m) if t in files and t != m} for m, p in files.items()}
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for m in graph:
        graph[m] = {t for t in graph[m] if not (files[m].name == "__init__.py" and t.startswith(m + "."))}
    seen, stack = set(), []

    def visit(m: str) -> None:
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
        if m in seen:
            return
        stack.append(m)
        for t in sorted(graph[m]):
            visit(t)
        stack.pop()
        seen.add(m)

    for m in sorted(graph):
        visit(m)


def test_every_module_imports():
    for pkg in (archsim, neurn):
        for mod in _modules(pkg):
            importlib.import_module(mod)

"""The package's shape (issue 12): no import circle between modules, the pure packages import no
SQLAlchemy and no httpx (not even through another module), and no module over 400 lines.

The graph is read with ``ast`` from the source files, so it counts every import: those under
``TYPE_CHECKING`` and those inside functions too (an import deferred to run time is still a
dependency a reader has to follow).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "harvester"
PURE = ("harvester.records", "harvester.text", "harvester.query", "harvester.dedup")
FORBIDDEN_IN_PURE = ("sqlalchemy", "httpx", "alembic")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}


def imported(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    """Every module name an import statement in ``tree`` names (absolute, as written)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                keep = len(base) - node.level + (1 if is_package else 0)
                prefix = ".".join(base[:keep])
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            for alias in node.names:
                yield f"{target}.{alias.name}"  # ``from pkg import submodule``


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Internal edges (module -> modules) and external top-level packages per module."""
    known = modules()
    internal: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        outside: set[str] = set()
        for target in imported(tree, name, path.name == "__init__.py"):
            if target.split(".")[0] == "harvester":
                if target in known and target != name:
                    edges.add(target)
            else:
                outside.add(target.split(".")[0])
        internal[name] = edges
        external[name] = outside
    return internal, external


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for w in edges.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def parents(name: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def test_no_import_circle() -> None:
    internal, _ = graph()
    assert cycles(internal) == []


def test_pure_packages_import_no_database_or_http_library() -> None:
    internal, external = graph()
    known = set(internal)
    # Package __init__ modules run on import: follow them as edges too.
    with_parents = {
        name: edges | {p for p in parents(name) if p in known} for name, edges in internal.items()
    }
    offences = []
    for name in sorted(internal):
        if not any(name == p or name.startswith(p + ".") for p in PURE):
            continue
        for dep in sorted(reachable(name, with_parents)):
            bad = external[dep] & set(FORBIDDEN_IN_PURE)
            if bad:
                offences.append(f"{name} -> {dep} imports {', '.join(sorted(bad))}")
    assert offences == []


def test_no_module_over_400_lines() -> None:
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_graph_sees_a_known_edge() -> None:
    """Guard against a graph that reads nothing (a test of nothing would pass every check)."""
    internal, external = graph()
    assert "harvester.errors" in internal["harvester.app"]
    assert "sqlalchemy" in external["harvester.store.database"]

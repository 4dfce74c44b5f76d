"""The shape of the package: storage engines are reached only through the storage seam (no ``sqlite3`` or
``chromadb`` import outside ``memory_plugin/storage``), the core imports no framework, and no two modules import
each other, however indirectly."""

from __future__ import annotations

import ast
from pathlib import Path

import memory_plugin

PACKAGE = Path(memory_plugin.__file__).parent
STORAGE_ENGINES = ("sqlite3", "chromadb", "psycopg", "psycopg_pool")
FRAMEWORKS = ("langchain", "langchain_core", "langgraph", "llama_index")


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def _imported(module: str, node: ast.AST, is_package: bool) -> list[str]:
    """Absolute names of the modules an import statement imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - node.level + 1]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix, *(f"{prefix}.{alias.name}" for alias in node.names)]


def test_storage_engines_are_imported_only_under_storage() -> None:
    for name, tree in _modules().items():
        if name.startswith("memory_plugin.storage"):
            continue
        for node in ast.walk(tree):
            for imported in _imported(name, node, False):
                assert imported.split(".")[0] not in STORAGE_ENGINES, f"{name} imports {imported}"


def test_the_core_imports_no_framework() -> None:
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            for imported in _imported(name, node, False):
                assert imported.split(".")[0] not in FRAMEWORKS, f"{name} imports {imported}"


def test_no_import_cycle() -> None:
    """Module-level imports between modules of the package form no cycle. Importing a package's ``__init__`` (which
    only re-exports) does not count: ``from .. import clock`` depends on ``clock``, not on the whole package."""
    modules = _modules()
    packages = {name for name in modules if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()}
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        if name in packages:
            continue
        edges = set()
        for node in tree.body:  # module level: a function-level import runs later, not at import time
            for imported in _imported(name, node, False):
                if imported in modules and imported not in packages and imported != name:
                    edges.add(imported)
        graph[name] = edges
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_adapter_packages_share_only_the_core() -> None:
    """Neither framework adapter imports the other: what they share lives in the core (``memory_plugin.binding``)."""
    adapters = PACKAGE.parent / "adapters"
    packages = sorted(p.name for p in adapters.iterdir() if (p / "__init__.py").exists())
    assert packages == ["langchain_memory_plugin", "llama_index_memory_plugin"]
    for package in packages:
        others = [p for p in packages if p != package]
        for path in (adapters / package).rglob("*.py"):
            name = ".".join(path.relative_to(adapters).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                for imported in _imported(name, node, path.name == "__init__.py"):
                    assert imported.split(".")[0] not in others, f"{name} imports {imported}"

"""The server and compat packages sit outside the core: the core never imports them (the CLI only inside its
``keys`` command), they import no server framework at import time, and nothing else imports one."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import memory_plugin

PACKAGE = Path(memory_plugin.__file__).parent
OUTER = ("server", "compat")
FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
# The HTTP app itself (with the console it mounts) and what builds and runs it: the only modules that import the
# server framework.
WEB_APP_MODULES = frozenset({"memory_plugin.server.app", "memory_plugin.server.console", "memory_plugin.server.serve"})


def _imports(node: ast.AST) -> list[str]:
    """Absolute-ish names of what an import statement imports (relative ones keep their dots)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = "." * node.level + (node.module or "")
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return []


def _core_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] not in OUTER]


def _names_outer(name: str) -> bool:
    """True for ``.server...``, ``..compat...``, ``memory_plugin.server...`` and the like."""
    relative = name.startswith(".")
    parts = name.lstrip(".").split(".")
    if not relative:
        if parts[0] != "memory_plugin":
            return False
        parts = parts[1:]
    return bool(parts) and parts[0] in OUTER


def test_the_core_never_imports_server_or_compat_at_module_level() -> None:
    for path in _core_files():
        tree = ast.parse(path.read_text(), str(path))
        top_level = [name for node in tree.body for name in _imports(node)]
        assert not [name for name in top_level if _names_outer(name)], path
        nested = [name for node in ast.walk(tree) for name in _imports(node) if _names_outer(name)]
        assert not nested or path.name == "cli.py", f"{path} imports {nested}"


def test_no_server_framework_outside_server_and_compat() -> None:
    """The core imports no server framework; httpx only in the remote client, when it is first used."""
    for path in _core_files():
        tree = ast.parse(path.read_text(), str(path))
        names = [name for node in ast.walk(tree) for name in _imports(node)]
        assert not [n for n in names if n.split(".")[0] in FRAMEWORKS], path
        if path.name != "remote.py":
            assert "httpx" not in [n.split(".")[0] for n in names], path
        top_level = [name for node in tree.body for name in _imports(node)]
        assert "httpx" not in [n.split(".")[0] for n in top_level], path


def test_importing_everything_loads_no_server_framework() -> None:
    modules = sorted(
        name
        for folder in OUTER
        for p in (PACKAGE / folder).rglob("*.py")
        if (name := "memory_plugin." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__"))
        not in WEB_APP_MODULES
    )
    code = (
        "import sys, memory_plugin, memory_plugin.cli\n"
        "assert not [m for m in sys.modules if m.startswith(('memory_plugin.server', 'memory_plugin.compat'))]\n"
        f"for name in {modules!r}: __import__(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"

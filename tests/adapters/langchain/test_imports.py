"""Optional dependencies: the core imports no framework; the adapter package names the extra to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; ``sys.modules[name] = None`` there makes ``import name`` fail."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_without_langchain_the_adapter_package_names_the_extra() -> None:
    result = python(
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"
        "import memory_plugin\n"
        "try:\n"
        "    import langchain_memory_plugin\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "install memory-plugin[langchain]" in result.stdout and "(langchain_core" in result.stdout


def test_frameworks_are_imported_only_where_and_when_needed() -> None:
    result = python(
        "import sys\n"
        "sys.modules['langchain_classic'] = None\n"
        "import memory_plugin\n"
        "print(sorted(m for m in ('langchain', 'langchain_core', 'langgraph') if m in sys.modules))\n"
        "import langchain_memory_plugin\n"
        "from langchain_memory_plugin import MemoryMiddleware, MemoryPluginStore\n"
        "print('adapters ok')\n"
        "try:\n"
        "    from langchain_memory_plugin import MemoryPluginMemory\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[]",
        "adapters ok",
        "MemoryPluginMemory needs langchain-classic: install memory-plugin[langchain-classic]",
    ]

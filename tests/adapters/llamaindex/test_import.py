"""Without llama-index-core, importing the adapter package says which extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest


def test_import_without_llama_index_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        n for n in sys.modules if n == "llama_index_memory_plugin" or n.startswith("llama_index_memory_plugin.")
    ]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    monkeypatch.setitem(sys.modules, "llama_index.core", None)  # what an environment without it looks like
    with pytest.raises(ImportError, match=r"memory-plugin\[llamaindex\]"):
        importlib.import_module("llama_index_memory_plugin")


def test_public_names() -> None:
    import llama_index_memory_plugin

    assert llama_index_memory_plugin.__all__ == ["MemoryPluginBlock", "MemoryPluginMemory", "MemoryPluginRetriever"]

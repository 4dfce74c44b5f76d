"""LlamaIndex adapters for memory_plugin (install ``memory-plugin[llamaindex]``).

- :class:`MemoryPluginMemory`: a ``BaseMemory`` for chat engines and agents; writes every turn, recalls long-term
  memories from earlier runs before each answer.
- :class:`MemoryPluginBlock`: a ``BaseMemoryBlock`` for LlamaIndex's ``Memory``.
- :class:`MemoryPluginRetriever`: a ``BaseRetriever`` returning memories as ``NodeWithScore``.

>>> from llama_index_memory_plugin import MemoryPluginMemory
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as e:
    raise ImportError(
        "llama_index_memory_plugin needs llama-index-core 0.14: install memory-plugin[llamaindex] "
        '(pip install "memory-plugin[llamaindex]")'
    ) from e

from .block import MemoryPluginBlock
from .memory import MemoryPluginMemory
from .retriever import MemoryPluginRetriever

__all__ = ["MemoryPluginBlock", "MemoryPluginMemory", "MemoryPluginRetriever"]

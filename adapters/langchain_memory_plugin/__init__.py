"""LangChain adapters for memory_plugin (install ``memory-plugin[langchain]``).

==============================  ===========================================================================
``MemoryMiddleware``            ``create_agent`` middleware: recall into the system prompt, auto-write turns
``create_memory_tools``         ``save_memory`` / ``search_memories`` / ``update_memory`` / ``delete_memory``
``MemoryRetriever``             a ``BaseRetriever``: memories as ``Document``s for LCEL chains
``MemoryPluginStore``           a LangGraph ``BaseStore``: namespaces mapped onto scopes
``MemoryChatMessageHistory``    a ``BaseChatMessageHistory``: the short-term messages of one scope
``MemoryPluginMemory``          a langchain-classic ``BaseMemory`` (``memory-plugin[langchain-classic]``)
==============================  ===========================================================================

The adapters only translate between LangChain types and the public ``MemoryStore`` / ``AsyncMemoryStore`` API.

>>> from langchain_memory_plugin import MemoryMiddleware
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import langchain.agents  # noqa: F401
    import langchain_core.messages  # noqa: F401
    import langgraph.store.base  # noqa: F401
except ImportError as e:
    raise ImportError(
        f"langchain_memory_plugin needs LangChain 1.x, langchain-core and langgraph ({e.name} is missing): "
        "install memory-plugin[langchain]"
    ) from e

from memory_plugin.binding import RecallOptions

from ._recall import format_memories
from .history import MemoryChatMessageHistory
from .middleware import MemoryMiddleware, MemoryState
from .retriever import MemoryRetriever, to_document
from .store import MemoryPluginStore
from .tools import create_memory_tools

if TYPE_CHECKING:
    from .classic import MemoryPluginMemory

__all__ = [
    "MemoryChatMessageHistory",
    "MemoryMiddleware",
    "MemoryPluginMemory",
    "MemoryPluginStore",
    "MemoryRetriever",
    "MemoryState",
    "RecallOptions",
    "create_memory_tools",
    "format_memories",
    "to_document",
]


def __getattr__(name: str) -> Any:
    # langchain-classic is a separate extra: import it only when its adapter is asked for.
    if name == "MemoryPluginMemory":
        from .classic import MemoryPluginMemory

        return MemoryPluginMemory
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

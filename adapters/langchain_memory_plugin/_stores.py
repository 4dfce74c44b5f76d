"""The engine store an adapter talks to: adapters accept a :class:`~memory_plugin.MemoryStore` or an
:class:`~memory_plugin.AsyncMemoryStore` and use the sync one in sync hooks and the async one in async hooks
(see :func:`memory_plugin.binding.store_views`)."""

from __future__ import annotations

from memory_plugin import AsyncMemoryStore, MemoryStore
from memory_plugin.binding import StoreLike, store_views

__all__ = ["StoreLike", "async_store", "sync_store"]


def sync_store(store: StoreLike) -> MemoryStore:
    """The sync API of ``store``.

    Raises:
        TypeError: ``store`` is not a memory store.
    """
    return store_views(store)[0]


def async_store(store: StoreLike) -> AsyncMemoryStore:
    """The async API of ``store`` (the same store, awaited)."""
    return store_views(store)[1]

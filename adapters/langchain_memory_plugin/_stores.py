"""The engine store an adapter talks to: adapters accept a :class:`~memory_plugin.MemoryStore` or an
:class:`~memory_plugin.AsyncMemoryStore` and use the sync one in sync hooks and the async one in async hooks."""

from __future__ import annotations

from typing import Union

from memory_plugin import AsyncMemoryStore, MemoryStore

StoreLike = Union[MemoryStore, AsyncMemoryStore]


def sync_store(store: StoreLike) -> MemoryStore:
    """The sync API of ``store``.

    Raises:
        TypeError: ``store`` is not a memory store.
    """
    if isinstance(store, AsyncMemoryStore):
        return store.sync
    if isinstance(store, MemoryStore):
        return store
    raise TypeError(
        f"expected a memory_plugin MemoryStore or AsyncMemoryStore, got {type(store).__name__}; "
        "get one with MemoryClient(...).get_memory_store(name)"
    )


def async_store(store: StoreLike) -> AsyncMemoryStore:
    """The async API of ``store`` (the same store, awaited)."""
    return store if isinstance(store, AsyncMemoryStore) else AsyncMemoryStore(sync_store(store))

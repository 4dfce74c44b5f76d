"""What the framework adapters bind to, in one place for all of them: a memory store (its sync and async views)
and the scopes a call writes to and reads from. Framework-neutral: the adapters translate framework types; the
rules of which store and scope a call uses live here."""

from __future__ import annotations

from typing import Union

from .aio import AsyncMemoryClient, AsyncMemoryStore
from .client import MemoryClient, MemoryStore

StoreLike = Union[MemoryStore, AsyncMemoryStore]


def store_views(store: object, owner: str = "store") -> tuple[MemoryStore, AsyncMemoryStore]:
    """The sync and the async API of one memory store, from either of them: the same store reached two ways
    (sync hooks use the first, async hooks the second).

    Raises:
        TypeError: ``store`` is not a memory store (e.g. a client was passed instead); the message names ``owner``.
    """
    if isinstance(store, MemoryStore):
        return store, AsyncMemoryStore(store.transport.twin(), store.name)
    if isinstance(store, AsyncMemoryStore):
        return MemoryStore(store.transport.twin(), store.name), store
    hint = ""
    if isinstance(store, (MemoryClient, AsyncMemoryClient)):
        hint = "; a client holds stores: pass client.get_memory_store(name) or client.create_memory_store(name)"
    raise TypeError(
        f"{owner}: store must be a memory_plugin MemoryStore or AsyncMemoryStore, got {type(store).__name__}{hint}"
    )

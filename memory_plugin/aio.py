"""The async API: :class:`AsyncMemoryClient` and :class:`AsyncMemoryStore`, the same methods awaited.

Storage and embedding are blocking work, so each call runs the sync method on a worker thread
(``asyncio.to_thread``); the event loop is never blocked and the two APIs cannot drift apart.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from .client import MemoryClient, MemoryStore, ScopeLike, TimeLike
from .extraction import Extractor
from .models import (
    AddResult,
    DeleteAllResult,
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Metadata,
    Page,
    PruneResult,
    RequestRecord,
    SearchResults,
)


class AsyncMemoryStore:
    """Awaitable twin of :class:`MemoryStore`; see it for each method's contract."""

    def __init__(self, store: MemoryStore) -> None:
        self.sync = store

    @property
    def name(self) -> str:
        return self.sync.name

    async def info(self) -> MemoryStoreInfo:
        return await asyncio.to_thread(lambda: self.sync.info)

    async def add(
        self,
        scope: ScopeLike,
        *,
        messages: Sequence[Any] | None = None,
        text: str | None = None,
        metadata: Metadata | None = None,
        sync: bool = True,
        timestamp: TimeLike | None = None,
        idempotency_key: str | None = None,
    ) -> AddResult:
        """See :meth:`MemoryStore.add`. Cancelling the ``await`` does not stop a write that has started on its
        worker thread: retry with the same ``idempotency_key`` to be sure it is applied exactly once."""
        return await asyncio.to_thread(
            self.sync.add,
            scope,
            messages=messages,
            text=text,
            metadata=metadata,
            sync=sync,
            timestamp=timestamp,
            idempotency_key=idempotency_key,
        )

    async def search(
        self,
        scope: ScopeLike,
        query: str,
        *,
        top_k: int = 10,
        rerank: bool = True,
        memory_types: str | Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        start_time: TimeLike | None = None,
        end_time: TimeLike | None = None,
    ) -> SearchResults:
        return await asyncio.to_thread(
            self.sync.search,
            scope,
            query,
            top_k=top_k,
            rerank=rerank,
            memory_types=memory_types,
            filters=filters,
            start_time=start_time,
            end_time=end_time,
        )

    async def list(
        self,
        scope: ScopeLike,
        *,
        limit: int = 20,
        cursor: str | None = None,
        memory_types: str | Sequence[str] | None = None,
        filters: Mapping[str, Any] | None = None,
        start_time: TimeLike | None = None,
        end_time: TimeLike | None = None,
    ) -> Page[Memory]:
        return await asyncio.to_thread(
            self.sync.list,
            scope,
            limit=limit,
            cursor=cursor,
            memory_types=memory_types,
            filters=filters,
            start_time=start_time,
            end_time=end_time,
        )

    async def get(self, scope: ScopeLike, memory_id: str) -> Memory:
        return await asyncio.to_thread(self.sync.get, scope, memory_id)

    async def update(
        self, scope: ScopeLike, memory_id: str, *, text: str | None = None, metadata: Metadata | None = None
    ) -> Memory:
        return await asyncio.to_thread(self.sync.update, scope, memory_id, text=text, metadata=metadata)

    async def delete(self, scope: ScopeLike, memory_id: str) -> None:
        await asyncio.to_thread(self.sync.delete, scope, memory_id)

    async def history(self, scope: ScopeLike, memory_id: str) -> builtins.list[HistoryEvent]:
        return await asyncio.to_thread(self.sync.history, scope, memory_id)

    async def messages(self, scope: ScopeLike, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        return await asyncio.to_thread(self.sync.messages, scope, limit=limit, cursor=cursor)

    async def clear_messages(self, scope: ScopeLike) -> int:
        return await asyncio.to_thread(self.sync.clear_messages, scope)

    async def delete_all(self, scope: ScopeLike) -> DeleteAllResult:
        return await asyncio.to_thread(self.sync.delete_all, scope)

    async def prune(self) -> PruneResult:
        return await asyncio.to_thread(self.sync.prune)

    async def requests(
        self, scope: ScopeLike, *, operation: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[RequestRecord]:
        return await asyncio.to_thread(self.sync.requests, scope, operation=operation, limit=limit, cursor=cursor)

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.sync.flush, timeout)

    async def extraction_status(self) -> builtins.list[ExtractionJob]:
        return await asyncio.to_thread(self.sync.extraction_status)

    async def retry_failed(self) -> int:
        return await asyncio.to_thread(self.sync.retry_failed)

    def __repr__(self) -> str:
        return f"AsyncMemoryStore(name={self.name!r})"


class AsyncMemoryClient:
    """Awaitable twin of :class:`MemoryClient`; use as ``async with AsyncMemoryClient(path=...) as client``."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, embedder: object = None, extractor: Extractor | None = None
    ) -> None:
        self.sync = MemoryClient(path, embedder=embedder, extractor=extractor)

    async def create_memory_store(
        self,
        name: str,
        description: str = "",
        *,
        embedder: object = None,
        extractor: Extractor | None = None,
        audit_retention_days: int | None = None,
        history_retention_days: int | None = None,
    ) -> AsyncMemoryStore:
        store = await asyncio.to_thread(
            self.sync.create_memory_store,
            name,
            description,
            embedder=embedder,
            extractor=extractor,
            audit_retention_days=audit_retention_days,
            history_retention_days=history_retention_days,
        )
        return AsyncMemoryStore(store)

    async def get_memory_store(
        self, name: str, *, embedder: object = None, extractor: Extractor | None = None
    ) -> AsyncMemoryStore:
        store = await asyncio.to_thread(self.sync.get_memory_store, name, embedder=embedder, extractor=extractor)
        return AsyncMemoryStore(store)

    async def get_or_create_memory_store(
        self, name: str, description: str = "", *, embedder: object = None, extractor: Extractor | None = None
    ) -> AsyncMemoryStore:
        store = await asyncio.to_thread(
            self.sync.get_or_create_memory_store, name, description, embedder=embedder, extractor=extractor
        )
        return AsyncMemoryStore(store)

    async def update_memory_store(self, name: str, **changes: Any) -> MemoryStoreInfo:
        return await asyncio.to_thread(self.sync.update_memory_store, name, **changes)

    async def list_memory_stores(self) -> builtins.list[MemoryStoreInfo]:
        return await asyncio.to_thread(self.sync.list_memory_stores)

    async def delete_memory_store(self, name: str) -> None:
        await asyncio.to_thread(self.sync.delete_memory_store, name)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncMemoryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

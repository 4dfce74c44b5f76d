"""The public sync API: :class:`MemoryClient` and :class:`MemoryStore`, thin shells over a transport.

Each method sends one operation (:mod:`memory_plugin.ops`) through the client's transport and returns its result;
the service behind it holds every rule. This file is also the source of the async API: ``aio.py`` is generated
from it (``python scripts/generate_async_client.py``), so a signature is written once.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Union

from . import ops
from .errors import MemoryStoreExistsError, MemoryStoreNotFoundError
from .extraction import Extractor
from .models import (
    ActivityBucket,
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
    ScopeSummary,
    SearchResults,
    StoreStats,
)
from .scope import Scope
from .settings import Settings
from .transport import Transport, connect

R = TypeVar("R")
ScopeLike = Union[Scope, Mapping[str, Any], str]
TimeLike = Union[datetime, str, int, float]


class MemoryStore:
    """A named memory store. Get one from :meth:`MemoryClient.create_memory_store` or
    :meth:`MemoryClient.get_memory_store`; every method records an audit entry (see :meth:`requests`)."""

    def __init__(self, transport: Transport, name: str) -> None:
        self._transport = transport
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def transport(self) -> Transport:
        """How this store reaches its service (``transport.twin()`` reaches the same service the other way)."""
        return self._transport

    def _call(self, op: type[ops.Operation[R]], **raw: Any) -> R:
        return self._transport.call(op, {"store": self._name, **raw})

    def info(self) -> MemoryStoreInfo:
        """Name, description, embedder name and dimension, creation time, retention settings."""
        return self._transport.call(ops.GetStore, {"name": self._name})

    def add(
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
        """Remember a conversation (``messages=``) or a pre-digested ``text=``; exactly one of them.

        Messages are ``{"role", "content"}`` dicts (optional ``name``, ``timestamp``, ``metadata``) or LangChain /
        LlamaIndex message objects, roles user/assistant/system/tool; they are kept in order as short-term messages
        of ``scope``, and long-term memories are extracted from them. ``sync=True`` extracts before returning;
        ``sync=False`` returns once the messages are durably stored and extracts in the background
        (:meth:`flush` waits). ``timestamp`` (default now) is when this happened.

        The call is committed, all or nothing, in one transaction just before it returns. A call that was cut off
        (a lost connection, a cancelled ``await`` of the async client, a timeout) may or may not have been
        committed: retry it with the same ``idempotency_key`` and it is applied exactly once; the retry returns
        the first call's result. Keys are kept per tenant for 7 days.

        Args:
            scope: a concrete scope (four ids, no ``"*"``).
            metadata: flat scalars kept on every memory made from this call.
            idempotency_key: 1-128 characters naming this request; the same key with other content is refused.

        Returns:
            :class:`AddResult` with the memories made, the message ids and whether extraction is pending.

        Raises:
            InvalidScopeError, InvalidArgumentError: bad input; nothing is written.
            EmbeddingError, ExtractionError: the embedder or extractor failed; nothing is written.

        Example:
            >>> store.add(scope, messages=[{"role": "user", "content": "I like coffee"}])  # doctest: +SKIP
        """
        return self._call(
            ops.Add, scope=scope, messages=messages, text=text, metadata=metadata, sync=sync, timestamp=timestamp,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def search(
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
        explain: bool = False,
    ) -> SearchResults:
        """Find the memories most relevant to ``query`` within ``scope`` (``"*"`` and id lists allowed).

        Hybrid: semantic kNN and BM25, both restricted to the scope and filters, fused; ``rerank`` also weighs how far
        each hit is behind the best one. Returns :class:`SearchResults` (a list of :class:`SearchHit`, best first,
        scores in ``[0, 1]`` as documented in :mod:`memory_plugin.retrieval`) with ``request_id`` and ``usage``.

        Args:
            top_k: 1-50. memory_types: a type or list of types. filters: ``{key: value or [values]}`` on metadata.
            start_time / end_time: bounds on each memory's ``event_time`` (inclusive).
            explain: give each hit the ``signals`` behind its score (why it ranked where it did).

        Example:
            >>> hits = store.search(scope.with_(run_id="*"), "what does the user drink?", top_k=5)  # doctest: +SKIP
        """
        return self._call(
            ops.Search, scope=scope, query=query, top_k=top_k, rerank=rerank, memory_types=memory_types,
            filters=filters, start_time=start_time, end_time=end_time, explain=explain,
        )  # fmt: skip

    def list(
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
        """Memories in ``scope``, oldest first, ``limit`` (1-100) per page; pass ``next_cursor`` for the next page.
        Pages never repeat or skip a memory."""
        return self._call(
            ops.ListMemories, scope=scope, limit=limit, cursor=cursor, memory_types=memory_types, filters=filters,
            start_time=start_time, end_time=end_time,
        )  # fmt: skip

    def get(self, scope: ScopeLike, memory_id: str) -> Memory:
        """One memory by id. Raises :class:`MemoryNotFoundError` if it is not in this concrete ``scope``."""
        return self._call(ops.GetMemory, scope=scope, memory_id=memory_id)

    def update(
        self, scope: ScopeLike, memory_id: str, *, text: str | None = None, metadata: Metadata | None = None
    ) -> Memory:
        """Change a memory's text (re-embedded) and/or replace its metadata; the id stays. History records it."""
        return self._call(ops.UpdateMemory, scope=scope, memory_id=memory_id, text=text, metadata=metadata)

    def delete(self, scope: ScopeLike, memory_id: str) -> None:
        """Delete one memory of this concrete ``scope``; its history stays readable."""
        self._call(ops.DeleteMemory, scope=scope, memory_id=memory_id)

    def history(self, scope: ScopeLike, memory_id: str) -> builtins.list[HistoryEvent]:
        """What happened to one memory (created / updated / deleted with old and new values), oldest first."""
        return self._call(ops.GetHistory, scope=scope, memory_id=memory_id)

    def messages(self, scope: ScopeLike, *, limit: int = 100, cursor: str | None = None) -> Page[Message]:
        """Short-term memory: the raw messages of one concrete ``scope``, oldest first."""
        return self._call(ops.ListMessages, scope=scope, limit=limit, cursor=cursor)

    def clear_messages(self, scope: ScopeLike) -> int:
        """Delete the short-term messages of one concrete ``scope`` (e.g. when a chat history is cleared).

        Long-term memories already made from them stay (their ``source_message_ids`` then point at deleted
        messages); background extraction that has not started for them makes nothing. Returns the number deleted.
        """
        return self._call(ops.DeleteMessages, scope=scope)

    def delete_all(self, scope: ScopeLike) -> DeleteAllResult:
        """Forget everything of one tenant: its memories, their history, its raw messages and pending extraction
        jobs (and their entries in the vector index), in one transaction, e.g. to honour a user's request to be
        forgotten. ``scope`` names one concrete tenant; ``agent_id`` and ``run_id`` may be ``"*"`` or id lists to
        erase less. Deleted content is overwritten in the record file. The audit keeps one ``DeleteAll`` record
        with the counts (the audit holds ids and counts, never content).

        Example:
            >>> store.delete_all(Scope("app-001", "user-001", "*", "*"))  # doctest: +SKIP
            DeleteAllResult(memories=12, history=14, messages=30, jobs=0, request_id='req_...')
        """
        return self._call(ops.DeleteAll, scope=scope)

    def prune(self) -> PruneResult:
        """Delete what is older than the store's retention settings (``audit_retention_days``,
        ``history_retention_days``, see :meth:`MemoryClient.update_memory_store`) and idempotency keys older than
        7 days. The background worker also prunes about once an hour; call this to prune now."""
        return self._call(ops.PruneStore)

    def requests(
        self,
        scope: ScopeLike,
        *,
        operation: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        outcome: str | None = None,
        key_id: str | None = None,
    ) -> Page[RequestRecord]:
        """The audit: one record per call on this store, newest first, for a read ``scope`` and optional
        ``operation`` (``AddMemories``, ``SearchMemories``, ``ListMemories``, ``GetMemory``, ...), ``outcome``
        (``"ok"``, ``"error"`` for any failure, or an error class name) and ``key_id`` (the access key that made the
        calls through a memory server).

        Each background extraction is recorded as ``ExtractMemories`` under the request id of the ``AddMemories``
        call that queued it (with its token usage when the LLM reports it). Store-level calls that have no scope
        (``Flush``, ``ListExtractionJobs``, ``RetryExtraction``) appear in every listing."""
        return self._call(
            ops.ListRequests, scope=scope, operation=operation, limit=limit, cursor=cursor, outcome=outcome,
            key_id=key_id,
        )  # fmt: skip

    def scopes(
        self, scope: ScopeLike, *, level: str = "tenant_id", limit: int = 50, cursor: str | None = None
    ) -> Page[ScopeSummary]:
        """The distinct tenants, agents or runs (``level``: ``tenant_id``, ``agent_id`` or ``run_id``) inside a read
        ``scope``, in id order, with how many memories and raw messages each holds and when it was last written.

        Example:
            >>> store.scopes(Scope("app-001", "*", "*", "*")).items  # the app's tenants  # doctest: +SKIP
            >>> store.scopes(Scope("app-001", "user-001", "*", "*"), level="run_id").items  # doctest: +SKIP
        """
        return self._call(ops.ListScopes, scope=scope, level=level, limit=limit, cursor=cursor)

    def stats(self, scope: ScopeLike) -> StoreStats:
        """Counts over a read ``scope``: memories (and by type), raw messages, tenants, extraction jobs by state."""
        return self._call(ops.StoreStats, scope=scope)

    def activity(self, scope: ScopeLike, *, minutes: int = 60) -> builtins.list[ActivityBucket]:
        """The audited calls of a read ``scope`` per minute over the last ``minutes`` (1-1440): counts, errors,
        latency p50/p95, calls per operation; minutes without calls are left out."""
        return self._call(ops.ActivityStats, scope=scope, minutes=minutes)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for this store's background extraction; returns False if ``timeout`` seconds passed first."""
        return self._call(ops.Flush, timeout=timeout)

    def extraction_status(self) -> builtins.list[ExtractionJob]:
        """Background extraction jobs not finished yet, oldest first: ``pending``, ``running``, or ``failed``
        (after its retries, with ``error`` and the LLM's ``raw_output``). Their raw messages are stored either way.

        Example:
            >>> failed = [job for job in store.extraction_status() if job.state == "failed"]
        """
        return self._call(ops.ListExtractionJobs)

    def retry_failed(self) -> int:
        """Queue failed extraction jobs again (e.g. after fixing the LLM's configuration); returns how many.
        ``flush()`` waits for them."""
        return self._call(ops.RetryExtraction)

    def __eq__(self, other: object) -> bool:
        """Two store objects are equal when they reach the same store of the same deployment."""
        if not isinstance(other, MemoryStore):
            return NotImplemented
        return (other.transport.location, other.name) == (self._transport.location, self._name)

    def __hash__(self) -> int:
        return hash((self._transport.location, self._name))

    def __repr__(self) -> str:
        return f"MemoryStore(name={self.name!r})"


class MemoryClient:
    """Memory stores in one data folder embedded in this process, or on a memory server (``endpoint=``).

    Args:
        path: the data folder (default ``$MEMORY_PLUGIN_HOME`` or ``./.memory_plugin``). One process owns it.
        endpoint: a memory server's URL (``memory-plugin serve``), e.g. ``http://127.0.0.1:8080``; default
            ``$MEMORY_PLUGIN_ENDPOINT`` when no ``path`` is given. The same API, over HTTP: many processes (a web
            app's workers) share one memory.
        access_key_id, access_key_secret: the access key for ``endpoint`` (``memory-plugin keys create``);
            default ``$MEMORY_PLUGIN_ACCESS_KEY_ID`` / ``$MEMORY_PLUGIN_ACCESS_KEY_SECRET``.
        database, index: a PostgreSQL database (``postgresql://user@host:5432/dbname``) and a Chroma server
            (``http://host:8000``) instead of a data folder: the scaled-out deployment, in this process, without a
            memory server (``memory-plugin[postgres]``). Any number of processes may use them at once.
        embedder: default embedder for stores (``None``: local all-MiniLM-L6-v2; or a LangChain ``Embeddings``,
            LlamaIndex ``BaseEmbedding``, Chroma ``EmbeddingFunction``, callable, or :class:`Embedder`). Embedded
            only: a server's stores run with the server's configuration.
        extractor: default :class:`Extractor` (``None``: one memory per user/assistant turn, no LLM). Embedded only.
        settings: engine :class:`Settings`. Embedded only.
        timeout: seconds a call to a memory server may take (``flush`` waits its own timeout on top).

    Raises:
        StoreLockedError: another process (or client) holds the folder.
        InvalidArgumentError: both a path and an endpoint, a bad endpoint, or a missing access key.

    Example:
        >>> with MemoryClient(path="./agent-memory") as client:  # doctest: +SKIP
        ...     store = client.create_memory_store("agent_memory", description="Agent long-term memory")
        >>> remote = MemoryClient(endpoint="http://127.0.0.1:8080", access_key_id="mpk_...",
        ...                       access_key_secret="...")  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        database: str | None = None,
        index: str | None = None,
        embedder: object = None,
        extractor: Extractor | None = None,
        settings: Settings | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._transport: Transport = connect(
            path, endpoint=endpoint, access_key_id=access_key_id, access_key_secret=access_key_secret,
            database=database, index=index, embedder=embedder, extractor=extractor, settings=settings,
            timeout=timeout,
        )  # fmt: skip

    @property
    def path(self) -> Path:
        """Where this client's memory lives: its data folder (or, for a remote client, the server's URL)."""
        return Path(self._transport.location)

    @property
    def location(self) -> str:
        """The data folder, or the memory server's URL."""
        return self._transport.location

    @property
    def transport(self) -> Transport:
        return self._transport

    def create_memory_store(
        self,
        name: str,
        description: str = "",
        *,
        embedder: object = None,
        extractor: Extractor | None = None,
        audit_retention_days: int | None = None,
        history_retention_days: int | None = None,
    ) -> MemoryStore:
        """Create a store (``MemoryStoreExistsError`` if the name is taken). It records its embedder's name and
        dimension and refuses another embedder later (``EmbeddingMismatchError``). Audit records and history
        events are kept forever unless ``audit_retention_days`` / ``history_retention_days`` say otherwise."""
        raw = {
            "name": name,
            "description": description,
            "audit_retention_days": audit_retention_days,
            "history_retention_days": history_retention_days,
        }
        info = self._transport.create_store(raw, embedder, extractor)
        return MemoryStore(self._transport, info.name)

    def get_memory_store(
        self, name: str, *, embedder: object = None, extractor: Extractor | None = None
    ) -> MemoryStore:
        """Open an existing store (``MemoryStoreNotFoundError`` if absent); resumes its pending background work.
        A store already open in this client keeps its extractor: without ``extractor=`` you get it as it is, and a
        different ``extractor=`` is refused (``InvalidArgumentError``) rather than swapped in under queued jobs."""
        info = self._transport.open_store(name, embedder, extractor)
        return MemoryStore(self._transport, info.name)

    def get_or_create_memory_store(
        self, name: str, description: str = "", *, embedder: object = None, extractor: Extractor | None = None
    ) -> MemoryStore:
        """Open the store ``name``, creating it first if it does not exist (re-runnable set-up code)."""
        try:
            return self.get_memory_store(name, embedder=embedder, extractor=extractor)
        except MemoryStoreNotFoundError:
            try:
                return self.create_memory_store(name, description, embedder=embedder, extractor=extractor)
            except MemoryStoreExistsError:  # created meanwhile by another thread
                return self.get_memory_store(name, embedder=embedder, extractor=extractor)

    def update_memory_store(self, name: str, **changes: Any) -> MemoryStoreInfo:
        """Change a store's ``description``, ``audit_retention_days`` or ``history_retention_days`` (whole days,
        ``None`` to keep forever); settings not named stay as they are. Returns the store's new info.

        Example:
            >>> client.update_memory_store("agent_memory", audit_retention_days=90)  # doctest: +SKIP
        """
        return self._transport.call(ops.UpdateStore, {"name": name, "changes": changes})

    def list_memory_stores(self) -> builtins.list[MemoryStoreInfo]:
        """Every store of this client's deployment, by name."""
        return self._transport.call(ops.ListStores, {})

    def delete_memory_store(self, name: str) -> None:
        """Delete a store with all its memories, messages, history and audit."""
        self._transport.call(ops.DeleteStore, {"name": name})

    def close(self) -> None:
        """Finish cleanly and release the data folder. Pending background jobs stay stored and resume later.

        New calls are refused from here on (``ClientClosedError``); calls in flight on other threads are waited for
        (30 s at most). A process forked while a client is open cannot use it: open a new client in the child once
        the parent has closed its own."""
        self._transport.close()

    def __enter__(self) -> MemoryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

"""Values the public API returns. All are immutable pydantic models (``model_dump()`` gives plain data)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Generic, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field

from .scope import Scope

MetadataValue = Union[str, int, float, bool]
Metadata = dict[str, MetadataValue]
Role = Literal["user", "assistant", "system", "tool"]
ROLES: tuple[str, ...] = ("user", "assistant", "system", "tool")

T = TypeVar("T")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class Memory(_Frozen):
    """One long-term memory.

    Attributes:
        id: stable id; an update keeps it.
        text: what is remembered.
        scope: the concrete scope it belongs to.
        memory_type: e.g. ``message`` (a conversation turn), ``fact``, ``event``, ``profile``.
        speaker: who said it (the ``name`` of the message it was made from, else its role), if known.
        metadata: flat scalar metadata given when it was written.
        created_at / updated_at: when it was stored / last changed (UTC).
        event_time: when the remembered thing happened (UTC): the message time, or the write time.
        source_message_ids: the short-term messages it was made from, if any.
    """

    id: str
    text: str
    scope: Scope
    memory_type: str
    speaker: str | None = None
    metadata: Metadata = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    event_time: datetime
    source_message_ids: list[str] = Field(default_factory=list)


class SearchHit(_Frozen):
    """A memory found by :meth:`MemoryStore.search` and its relevance ``score``.

    Score contract: ``score`` is in ``[0, 1]``, higher is more relevant, and is comparable across queries and
    stores built with the same embedder. See :mod:`memory_plugin.retrieval` for how it is computed.
    """

    memory: Memory
    score: float
    signals: dict[str, float] | None = None
    """With ``search(..., explain=True)``: the signals behind the score (``semantic``, ``lexical``, ``speaker``,
    ``date``, ...; see :mod:`memory_plugin.retrieval`), so a person can see why a memory ranked where it did."""


class Usage(_Frozen):
    """What a search cost: tokens in the query (as the embedder counts them) and candidates scored."""

    query_tokens: int
    candidates: int


class SearchResults(list[SearchHit]):
    """The hits of one search, best first (a ``list`` of :class:`SearchHit`), with ``request_id`` and ``usage``."""

    def __init__(self, hits: list[SearchHit], request_id: str, usage: Usage) -> None:
        super().__init__(hits)
        self.request_id = request_id
        self.usage = usage


class Message(_Frozen):
    """One raw conversation message kept as short-term memory of a concrete scope."""

    id: str
    scope: Scope
    role: Role
    content: str
    name: str | None = None
    timestamp: datetime
    metadata: Metadata = Field(default_factory=dict)


class AddResult(_Frozen):
    """What :meth:`MemoryStore.add` stored.

    ``memories`` are the long-term memories made now (empty when ``pending``: extraction runs in the background and
    :meth:`MemoryStore.flush` waits for it). ``message_ids`` are the raw messages kept, in order.
    """

    memories: list[Memory]
    message_ids: list[str]
    pending: bool
    request_id: str


class HistoryEvent(_Frozen):
    """One event of a memory: ``created``, ``updated``, ``unchanged`` (new messages were judged to add nothing to
    it) or ``deleted``, with the values before and after, and the raw messages that caused it
    (``source_message_ids``, empty for direct API calls)."""

    memory_id: str
    event: Literal["created", "updated", "unchanged", "deleted"]
    old_text: str | None = None
    new_text: str | None = None
    old_metadata: Metadata | None = None
    new_metadata: Metadata | None = None
    time: datetime
    request_id: str
    source_message_ids: list[str] = Field(default_factory=list)


class ExtractionJob(_Frozen):
    """A background extraction job that has not finished (see :meth:`MemoryStore.extraction_status`).

    ``state`` is ``pending``, ``running`` or ``failed``; ``error`` is the last failure, ``raw_output`` the start
    of what the LLM answered when its output could not be used. The job's messages stay stored whatever happens.
    """

    job_id: int
    scope: Scope
    state: Literal["pending", "running", "failed"]
    attempts: int
    error: str | None = None
    raw_output: str | None = None
    message_ids: list[str] = Field(default_factory=list)
    request_id: str
    created_at: datetime


class RequestRecord(_Frozen):
    """The audit record of one public call on a memory store.

    ``outcome`` is ``"ok"`` or the error class name; ``scope`` is the scope as given (``None`` if it was
    unusable); ``counts`` holds figures such as ``memories``, ``messages``, ``hits``, ``items``; ``key_id`` is the
    access key that made the call through a memory server (``None`` for calls in the same process).
    """

    request_id: str
    operation: str
    scope: Scope | None
    outcome: str
    error: str | None = None
    latency_ms: float
    time: datetime
    counts: dict[str, int] = Field(default_factory=dict)
    key_id: str | None = None


class MemoryStoreInfo(_Frozen):
    """A memory store's description, the embedder that built it, and how long it keeps its audit records and
    memory history (``None``: forever; see :meth:`MemoryStore.prune`)."""

    name: str
    description: str
    embedder: str
    dimension: int
    created_at: datetime
    audit_retention_days: int | None = None
    history_retention_days: int | None = None


class DeleteAllResult(_Frozen):
    """What :meth:`MemoryStore.delete_all` erased: memories, history events, raw messages and extraction jobs."""

    memories: int
    history: int
    messages: int
    jobs: int
    request_id: str


class PruneResult(_Frozen):
    """What :meth:`MemoryStore.prune` removed: audit records and history events past the store's retention, and
    expired idempotency keys."""

    requests: int
    history: int
    idempotency_keys: int


class Page(BaseModel, Generic[T]):
    """One page of a listing. ``next_cursor`` is ``None`` on the last page; pass it back to get the next one."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    items: list[T]
    next_cursor: str | None = None


def every_page(read: Callable[[str | None], Page[T]]) -> Iterator[Page[T]]:
    """Every page of a listing, first to last, each read when it is asked for: ``read(cursor)`` returns the page
    after ``cursor`` (``None``: the first page).

    Example:
        >>> pages = every_page(lambda cursor: store.list(scope, limit=100, cursor=cursor))  # doctest: +SKIP
        >>> ids = [memory.id for page in pages for memory in page.items]  # doctest: +SKIP
    """
    cursor = None
    while True:
        page = read(cursor)
        yield page
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


class ScopeSummary(_Frozen):
    """One tenant, agent or run of a read scope (:meth:`MemoryStore.scopes`): its id, how many memories and raw
    messages it holds, and when it was last written to."""

    id: str
    memories: int
    messages: int
    last_active: datetime | None = None


class StoreStats(_Frozen):
    """Counts over a read scope of a store (:meth:`MemoryStore.stats`): memories (and by type), raw messages,
    tenants, and background extraction jobs by state."""

    memories: int
    messages: int
    tenants: int
    memory_types: dict[str, int] = Field(default_factory=dict)
    pending_jobs: int = 0
    running_jobs: int = 0
    failed_jobs: int = 0


class ActivityBucket(_Frozen):
    """The calls of one minute (:meth:`MemoryStore.activity`): how many, how many failed, their latency, and how
    many of each operation."""

    minute: datetime
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    operations: dict[str, int] = Field(default_factory=dict)

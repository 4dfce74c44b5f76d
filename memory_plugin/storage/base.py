"""The storage seam: what the service needs from a system of record, a job queue and a vector index.

The service holds every rule and no storage code; a backend implements these Protocols (``storage/sqlite`` with
``storage/chroma`` today). Values crossing the seam are the domain's own (:class:`~memory_plugin.scope.Scope`,
:class:`~memory_plugin.filters.ReadFilter`, :class:`~memory_plugin.models.Memory`) plus the few rows below.
Record positions (``int``) order memories, messages and audit records; cursors are positions.

Scores keep one scale on every backend: :meth:`RecordReader.keyword` returns BM25 (positive, larger is better) and
:meth:`RecordReader.nearest` cosine similarity of unit vectors, so the score contract does not depend on the
deployment.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ..filters import ReadFilter
from ..models import (
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Metadata,
    RequestRecord,
    ScopeSummary,
    StoreStats,
)
from ..scope import Scope

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class StoreRow:
    """A memory store as the record keeps it: its internal id and its public description."""

    id: int
    info: MemoryStoreInfo


@dataclass(frozen=True)
class MemoryRow:
    """A memory with what the record keeps beside it: its position, store, search context and embedding."""

    position: int
    store_id: int
    memory: Memory
    context: str
    embedding: Vector


@dataclass(frozen=True)
class CandidateRow:
    """What ranking reads of a memory a search found. A search weighs a few hundred candidates and returns a few
    of them, so only the hits become whole :class:`Memory` values (:meth:`RecordReader.rows`).

    ``event_time`` is in seconds since the epoch; ``embedding`` is the record's unit vector.
    """

    position: int
    text: str
    memory_type: str
    speaker: str | None
    event_time: float
    source_message_ids: list[str]
    embedding: Vector


@dataclass(frozen=True)
class NewMemoryRecord:
    """A memory to store (its id and times are given by the record)."""

    text: str
    memory_type: str
    metadata: Metadata
    event_time: datetime
    source_message_ids: Sequence[str]
    embedding: Vector
    speaker: str | None = None
    context: str = ""


@dataclass(frozen=True)
class AuditEntry:
    """One audit record to write. ``scope`` is ``None`` for store-level calls and unusable input."""

    request_id: str
    store_id: int
    operation: str
    scope: Scope | None
    outcome: str
    error: str | None
    latency_ms: float
    counts: Mapping[str, int]
    key_id: str | None = None


@dataclass(frozen=True)
class IndexChange:
    """An entry of the record's change log: a memory of a store changed (added, updated or deleted)."""

    position: int
    store_id: int
    memory_id: str


@dataclass(frozen=True)
class NewJob:
    """A background extraction to queue: the messages (or text) of one ``add`` call, and that call's request id."""

    scope: Scope
    message_ids: list[str]
    text: str | None
    metadata: Metadata
    timestamp: datetime
    request_id: str


@dataclass(frozen=True)
class Job(NewJob):
    """A background extraction job as the queue hands it out: where it stands in the queue, its store, how many
    attempts it has had, and the number of the claim it was handed out under (its fencing token: see
    :meth:`JobQueue.finish`)."""

    position: int
    store_id: int
    attempts: int
    lease: int = 0


@dataclass(frozen=True)
class Retention:
    """Cut-off times (Unix seconds) before which rows of each kind are pruned; ``None`` keeps them."""

    requests_before: float | None
    history_before: float | None
    idempotency_keys_before: float | None
    batch: int = 5000


@dataclass(frozen=True)
class PruneCounts:
    requests: int = 0
    history: int = 0
    idempotency_keys: int = 0

    def any(self) -> bool:
        return bool(self.requests or self.history or self.idempotency_keys)


@dataclass(frozen=True)
class ForgetCounts:
    memories: int = 0
    history: int = 0
    messages: int = 0
    jobs: int = 0
    forgotten_ids: list[str] = field(default_factory=list)


class RecordReader(Protocol):
    """Consistent reads: everything read through one reader comes from one snapshot."""

    # stores
    def store(self, name: str) -> StoreRow | None: ...
    def store_by_id(self, store_id: int) -> StoreRow | None: ...
    def stores(self) -> list[StoreRow]: ...

    # memories
    def memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        """The memory ``memory_id`` if it lies in the concrete ``scope``."""
        ...

    def tenant_memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        """The memory ``memory_id`` if it belongs to the app and tenant of ``scope`` (any agent and run)."""
        ...

    def memories(self, read: ReadFilter, after: int, limit: int) -> list[MemoryRow]:
        """Memories allowed by ``read`` at positions after ``after``, in position order."""
        ...

    def memories_by_id(self, memory_ids: Sequence[str]) -> dict[str, MemoryRow]: ...

    def store_memories(self, store_id: int, after: int, limit: int) -> list[MemoryRow]:
        """Every memory of a store at positions after ``after``, in position order (to rebuild an index)."""
        ...

    def count(self, read: ReadFilter, up_to: int) -> int:
        """How many memories ``read`` allows, counted up to ``up_to`` (a bounded count)."""
        ...

    def count_by_store(self) -> dict[int, int]: ...

    def nearest(
        self, read: ReadFilter, vector: Vector, k: int, scan_limit: int | None = None
    ) -> dict[int, float] | None:
        """Exact: the cosine of the ``k`` memories allowed by ``read`` most similar to ``vector``; ``None`` when
        answering would scan more than ``scan_limit`` memories from storage (an answer from memory has no limit)."""
        ...

    def keyword(self, read: ReadFilter, terms: Sequence[str], k: int) -> dict[int, float]:
        """BM25 (positive, larger is better) of the ``k`` best memories allowed by ``read`` matching any term."""
        ...

    def holding(self, terms: Sequence[str]) -> dict[str, int]:
        """How many memories of the whole record hold each of ``terms`` (the rows that count for its BM25 idf); a
        term the full-text index reads as a phrase is left out."""
        ...

    def keyword_of(self, read: ReadFilter, terms: Sequence[str], positions: Collection[int]) -> dict[int, float]:
        """BM25 of those of ``positions`` (allowed by ``read``) that match any term; the others are left out."""
        ...

    def inside(self, read: ReadFilter, positions: Collection[int]) -> set[int]:
        """Which of ``positions`` ``read`` allows."""
        ...

    def rows(self, read: ReadFilter, positions: Collection[int]) -> dict[int, MemoryRow]:
        """The memories at ``positions`` that ``read`` allows."""
        ...

    def candidates(self, read: ReadFilter, positions: Collection[int]) -> dict[int, CandidateRow]:
        """What ranking reads of the memories at ``positions`` that ``read`` allows."""
        ...

    # messages, history, audit
    def messages(self, store_id: int, scope: Scope, after: int, limit: int) -> list[tuple[int, Message]]: ...
    def recent_messages(self, store_id: int, scope: Scope, before: int | None, limit: int) -> list[Message]: ...
    def messages_by_id(self, message_ids: Sequence[str]) -> list[tuple[int, Message]]: ...
    def history(self, store_id: int, scope: Scope, memory_id: str) -> list[HistoryEvent]: ...
    def requests(
        self,
        store_id: int,
        scope: Scope,
        operation: str | None,
        before: int | None,
        limit: int,
        outcome: str | None = None,
        key_id: str | None = None,
    ) -> list[tuple[int, RequestRecord]]:
        """Audit records newest first: those of ``scope`` and the store-level ones (no scope); ``outcome`` is
        ``ok``, ``error`` (any failure) or an error class name."""
        ...

    def scopes(self, store_id: int, scope: Scope, level: str, after: str | None, limit: int) -> list[ScopeSummary]:
        """The distinct values of the ``level`` segment inside ``scope``, after ``after`` in id order, with the
        memories and messages each holds."""
        ...

    def stats(self, store_id: int, scope: Scope) -> StoreStats: ...
    def calls_since(self, store_id: int, scope: Scope, since: float) -> list[tuple[float, str, str, float]]:
        """(time, operation, outcome, latency ms) of the audited calls of ``scope`` since ``since``."""
        ...

    # background work
    def jobs(self, store_id: int) -> list[ExtractionJob]: ...
    def unfinished_jobs(self, store_id: int) -> int: ...
    def job_exists(self, position: int) -> bool: ...

    # idempotency keys, vector index bookkeeping
    def idempotent_result(self, store_id: int, scope: Scope, key: str) -> tuple[str, str] | None:
        """(fingerprint, result JSON) saved with ``key`` in the app and tenant of ``scope``."""
        ...

    def totals(self) -> dict[str, int]:
        """How many memories, messages, history events, audit records and jobs the record holds (diagnostics)."""
        ...

    def index_changes(self, after: int) -> list[IndexChange]: ...
    def last_index_change(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...


class RecordWriter(RecordReader, Protocol):
    """One write transaction: everything done through it commits together or not at all."""

    def create_store(
        self, name: str, description: str, embedder: str, dimension: int, audit_days: int | None,
        history_days: int | None,
    ) -> StoreRow: ...  # fmt: skip
    def update_store(self, store_id: int, changes: Mapping[str, str | int | None]) -> StoreRow: ...
    def delete_store(self, store_id: int) -> None:
        """Delete a store with its memories, messages, history, audit, jobs, keys and change-log entries."""
        ...

    def insert_messages(self, store_id: int, messages: Sequence[Message]) -> None: ...
    def insert_memory(self, store_id: int, scope: Scope, new: NewMemoryRecord, request_id: str) -> Memory:
        """Store a memory with its full-text entry, its ``created`` history event and a change-log entry."""
        ...

    def update_memory(
        self, row: MemoryRow, *, text: str | None, metadata: Metadata | None, event_time: datetime | None,
        embedding: Vector | None, request_id: str, source_message_ids: Sequence[str] = (),
    ) -> Memory: ...  # fmt: skip
    def note_unchanged(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str]) -> None: ...
    def delete_memory(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str] = ()) -> None: ...
    def delete_messages(self, store_id: int, scope: Scope) -> int: ...
    def forget(self, store_id: int, scope: Scope) -> ForgetCounts:
        """Erase every memory (with its full-text entry and history), message, job and idempotency key of
        ``scope``; the change log learns of the memories."""
        ...

    def prune(self, store_id: int, retention: Retention) -> PruneCounts:
        """Delete up to ``retention.batch`` rows of each kind past its cut-off."""
        ...

    def save_idempotent_result(self, store_id: int, scope: Scope, key: str, fingerprint: str, result: str) -> None: ...
    def audit(self, entry: AuditEntry) -> None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def trim_index_changes(self, upto: int) -> None: ...


class RecordStore(Protocol):
    """The system of record of one deployment."""

    def read(self) -> AbstractContextManager[RecordReader]: ...
    def write(self) -> AbstractContextManager[RecordWriter]: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def catch_up(self) -> None:
        """Idle-time upkeep: bring what the record keeps in memory up to date with committed changes."""
        ...

    def checkpoint(self) -> None:
        """Housekeeping after erasures (e.g. fold a write-ahead log into the database file); best effort."""
        ...

    def close(self) -> None: ...
    def abandon_after_fork(self) -> list[Any]: ...


class JobQueue(Protocol):
    """Background extraction jobs, kept in the record so they survive a crash. Several processes may take jobs
    from one queue: a claimed job is leased to its worker, and handed out again when the lease runs out."""

    def enqueue(self, tx: RecordWriter, store_id: int, job: NewJob) -> None: ...
    def claim(
        self, store_ids: Collection[int] | None, skip: Collection[int], worker: str, lease_seconds: float
    ) -> Job | None:
        """Mark the oldest due job of these stores (``None``: of every store), not in ``skip``, running, leased to
        ``worker`` for ``lease_seconds``, and return it. A running job whose lease ran out counts as due; a job
        whose tenant has another job running does not (one extraction per tenant at a time)."""
        ...

    def renew(self, job: Job, lease_seconds: float) -> bool:
        """Extend the lease of a running job; False when it is no longer this claim's."""
        ...

    def finish(self, tx: RecordWriter, job: Job) -> bool:
        """In the transaction that applies the job's result: remove it. False if it is gone (its store or tenant
        was deleted meanwhile) or its lease was handed to another worker: the caller then writes nothing, so a
        job's result is applied once."""
        ...

    def fail(self, job: Job, error: str, raw_output: str | None, final: bool, retry_in: float) -> None:
        """Record a failed attempt: the job is failed for good (``final``) or due again in ``retry_in`` seconds."""
        ...

    def retry_failed(self, tx: RecordWriter, store_id: int) -> int: ...
    def recover(self) -> None:
        """At open: jobs left running by a process that died are due again (at once, or when their lease ends)."""
        ...


class VectorIndex(Protocol):
    """A vector index derived from the record (rebuildable from the embeddings it keeps)."""

    @property
    def pending(self) -> int:
        """Changes not yet applied (a pending rebuild counts as one)."""
        ...

    def check_on_open(self, clean: bool) -> None: ...
    def query(self, store_id: int, vector: Vector, n: int, where: ReadFilter | None) -> list[int] | None:
        """Positions of the nearest memories, best first; ``None`` when the index cannot answer now (the caller
        scans the record instead)."""
        ...

    def catch_up(self) -> None:
        """Apply every pending change of the record (rebuilding first if needed)."""
        ...

    def request_rebuild(self, reason: str) -> None: ...
    def note_store_dropped(self, tx: RecordWriter, store_id: int) -> None:
        """In the transaction that deletes a store: remember to drop it from the index, even if it is not open."""
        ...

    def drop_store(self, store_id: int) -> None:
        """After that transaction: drop it now if the index is open."""
        ...

    def close(self) -> None: ...
    def abandon_after_fork(self) -> list[Any]: ...


class Deployment(Protocol):
    """The storage one service runs on: a record, its job queue and a vector index, opened together and closed in
    the one safe order (an embedded data folder, or a shared database with a Chroma server)."""

    @property
    def record(self) -> RecordStore: ...
    @property
    def index(self) -> VectorIndex: ...
    @property
    def queue(self) -> JobQueue: ...
    @property
    def unclean_start(self) -> bool:
        """The last owner died without closing (always False where nobody owns the storage)."""
        ...

    @property
    def location(self) -> str:
        """Where the memory lives, for messages and for telling deployments apart (no password)."""
        ...

    def close(self) -> None: ...
    def abandon_after_fork(self) -> None: ...

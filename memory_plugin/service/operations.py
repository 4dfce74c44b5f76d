"""The store operations: each takes its validated operation value and the call's audit record, and holds the
rules (scope checks, what is one transaction, what the audit counts). No storage code: the record, job queue and
vector index are reached through the storage seam."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import clock, models, ops
from ..errors import MemoryNotFoundError
from ..filters import ReadFilter
from ..query_time import named_periods
from ..retrieval import embedding_text
from ..settings import Settings
from ..storage.base import JobQueue, MemoryRow, NewJob, RecordReader, RecordStore, Retention, VectorIndex
from ..validation import encode_cursor
from . import insights
from .audit import AuditRecord
from .catalog import StoreCatalog
from .idempotency import fingerprint, remember, replayed
from .ingest import StoreHandle, apply, build_messages, extract, extraction_input
from .search import hybrid_search

T = TypeVar("T")
DAY_SECONDS = 86_400
# Idempotency keys of add() are remembered this long: a retry within a week is never applied twice.
IDEMPOTENCY_KEY_DAYS = 7
FLUSH_POLL_SECONDS = 0.2
# Rows deleted per transaction when pruning, so one prune never holds the write lock for long.
PRUNE_BATCH = 5_000


class JobSignal:
    """Wakes the background worker when jobs arrive, and ``flush()`` callers when jobs finish."""

    def __init__(self) -> None:
        self.changed = threading.Condition()

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()


def _page(items: Sequence[tuple[int, T]], size: int) -> models.Page[T]:
    """A page of ``size`` items from ``size + 1`` read: the extra one only says there is a next page."""
    more = len(items) > size
    cursor = encode_cursor(items[size - 1][0]) if more else None
    return models.Page(items=[item for _, item in items[:size]], next_cursor=cursor)


def _read_filter(store: StoreHandle, op: ops.ReadOperation[Any]) -> ReadFilter:
    return ReadFilter(store.id, op.scope, op.memory_types, dict(op.filters), op.start_time, op.end_time)


@dataclass
class StoreOperations:
    """Executes the operations on one store of a service."""

    record: RecordStore
    index: VectorIndex
    queue: JobQueue
    settings: Settings
    catalog: StoreCatalog
    jobs: JobSignal
    still_open: Callable[[], bool]
    explain_jobs: Callable[[list[models.ExtractionJob]], list[models.ExtractionJob]]

    def handlers(self) -> dict[type[ops.StoreOperation[Any]], Callable[[StoreHandle, Any, AuditRecord], Any]]:
        return {
            ops.Add: self.add,
            ops.Search: self.search,
            ops.ListMemories: self.list_memories,
            ops.GetMemory: self.get,
            ops.UpdateMemory: self.update,
            ops.DeleteMemory: self.delete,
            ops.GetHistory: self.history,
            ops.ListMessages: self.messages,
            ops.DeleteMessages: self.clear_messages,
            ops.DeleteAll: self.delete_all,
            ops.ListRequests: self.requests,
            ops.Flush: self.flush,
            ops.ListExtractionJobs: self.extraction_status,
            ops.RetryExtraction: self.retry_failed,
            ops.PruneStore: self.prune,
            ops.ListScopes: lambda store, op, audit: insights.scopes(self.record, store, op, audit),
            ops.StoreStats: lambda store, op, audit: insights.stats(self.record, store, op, audit),
            ops.ActivityStats: lambda store, op, audit: insights.activity(self.record, store, op, audit),
        }

    # ---- writes ------------------------------------------------------------------------------------------------

    def add(self, store: StoreHandle, op: ops.Add, audit: AuditRecord) -> models.AddResult:
        digest = fingerprint(op.scope, op.messages, op.text, op.metadata, op.sync, op.timestamp)
        key = op.idempotency_key
        if key is not None:
            with self.record.read() as reader:
                earlier = replayed(reader, store.id, op.scope, key, digest)
            if earlier is not None:  # a retry: nothing is extracted or stored again
                audit.counts["replayed"] = 1
                return earlier
        when = op.timestamp or clock.to_datetime(clock.now())
        new_messages = [] if op.messages is None else build_messages(op.scope, op.messages, op.metadata, when)
        if op.sync:
            request = extraction_input(
                self.record, self.index, self.settings, store, op.scope, new_messages, op.text, dict(op.metadata), when
            )
            try:
                prepared = extract(self.record, store, request)
            finally:  # tokens are spent even when the extraction fails
                audit.counts.update(request.usage)
        with self.record.write() as tx:
            if key is not None and (earlier := replayed(tx, store.id, op.scope, key, digest)) is not None:
                audit.counts["replayed"] = 1  # a concurrent retry committed first
                return earlier
            tx.insert_messages(store.id, new_messages)
            memories: list[models.Memory] = []
            if op.sync:
                memories = apply(tx, store.id, op.scope, prepared, when, audit.request_id)
            else:
                job = NewJob(op.scope, [m.id for m in new_messages], op.text, dict(op.metadata), when, audit.request_id)
                self.queue.enqueue(tx, store.id, job)
            result = models.AddResult(
                memories=memories, message_ids=[m.id for m in new_messages], pending=not op.sync,
                request_id=audit.request_id,
            )  # fmt: skip
            if key is not None:
                remember(tx, store.id, op.scope, key, digest, result)
            audit.counts.update(messages=len(new_messages), memories=len(memories), pending=int(not op.sync))
            audit.write(tx)
        if not op.sync:
            self.jobs.notify()
        return result

    @staticmethod
    def _find(reader: RecordReader, store: StoreHandle, op: ops.MemoryOperation[Any]) -> MemoryRow:
        row = reader.memory(store.id, op.scope, op.memory_id)
        if row is None:
            raise MemoryNotFoundError(f"no memory {op.memory_id!r} in scope {op.scope}")
        return row

    def update(self, store: StoreHandle, op: ops.UpdateMemory, audit: AuditRecord) -> models.Memory:
        with self.record.read() as reader:
            speaker = self._find(reader, store, op).memory.speaker
        embedding = None if op.text is None else store.embedder.embed_documents([embedding_text(op.text, speaker)])[0]
        with self.record.write() as tx:
            memory = tx.update_memory(
                self._find(tx, store, op), text=op.text, metadata=op.metadata, event_time=None, embedding=embedding,
                request_id=audit.request_id,
            )  # fmt: skip
            audit.counts["memories"] = 1
            audit.write(tx)
        return memory

    def delete(self, store: StoreHandle, op: ops.DeleteMemory, audit: AuditRecord) -> None:
        with self.record.write() as tx:
            tx.delete_memory(self._find(tx, store, op), audit.request_id)
            audit.counts["memories"] = 1
            audit.write(tx)

    def clear_messages(self, store: StoreHandle, op: ops.DeleteMessages, audit: AuditRecord) -> int:
        """Delete the raw messages of one concrete scope; long-term memories stay."""
        with self.record.write() as tx:
            deleted = tx.delete_messages(store.id, op.scope)
            audit.counts["messages"] = deleted
            audit.write(tx)
        return deleted

    def delete_all(self, store: StoreHandle, op: ops.DeleteAll, audit: AuditRecord) -> models.DeleteAllResult:
        """Erase everything of one tenant's read scope: memories, their history, messages, extraction jobs."""
        with self.record.write() as tx:
            forgotten = tx.forget(store.id, op.scope)
            counts = {
                "memories": forgotten.memories,
                "history": forgotten.history,
                "messages": forgotten.messages,
                "jobs": forgotten.jobs,
            }
            audit.counts.update(counts)
            audit.write(tx)
        self.record.checkpoint()  # e.g. the write-ahead log no longer holds the erased pages either
        if forgotten.memories:  # an index may keep deleted vectors in its files: a fresh one holds none of them
            self.index.request_rebuild("delete_all erased memories")
        self.jobs.notify()
        return models.DeleteAllResult(**counts, request_id=audit.request_id)

    # ---- reads -------------------------------------------------------------------------------------------------

    def search(self, store: StoreHandle, op: ops.Search, audit: AuditRecord) -> models.SearchResults:
        vector = store.embedder.embed_query(op.query)
        periods = named_periods(op.query, clock.to_datetime(clock.now()))
        read = _read_filter(store, op)
        outcome = hybrid_search(
            self.record, self.index, read, op.query, vector, op.top_k, op.rerank, self.settings, periods, op.explain
        )
        audit.counts.update(hits=len(outcome.hits), candidates=outcome.candidates)
        hits = [
            models.SearchHit(memory=memory, score=score, signals=outcome.signals[i] if outcome.signals else None)
            for i, (memory, score) in enumerate(outcome.hits)
        ]
        usage = models.Usage(query_tokens=store.embedder.count_tokens(op.query), candidates=outcome.candidates)
        return models.SearchResults(hits, audit.request_id, usage)

    def list_memories(self, store: StoreHandle, op: ops.ListMemories, audit: AuditRecord) -> models.Page[models.Memory]:
        with self.record.read() as reader:
            rows = reader.memories(_read_filter(store, op), op.cursor or 0, op.limit + 1)
        audit.counts["items"] = min(len(rows), op.limit)
        return _page([(row.position, row.memory) for row in rows], op.limit)

    def get(self, store: StoreHandle, op: ops.GetMemory, audit: AuditRecord) -> models.Memory:
        with self.record.read() as reader:
            memory = self._find(reader, store, op).memory
        audit.counts["memories"] = 1
        return memory

    def history(self, store: StoreHandle, op: ops.GetHistory, audit: AuditRecord) -> list[models.HistoryEvent]:
        with self.record.read() as reader:
            events = reader.history(store.id, op.scope, op.memory_id)
        if not events:
            raise MemoryNotFoundError(f"no memory {op.memory_id!r} in scope {op.scope}")
        audit.counts["items"] = len(events)
        return events

    def messages(self, store: StoreHandle, op: ops.ListMessages, audit: AuditRecord) -> models.Page[models.Message]:
        with self.record.read() as reader:
            found = reader.messages(store.id, op.scope, op.cursor or 0, op.limit + 1)
        audit.counts["items"] = min(len(found), op.limit)
        return _page(found, op.limit)

    def requests(
        self, store: StoreHandle, op: ops.ListRequests, audit: AuditRecord
    ) -> models.Page[models.RequestRecord]:
        """Audit records, newest first."""
        with self.record.read() as reader:
            found = reader.requests(
                store.id, op.scope, op.operation, op.cursor, op.limit + 1, outcome=op.outcome, key_id=op.key_id
            )
        audit.counts["items"] = min(len(found), op.limit)
        return _page(found, op.limit)

    # ---- background work and housekeeping ----------------------------------------------------------------------

    def extraction_status(
        self, store: StoreHandle, op: ops.ListExtractionJobs, audit: AuditRecord
    ) -> list[models.ExtractionJob]:
        """The store's unfinished background extraction jobs (pending, running, failed), oldest first."""
        with self.record.read() as reader:
            jobs = reader.jobs(store.id)
        audit.counts["items"] = len(jobs)
        return self.explain_jobs(jobs)

    def retry_failed(self, store: StoreHandle, op: ops.RetryExtraction, audit: AuditRecord) -> int:
        """Queue the store's failed extraction jobs again (attempts start over). Returns how many."""
        with self.record.write() as tx:
            count = self.queue.retry_failed(tx, store.id)
            audit.counts["jobs"] = count
            audit.write(tx)
        self.jobs.notify()
        return count

    def flush(self, store: StoreHandle, op: ops.Flush, audit: AuditRecord) -> bool:
        """Wait until the store's background extraction is done; False if ``timeout`` seconds passed first."""
        deadline = None if op.timeout is None else time.monotonic() + op.timeout
        with self.jobs.changed:
            while (pending := self._unfinished(store)) and self.still_open():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self.jobs.changed.wait(FLUSH_POLL_SECONDS if remaining is None else min(FLUSH_POLL_SECONDS, remaining))
        audit.counts["pending"] = pending
        return pending == 0

    def _unfinished(self, store: StoreHandle) -> int:
        with self.record.read() as reader:
            return reader.unfinished_jobs(store.id)

    def prune(self, store: StoreHandle, op: ops.PruneStore | None, audit: AuditRecord) -> models.PruneResult:
        """Delete audit records and history events older than the store's retention, and expired idempotency
        keys, in short transactions. A background prune (``op`` is ``None``) is audited only when it removed
        something."""
        info = self.catalog.info_of(store)
        at = clock.now()

        def before(days: int | None) -> float | None:
            return None if days is None else at - days * DAY_SECONDS

        retention = Retention(
            requests_before=before(info.audit_retention_days),
            history_before=before(info.history_retention_days),
            idempotency_keys_before=before(IDEMPOTENCY_KEY_DAYS),
            batch=PRUNE_BATCH,
        )
        totals = {"requests": 0, "history": 0, "idempotency_keys": 0}
        while True:
            with self.record.write() as tx:
                counts = tx.prune(store.id, retention)
            totals = {name: totals[name] + getattr(counts, name) for name in totals}
            if not counts.any():
                break
        audit.counts.update(totals)
        if op is None and not any(totals.values()):
            audit.written = True  # nothing to say: a background prune that removed nothing leaves no record
        return models.PruneResult(**totals)

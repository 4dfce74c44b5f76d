"""The engine: one owner of one data folder, and the few operations everything else goes through.

The sync client, the async client, the CLI, the adapters and the benchmarks all call these methods; they hold
every rule (validation, scope checks, audit, transactions), so the public surfaces cannot drift apart.
"""

from __future__ import annotations

import atexit
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .audit import AuditRecord
from .embedding import Embedder, check_embedder_matches
from .errors import (
    InvalidArgumentError,
    MemoryNotFoundError,
    MemoryPluginError,
    MemoryStoreExistsError,
    MemoryStoreNotFoundError,
)
from .extraction import (
    Extractor,
    TurnExtractor,
)
from .filters import ReadFilter, memory_sql, scope_sql
from .forgetting import forget_scope, prune_expired, require_one_tenant
from .idempotency import fingerprint, remember, replayed
from .ingest import StoreHandle, apply, build_messages, enqueue_extraction, extract, extraction_input, insert_messages
from .lifecycle import OperationGate, gated, track
from .models import (
    AddResult,
    DeleteAllResult,
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Page,
    PruneResult,
    RequestRecord,
    SearchHit,
    SearchResults,
    Usage,
)
from .query_time import named_periods
from .retrieval import embedding_text
from .scope import Scope
from .search import hybrid_search
from .storage.folder import DataFolder
from .storage.record import (
    now,
    row_history,
    row_job,
    row_memory,
    row_message,
    row_request,
    row_store,
    to_datetime,
)
from .storage.vector_index import note_store_dropped
from .validation import (
    check_bool,
    check_cursor,
    check_description,
    check_filters,
    check_idempotency_key,
    check_limit,
    check_memory_id,
    check_memory_types,
    check_messages,
    check_metadata,
    check_optional_time,
    check_query,
    check_retention_days,
    check_store_name,
    check_text,
    check_time_range,
    check_top_k,
    encode_cursor,
)
from .worker import ExtractionWorker
from .writes import delete_memory, update_memory

OPERATIONS = (
    "AddMemories",
    "SearchMemories",
    "ListMemories",
    "GetMemory",
    "UpdateMemory",
    "DeleteMemory",
    "GetHistory",
    "ListMessages",
    "DeleteMessages",
    "DeleteAll",
    "PruneStore",
    "ListRequests",
    "Flush",
    "ExtractMemories",
    "ListExtractionJobs",
    "RetryExtraction",
)
# How long close() waits for the calls in flight before it closes the storage under them.
CLOSE_WAIT_SECONDS = 30.0


class Engine:
    """Owns one data folder: its lock, record, vector index and background worker."""

    def __init__(self, path: Path, embedder: object = None, extractor: Extractor | None = None) -> None:
        self._folder = DataFolder(path)
        self.path, self.record, self.index = path, self._folder.record, self._folder.index
        self.unclean_start = self._folder.unclean_start
        self._default_embedder = embedder
        self._default_extractor: Extractor = extractor or TurnExtractor()
        self._stores: dict[int, StoreHandle] = {}
        self._stores_lock = threading.Lock()
        self._gate = OperationGate()
        self.jobs_changed = threading.Condition()
        self._worker = ExtractionWorker(self)
        track(self)
        atexit.register(self.close)

    # ---- lifecycle (see lifecycle.py) ------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new calls, wait for those in flight (up to ``CLOSE_WAIT_SECONDS``), stop the worker, close the
        index and record cleanly and release the folder. Safe to call twice; does nothing in a forked child."""
        if not self._gate.close(CLOSE_WAIT_SECONDS):
            return
        atexit.unregister(self.close)
        self._worker.stop()
        self._folder.close()

    def disarm_after_fork(self, parent: int) -> None:
        """In a child forked after this engine opened: refuse every call, and leave the parent's folder alone."""
        self._gate.disarm_after_fork(parent)
        atexit.unregister(self.close)
        self._folder.abandon_after_fork()

    # ---- stores ----------------------------------------------------------------------------------------------

    def _embedder(self, embedder: object) -> Embedder:
        return Embedder.from_any(embedder if embedder is not None else self._default_embedder)

    @gated
    def create_store(
        self,
        name: str,
        description: str = "",
        embedder: object = None,
        extractor: Extractor | None = None,
        audit_retention_days: object = None,
        history_retention_days: object = None,
    ) -> StoreHandle:
        name, description = check_store_name(name), check_description(description)
        audit_days = check_retention_days("audit_retention_days", audit_retention_days)
        history_days = check_retention_days("history_retention_days", history_retention_days)
        resolved = self._embedder(embedder)
        dimension = resolved.dimension
        resolved.warm_up()  # the model loads now, not inside the first audited call
        with self.record.transaction() as conn:
            if conn.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone():
                raise MemoryStoreExistsError(f"memory store {name!r} already exists; use get_memory_store")
            cursor = conn.execute(
                "INSERT INTO stores (name, description, embedder, dimension, created_at, audit_retention_days,"
                " history_retention_days) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, description, resolved.name, dimension, now(), audit_days, history_days),
            )
        return self._register(int(cursor.lastrowid or 0), name, resolved, extractor)

    @gated
    def update_store(self, name: str, changes: Mapping[str, object]) -> MemoryStoreInfo:
        """Change a store's description and retention settings (keys absent from ``changes`` stay as they are)."""
        name = check_store_name(name)
        checks: dict[str, Callable[[object], object]] = {
            "description": check_description,
            "audit_retention_days": lambda v: check_retention_days("audit_retention_days", v),
            "history_retention_days": lambda v: check_retention_days("history_retention_days", v),
        }
        values = {column: checks[column](value) for column, value in changes.items()}
        with self.record.transaction() as conn:
            if not conn.execute("SELECT 1 FROM stores WHERE name = ?", (name,)).fetchone():
                raise MemoryStoreNotFoundError(f"no memory store named {name!r}")
            for column, value in values.items():  # column names come from the fixed table above
                conn.execute(f"UPDATE stores SET {column} = ? WHERE name = ?", (value, name))
            return row_store(conn.execute("SELECT * FROM stores WHERE name = ?", (name,)).fetchone())

    @gated
    def open_store(self, name: str, embedder: object = None, extractor: Extractor | None = None) -> StoreHandle:
        name = check_store_name(name)
        with self.record.reading() as conn:
            row = conn.execute("SELECT * FROM stores WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise MemoryStoreNotFoundError(f"no memory store named {name!r}; create it with create_memory_store")
        resolved = self._embedder(embedder)
        check_embedder_matches(name, row["embedder"], row["dimension"], resolved)
        resolved.warm_up()  # the model loads now, not inside the first audited call
        return self._register(int(row["id"]), name, resolved, extractor)

    def _register(self, store_id: int, name: str, embedder: Embedder, extractor: Extractor | None) -> StoreHandle:
        """The store's one handle in this client. A store already open keeps its extractor: its queued jobs run
        with it, so another one is refused rather than swapped in under them."""
        with self._stores_lock:
            handle = self._stores.get(store_id)
            if handle is None:
                handle = StoreHandle(store_id, name, embedder, extractor or self._default_extractor)
                self._stores[store_id] = handle
            elif extractor is not None and extractor is not handle.extractor:
                raise InvalidArgumentError(
                    "extractor",
                    f"memory store {name!r} is already open in this client with extractor "
                    f"{type(handle.extractor).__qualname__}; a store runs with one extractor: call "
                    f"get_memory_store({name!r}) without extractor= to use it, or close this client and open the "
                    "store with the other extractor in a new one",
                )
        self._worker.ensure_started()
        self.notify_jobs()
        return handle

    def store_handle(self, store_id: int) -> StoreHandle | None:
        return self._stores.get(store_id)

    def open_store_ids(self) -> list[int]:
        return list(self._stores)

    @gated
    def list_stores(self) -> list[MemoryStoreInfo]:
        with self.record.reading() as conn:
            return [row_store(r) for r in conn.execute("SELECT * FROM stores ORDER BY name")]

    @gated
    def store_info(self, store: StoreHandle) -> MemoryStoreInfo:
        with self.record.reading() as conn:
            row = conn.execute("SELECT * FROM stores WHERE id = ?", (store.id,)).fetchone()
        if row is None:
            raise MemoryStoreNotFoundError(f"memory store {store.name!r} was deleted")
        return row_store(row)

    @gated
    def delete_store(self, name: str) -> None:
        """Delete a store and everything in it (memories, messages, history, audit, pending jobs, index entries)."""
        name = check_store_name(name)
        with self.record.transaction() as conn:
            row = conn.execute("SELECT id FROM stores WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise MemoryStoreNotFoundError(f"no memory store named {name!r}")
            store_id = int(row[0])
            conn.execute(
                "DELETE FROM memories_fts WHERE rowid IN (SELECT seq FROM memories WHERE store_id = ?)", (store_id,)
            )
            for table in ("memories", "messages", "history", "requests", "jobs", "index_log", "stores"):
                conn.execute(f"DELETE FROM {table} WHERE {'id' if table == 'stores' else 'store_id'} = ?", (store_id,))
            note_store_dropped(conn, store_id)  # its index collection goes too, even if Chroma is not open now
        with self._stores_lock:
            self._stores.pop(store_id, None)
        self.index.drop_store(store_id)
        self.notify_jobs()

    def _live(self, store: StoreHandle) -> None:
        if store.id not in self._stores:
            raise MemoryStoreNotFoundError(f"memory store {store.name!r} was deleted")

    # ---- audit -----------------------------------------------------------------------------------------------

    @contextmanager
    def _audited(self, store: StoreHandle, operation: str, scope: object) -> Iterator[AuditRecord]:
        """Record one public call: outcome, latency, counts. The call passes the gate that close() drains."""
        with self._gate.call():
            self._live(store)
            audit = AuditRecord(store.id, operation, scope)
            try:
                yield audit
            except BaseException as e:
                outcome = type(e).__name__ if isinstance(e, Exception) else "Interrupted"
                try:
                    with self.record.transaction() as conn:
                        audit.write(conn, outcome, str(e)[:500])
                except MemoryPluginError:
                    pass  # the original error matters more than a failed audit write (e.g. the disk is full)
                raise
            if not audit.written:
                with self.record.transaction() as conn:
                    audit.write(conn)

    # ---- writes ----------------------------------------------------------------------------------------------

    def add(
        self,
        store: StoreHandle,
        scope: object,
        messages: object = None,
        text: object = None,
        metadata: object = None,
        sync: object = True,
        timestamp: object = None,
        idempotency_key: object = None,
    ) -> AddResult:
        with self._audited(store, "AddMemories", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("add")
            if (messages is None) == (text is None):
                raise InvalidArgumentError("messages", "give exactly one of messages= or text=")
            call_metadata = check_metadata(metadata)
            is_sync = check_bool("sync", sync)
            given_time = check_optional_time("timestamp", timestamp)
            key = check_idempotency_key(idempotency_key)
            inputs = None if messages is None else check_messages(messages)
            body = None if text is None else check_text("text", text)
            digest = fingerprint(concrete, inputs, body, call_metadata, is_sync, given_time)
            if key is not None:
                with self.record.reading() as conn:
                    earlier = replayed(conn, store.id, concrete, key, digest)
                if earlier is not None:  # a retry: nothing is extracted or stored again
                    audit.counts["replayed"] = 1
                    return earlier
            when = given_time or to_datetime(now())
            new_messages = [] if inputs is None else build_messages(concrete, inputs, call_metadata, when)
            if is_sync:
                request = extraction_input(
                    self.record, self.index, store, concrete, new_messages, body, call_metadata, when
                )
                try:
                    prepared = extract(self.record, store, request)
                finally:  # tokens are spent even when the extraction fails
                    audit.counts.update(request.usage)
            with self.record.transaction() as conn:
                if key is not None and (earlier := replayed(conn, store.id, concrete, key, digest)) is not None:
                    audit.counts["replayed"] = 1  # a concurrent retry committed first
                    return earlier
                insert_messages(conn, store.id, new_messages)
                memories: list[Memory] = []
                if is_sync:
                    memories = apply(conn, store.id, concrete, prepared, when, audit.request_id)
                else:
                    enqueue_extraction(
                        conn, store.id, concrete, new_messages, body, call_metadata, when, audit.request_id
                    )
                result = AddResult(
                    memories=memories,
                    message_ids=[m.id for m in new_messages],
                    pending=not is_sync,
                    request_id=audit.request_id,
                )
                if key is not None:
                    remember(conn, store.id, concrete, key, digest, result)
                audit.counts.update(messages=len(new_messages), memories=len(memories), pending=int(not is_sync))
                audit.write(conn)
            if not is_sync:
                self.notify_jobs()
            return result

    def notify_jobs(self) -> None:
        with self.jobs_changed:
            self.jobs_changed.notify_all()

    def _find(self, conn: sqlite3.Connection, store: StoreHandle, scope: Scope, memory_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM memories WHERE id = ? AND store_id = ? AND app_id = ? AND tenant_id = ? AND agent_id = ?"
            " AND run_id = ?",
            (memory_id, store.id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id),
        ).fetchone()
        if row is None:
            raise MemoryNotFoundError(f"no memory {memory_id!r} in scope {scope}")
        return row

    def update(
        self, store: StoreHandle, scope: object, memory_id: object, text: object = None, metadata: object = None
    ) -> Memory:
        with self._audited(store, "UpdateMemory", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("update")
            wanted_id = check_memory_id(memory_id)
            if text is None and metadata is None:
                raise InvalidArgumentError("text", "give text=, metadata= or both to update")
            new_text = None if text is None else check_text("text", text)
            new_metadata = None if metadata is None else check_metadata(metadata)
            with self.record.reading() as conn:
                speaker = self._find(conn, store, concrete, wanted_id)["speaker"]
            embedding = (
                None if new_text is None else store.embedder.embed_documents([embedding_text(new_text, speaker)])[0]
            )
            with self.record.transaction() as conn:
                row = self._find(conn, store, concrete, wanted_id)
                memory = update_memory(
                    conn,
                    row,
                    text=new_text,
                    metadata=new_metadata,
                    event_time=None,
                    embedding=embedding,
                    request_id=audit.request_id,
                )
                audit.counts["memories"] = 1
                audit.write(conn)
            return memory

    def delete(self, store: StoreHandle, scope: object, memory_id: object) -> None:
        with self._audited(store, "DeleteMemory", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("delete")
            wanted_id = check_memory_id(memory_id)
            with self.record.transaction() as conn:
                delete_memory(conn, self._find(conn, store, concrete, wanted_id), audit.request_id)
                audit.counts["memories"] = 1
                audit.write(conn)

    # ---- reads -----------------------------------------------------------------------------------------------

    @staticmethod
    def _read_filter(
        store: StoreHandle, scope: object, memory_types: object, filters: object, start_time: object, end_time: object
    ) -> ReadFilter:
        start, end = check_time_range(start_time, end_time)
        return ReadFilter(
            store.id, Scope.parse(scope), check_memory_types(memory_types), check_filters(filters), start, end
        )

    def search(
        self,
        store: StoreHandle,
        scope: object,
        query: object,
        top_k: object = 10,
        rerank: object = True,
        memory_types: object = None,
        filters: object = None,
        start_time: object = None,
        end_time: object = None,
    ) -> SearchResults:
        with self._audited(store, "SearchMemories", scope) as audit:
            read = self._read_filter(store, scope, memory_types, filters, start_time, end_time)
            text, k, use_rerank = check_query(query), check_top_k(top_k), check_bool("rerank", rerank)
            vector = store.embedder.embed_query(text)
            periods = named_periods(text, to_datetime(now()))
            outcome = hybrid_search(self.record, self.index, read, text, vector, k, use_rerank, periods)
            audit.counts.update(hits=len(outcome.hits), candidates=outcome.candidates)
            hits = [SearchHit(memory=m, score=s) for m, s in outcome.hits]
            return SearchResults(
                hits,
                audit.request_id,
                Usage(query_tokens=store.embedder.count_tokens(text), candidates=outcome.candidates),
            )

    def list_memories(
        self,
        store: StoreHandle,
        scope: object,
        limit: object = 20,
        cursor: object = None,
        memory_types: object = None,
        filters: object = None,
        start_time: object = None,
        end_time: object = None,
    ) -> Page[Memory]:
        with self._audited(store, "ListMemories", scope) as audit:
            read = self._read_filter(store, scope, memory_types, filters, start_time, end_time)
            size, after = check_limit(limit), check_cursor(cursor) or 0
            where, params = memory_sql(read)
            with self.record.reading() as conn:
                rows = conn.execute(
                    f"SELECT * FROM memories m WHERE {where} AND m.seq > ? ORDER BY m.seq LIMIT ?",
                    [*params, after, size + 1],
                ).fetchall()
            audit.counts["items"] = min(len(rows), size)
            return _page([row_memory(r) for r in rows[:size]], rows, size)

    def get(self, store: StoreHandle, scope: object, memory_id: object) -> Memory:
        with self._audited(store, "GetMemory", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("get")
            with self.record.reading() as conn:
                memory = row_memory(self._find(conn, store, concrete, check_memory_id(memory_id)))
            audit.counts["memories"] = 1
            return memory

    def history(self, store: StoreHandle, scope: object, memory_id: object) -> list[HistoryEvent]:
        with self._audited(store, "GetHistory", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("history")
            wanted_id = check_memory_id(memory_id)
            clauses, params = scope_sql(concrete, "h")
            with self.record.reading() as conn:
                rows = conn.execute(
                    f"SELECT * FROM history h WHERE h.memory_id = ? AND h.store_id = ? AND {' AND '.join(clauses)}"
                    " ORDER BY h.seq",
                    [wanted_id, store.id, *params],
                ).fetchall()
            if not rows:
                raise MemoryNotFoundError(f"no memory {wanted_id!r} in scope {concrete}")
            audit.counts["items"] = len(rows)
            return [row_history(r) for r in rows]

    def messages(self, store: StoreHandle, scope: object, limit: object = 100, cursor: object = None) -> Page[Message]:
        with self._audited(store, "ListMessages", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("messages")
            size, after = check_limit(limit), check_cursor(cursor) or 0
            clauses, params = scope_sql(concrete, "m")
            with self.record.reading() as conn:
                rows = conn.execute(
                    f"SELECT * FROM messages m WHERE m.store_id = ? AND {' AND '.join(clauses)} AND m.seq > ?"
                    " ORDER BY m.seq LIMIT ?",
                    [store.id, *params, after, size + 1],
                ).fetchall()
            audit.counts["items"] = min(len(rows), size)
            return _page([row_message(r) for r in rows[:size]], rows, size)

    def clear_messages(self, store: StoreHandle, scope: object) -> int:
        """Delete the raw messages of one concrete scope; long-term memories stay. Returns how many were deleted."""
        with self._audited(store, "DeleteMessages", scope) as audit:
            concrete = Scope.parse(scope).require_concrete("clear_messages")
            clauses, params = scope_sql(concrete, "messages")
            with self.record.transaction() as conn:
                deleted = conn.execute(
                    f"DELETE FROM messages WHERE messages.store_id = ? AND {' AND '.join(clauses)}", [store.id, *params]
                ).rowcount
                audit.counts["messages"] = deleted
                audit.write(conn)
            return int(deleted)

    def delete_all(self, store: StoreHandle, scope: object) -> DeleteAllResult:
        """Erase everything of one tenant's read scope: memories, their history, messages, extraction jobs."""
        with self._audited(store, "DeleteAll", scope) as audit:
            target = require_one_tenant(Scope.parse(scope))
            with self.record.transaction() as conn:
                counts = forget_scope(conn, store.id, target)
                audit.counts.update(counts)
                audit.write(conn)
            self.record.checkpoint()  # the write-ahead log no longer holds the erased pages either
            if counts["memories"]:  # Chroma keeps deleted vectors in its files: a fresh index holds none of them
                self.index.request_rebuild("delete_all erased memories")
            self.notify_jobs()
            return DeleteAllResult(**counts, request_id=audit.request_id)

    def prune(self, store: StoreHandle, background: bool = False) -> PruneResult:
        """Delete audit records and history events older than the store's retention, and expired idempotency
        keys, in short transactions. A background prune is audited only when it removed something."""
        with self._audited(store, "PruneStore", None) as audit:
            info = self.store_info(store)
            totals = dict.fromkeys(PruneResult.model_fields, 0)
            while True:
                with self.record.transaction() as conn:
                    counts = prune_expired(
                        conn, store.id, info.audit_retention_days, info.history_retention_days, now()
                    )
                for name, count in counts.items():
                    totals[name] += count
                if not any(counts.values()):
                    break
            audit.counts.update(totals)
            audit.written = background and not any(totals.values())  # nothing to say: no record
            return PruneResult(**totals)

    def requests(
        self, store: StoreHandle, scope: object, operation: object = None, limit: object = 50, cursor: object = None
    ) -> Page[RequestRecord]:
        """Audit records, newest first."""
        with self._audited(store, "ListRequests", scope) as audit:
            read_scope = Scope.parse(scope)
            if operation is not None and operation not in OPERATIONS:
                raise InvalidArgumentError(
                    "operation", f"must be one of {list(OPERATIONS)} or None, got {operation!r:.60}"
                )
            size, before = check_limit(limit), check_cursor(cursor)
            scope_clauses, params = scope_sql(read_scope, "r")
            # Store-level calls (flush, extraction status and retry) have no scope: every listing shows them.
            clauses = ["r.store_id = ?", f"(r.app_id IS NULL OR ({' AND '.join(scope_clauses)}))"]
            params.insert(0, store.id)
            if operation is not None:
                clauses.append("r.operation = ?")
                params.append(operation)
            if before is not None:
                clauses.append("r.seq < ?")
                params.append(before)
            with self.record.reading() as conn:
                rows = conn.execute(
                    f"SELECT * FROM requests r WHERE {' AND '.join(clauses)} ORDER BY r.seq DESC LIMIT ?",
                    [*params, size + 1],
                ).fetchall()
            audit.counts["items"] = min(len(rows), size)
            return _page([row_request(r) for r in rows[:size]], rows, size)

    def pending_jobs(self, store: StoreHandle) -> int:
        with self.record.reading() as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM jobs WHERE store_id = ? AND state IN ('pending', 'running')", (store.id,)
                ).fetchone()[0]
            )

    def extraction_status(self, store: StoreHandle) -> list[ExtractionJob]:
        """The store's unfinished background extraction jobs (pending, running, failed), oldest first."""
        with self._audited(store, "ListExtractionJobs", None) as audit:
            with self.record.reading() as conn:
                rows = conn.execute("SELECT * FROM jobs WHERE store_id = ? ORDER BY seq", (store.id,)).fetchall()
            audit.counts["items"] = len(rows)
            return self._worker.explain([row_job(r) for r in rows])

    def retry_failed(self, store: StoreHandle) -> int:
        """Queue the store's failed extraction jobs again (attempts start over). Returns how many."""
        with self._audited(store, "RetryExtraction", None) as audit:
            with self.record.transaction() as conn:
                count = conn.execute(
                    "UPDATE jobs SET state = 'pending', attempts = 0, not_before = 0"
                    " WHERE store_id = ? AND state = 'failed'",
                    (store.id,),
                ).rowcount
                audit.counts["jobs"] = count
                audit.write(conn)
            self.notify_jobs()
            return int(count)

    def flush(self, store: StoreHandle, timeout: object = None) -> bool:
        """Wait until the store's background extraction is done; False if ``timeout`` seconds passed first."""
        with self._audited(store, "Flush", None) as audit:
            if timeout is not None and (
                isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
            ):
                raise InvalidArgumentError("timeout", "must be None or a number of seconds >= 0")
            deadline = None if timeout is None else time.monotonic() + float(timeout)
            with self.jobs_changed:
                while (pending := self.pending_jobs(store)) and self._gate.is_open:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self.jobs_changed.wait(0.2 if remaining is None else min(0.2, remaining))
            audit.counts["pending"] = pending
            return pending == 0


def _page(items: list[Any], rows: list[sqlite3.Row], size: int) -> Page[Any]:
    more = len(rows) > size
    return Page(items=items, next_cursor=encode_cursor(int(rows[size - 1]["seq"])) if more else None)

"""Writes of the PostgreSQL record (:class:`~memory_plugin.storage.base.RecordWriter`), inside one transaction.

Several memory servers write at once, so each write transaction takes, in this order and until it commits:

1. the idempotency key's lock, when an ``add`` names one (a retry on another server waits and replays);
2. the store's **content lock** before it reads a memory to change it or adds a memory or message: writes to one
   store's memories and messages are serialised as they are in SQLite, so a memory is never changed from a stale
   read, and positions (``seq``) are drawn and committed in the same order;
3. the store's **audit lock** before it appends an audit record (reads write audit records too, and must not wait
   for the content writers);
4. last, the shard rows of the keyword statistics (see :mod:`.terms`), in term order.

One order, so no two transactions wait for each other. Why positions must commit in order: a cursor is the last
position a page showed; were a transaction to draw position 10 and commit after another committed 11, a reader
could page past 11 before 10 appeared, and never see it. Under the store's lock a transaction that commits later
always holds higher positions, so pages never skip or repeat.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import errors

from ...clock import new_id, now
from ...errors import MemoryStoreExistsError
from ...models import Memory, Message, Metadata
from ...scope import Scope
from ..base import AuditEntry, ForgetCounts, MemoryRow, NewMemoryRecord, PruneCounts, Retention, StoreRow, Vector
from ..sqlite.rows import dumps, embedding_blob, segment_text
from .reader import PostgresReader
from .sql import scope_sql
from .terms import IndexedTerms

# pg_advisory_xact_lock(class, object) classes; the object is the store id.
CONTENT_LOCK = 0x4D50_0001
AUDIT_LOCK = 0x4D50_0002
IDEMPOTENCY_LOCK = 0x4D50_0003
KEYWORD_SHARDS = 16
_STORE_COLUMNS = frozenset({"description", "audit_retention_days", "history_retention_days"})
# Every table that holds rows of a store, children first (they reference the store).
_STORE_TABLES = ("memories", "messages", "history", "requests", "jobs", "index_log", "idempotency")


class PostgresWriter(PostgresReader):
    """Reads and writes over one connection inside one write transaction."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self._locked: set[tuple[int, int]] = set()
        self._documents = 0
        self._tokens = 0
        self._holding: Counter[str] = Counter()

    # ---- locks and keyword statistics --------------------------------------------------------------------------

    def _lock(self, kind: int, store_id: int) -> None:
        if (kind, store_id) not in self._locked:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (kind, store_id))
            self._locked.add((kind, store_id))

    def lock_content(self, store_id: int) -> None:
        """Serialise this transaction with every other that changes the store's memories or messages."""
        self._lock(CONTENT_LOCK, store_id)

    def _count_terms(self, terms: Sequence[str], length: int, sign: int) -> None:
        self._documents += sign
        self._tokens += sign * length
        for term in terms:
            self._holding[term] += sign

    def before_commit(self) -> None:
        """Add this transaction's changes to the keyword statistics, last and in term order (see the module)."""
        holding = {term: n for term, n in sorted(self._holding.items()) if n}
        if self._documents or self._tokens:
            self.conn.execute(
                "INSERT INTO keyword_totals (shard, documents, tokens) VALUES (pg_backend_pid() %% %s, %s, %s)"
                " ON CONFLICT (shard) DO UPDATE SET documents = keyword_totals.documents + excluded.documents,"
                " tokens = keyword_totals.tokens + excluded.tokens",
                (KEYWORD_SHARDS, self._documents, self._tokens),
            )
        if holding:
            self.conn.execute(
                "INSERT INTO keyword_terms (term, shard, documents)"
                " SELECT term, pg_backend_pid() %% %s, n FROM unnest(%s::text[], %s::bigint[]) AS u(term, n)"
                " ORDER BY term ON CONFLICT (term, shard) DO UPDATE"
                " SET documents = keyword_terms.documents + excluded.documents",
                (KEYWORD_SHARDS, list(holding), list(holding.values())),
            )
        self._documents, self._tokens, self._holding = 0, 0, Counter()

    def _forget_terms(self, where: str, params: Sequence[Any]) -> None:
        """Take the memories ``where`` selects out of the keyword statistics (before deleting them)."""
        totals = self._one(f"SELECT count(*) AS n, coalesce(sum(length), 0) AS t FROM memories m WHERE {where}", params)
        if totals and totals["n"]:
            self._documents -= int(totals["n"])
            self._tokens -= int(totals["t"])
            for row in self._all(
                f"SELECT term, count(*) AS n FROM memories m, unnest(m.terms) AS term WHERE {where} GROUP BY term",
                params,
            ):
                self._holding[str(row["term"])] -= int(row["n"])

    # ---- reads that lock ---------------------------------------------------------------------------------------

    def memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        self.lock_content(store_id)  # read to be changed: nobody changes it before this transaction commits
        return super().memory(store_id, scope, memory_id)

    def tenant_memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        self.lock_content(store_id)
        return super().tenant_memory(store_id, scope, memory_id)

    def idempotent_result(self, store_id: int, scope: Scope, key: str) -> tuple[str, str] | None:
        # A retry of the same add on another server waits here for the first to commit, then replays it.
        self.conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
            (IDEMPOTENCY_LOCK, f"{store_id}\x1f{scope.app_id}\x1f{scope.tenant_id}\x1f{key}"),
        )
        return super().idempotent_result(store_id, scope, key)

    # ---- stores ------------------------------------------------------------------------------------------------

    def create_store(
        self, name: str, description: str, embedder: str, dimension: int, audit_days: int | None,
        history_days: int | None,
    ) -> StoreRow:  # fmt: skip
        try:
            row = self._one(
                "INSERT INTO stores (name, description, embedder, dimension, created_at, audit_retention_days,"
                " history_retention_days) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (name, description, embedder, dimension, now(), audit_days, history_days),
            )
        except errors.UniqueViolation:  # created by another server a moment ago
            raise MemoryStoreExistsError(f"memory store {name!r} already exists; use get_memory_store") from None
        assert row is not None
        found = self.store_by_id(int(row["id"]))
        assert found is not None
        return found

    def update_store(self, store_id: int, changes: Mapping[str, str | int | None]) -> StoreRow:
        for column, value in changes.items():
            if column not in _STORE_COLUMNS:
                raise ValueError(f"not a store setting: {column}")
            self.conn.execute(f"UPDATE stores SET {column} = %s WHERE id = %s", (value, store_id))
        row = self.store_by_id(store_id)
        assert row is not None
        return row

    def delete_store(self, store_id: int) -> None:
        self.lock_content(store_id)  # writes in flight on other servers finish first; later ones find it gone
        self._lock(AUDIT_LOCK, store_id)
        self._forget_terms("m.store_id = %s", (store_id,))
        for table in _STORE_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE store_id = %s", (store_id,))
        self.conn.execute("DELETE FROM stores WHERE id = %s", (store_id,))

    # ---- messages ----------------------------------------------------------------------------------------------

    def insert_messages(self, store_id: int, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self.lock_content(store_id)
        with self.conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO messages (id, store_id, app_id, tenant_id, agent_id, run_id, role, content, name,"
                " timestamp, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                [
                    (m.id, store_id, m.scope.app_id, m.scope.tenant_id, m.scope.agent_id, m.scope.run_id, m.role,
                     m.content, m.name, m.timestamp.timestamp(), dumps(m.metadata))
                    for m in messages
                ],
            )  # fmt: skip

    def delete_messages(self, store_id: int, scope: Scope) -> int:
        self.lock_content(store_id)
        params: list[Any] = [store_id]
        clauses = scope_sql(scope, "m", params)
        cursor = self.conn.execute(f"DELETE FROM messages m WHERE m.store_id = %s AND {' AND '.join(clauses)}", params)
        return int(cursor.rowcount)

    # ---- memories ----------------------------------------------------------------------------------------------

    def _log_change(self, store_id: int, memory_id: str) -> None:
        self.conn.execute("INSERT INTO index_log (store_id, memory_id) VALUES (%s, %s)", (store_id, memory_id))

    def _history(
        self, row: MemoryRow, event: str, request_id: str, old: tuple[str | None, str | None],
        new: tuple[str | None, str | None], source_message_ids: Sequence[str] = (),
    ) -> None:  # fmt: skip
        scope = row.memory.scope
        self.conn.execute(
            "INSERT INTO history (store_id, memory_id, app_id, tenant_id, agent_id, run_id, event, old_text,"
            " new_text, old_metadata, new_metadata, time, request_id, source_message_ids)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s::jsonb)",
            (row.store_id, row.memory.id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, event,
             old[0], new[0], old[1], new[1], now(), request_id, dumps(list(source_message_ids))),
        )  # fmt: skip

    def _fetch(self, seq: int) -> MemoryRow:
        rows = self._memory_rows("m.seq = %s", (seq,))
        return rows[0]

    def insert_memory(self, store_id: int, scope: Scope, new: NewMemoryRecord, request_id: str) -> Memory:
        self.lock_content(store_id)
        stamp = now()
        indexed = IndexedTerms.of(new.text, new.speaker, new.context)
        row = self._one(
            "INSERT INTO memories (id, store_id, app_id, tenant_id, agent_id, run_id, memory_type, text, speaker,"
            " context, metadata, source_message_ids, event_time, created_at, updated_at, embedding, terms,"
            " term_counts, length) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s,"
            " %s, %s::text[], %s::integer[], %s) RETURNING seq",
            (new_id("mem"), store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, new.memory_type,
             new.text, new.speaker, new.context, dumps(new.metadata), dumps(list(new.source_message_ids)),
             new.event_time.timestamp(), stamp, stamp, embedding_blob(new.embedding), indexed.terms, indexed.counts,
             indexed.length),
        )  # fmt: skip
        assert row is not None
        self._count_terms(indexed.terms, indexed.length, +1)
        stored = self._fetch(int(row["seq"]))
        self._log_change(store_id, stored.memory.id)
        self._history(stored, "created", request_id, (None, None), (new.text, dumps(new.metadata)),
                      new.source_message_ids)  # fmt: skip
        return stored.memory

    def update_memory(
        self, row: MemoryRow, *, text: str | None, metadata: Metadata | None, event_time: datetime | None,
        embedding: Vector | None, request_id: str, source_message_ids: Sequence[str] = (),
    ) -> Memory:  # fmt: skip
        self.lock_content(row.store_id)
        old = row.memory
        new_text = old.text if text is None else text
        old_metadata = dumps(old.metadata)
        new_metadata = old_metadata if metadata is None else dumps(metadata)
        self.conn.execute(
            "UPDATE memories SET text = %s, metadata = %s::jsonb, event_time = %s, updated_at = %s, embedding = %s"
            " WHERE seq = %s",
            (new_text, new_metadata, (old.event_time if event_time is None else event_time).timestamp(), now(),
             embedding_blob(row.embedding if embedding is None else embedding), row.position),
        )  # fmt: skip
        if text is not None:
            self._forget_terms("m.seq = %s", (row.position,))
            indexed = IndexedTerms.of(new_text, old.speaker, row.context)
            self.conn.execute(
                "UPDATE memories SET terms = %s::text[], term_counts = %s::integer[], length = %s WHERE seq = %s",
                (indexed.terms, indexed.counts, indexed.length, row.position),
            )
            self._count_terms(indexed.terms, indexed.length, +1)
        self._log_change(row.store_id, old.id)
        self._history(row, "updated", request_id, (old.text, old_metadata), (new_text, new_metadata),
                      source_message_ids)  # fmt: skip
        return self._fetch(row.position).memory

    def note_unchanged(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str]) -> None:
        kept = (row.memory.text, dumps(row.memory.metadata))
        self._history(row, "unchanged", request_id, kept, kept, source_message_ids)

    def delete_memory(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str] = ()) -> None:
        self.lock_content(row.store_id)
        self._forget_terms("m.seq = %s", (row.position,))
        self.conn.execute("DELETE FROM memories WHERE seq = %s", (row.position,))
        self._log_change(row.store_id, row.memory.id)
        self._history(row, "deleted", request_id, (row.memory.text, dumps(row.memory.metadata)), (None, None),
                      source_message_ids)  # fmt: skip

    # ---- forgetting ----------------------------------------------------------------------------------------------

    def forget(self, store_id: int, scope: Scope) -> ForgetCounts:
        self.lock_content(store_id)
        params: list[Any] = [store_id]
        where = " AND ".join(["m.store_id = %s", *scope_sql(scope, "m", params)])
        self._forget_terms(where, params)
        doomed = [str(r["id"]) for r in self._all(f"DELETE FROM memories m WHERE {where} RETURNING m.id", params)]
        if doomed:
            self.conn.execute(
                "INSERT INTO index_log (store_id, memory_id) SELECT %s, unnest(%s::text[])", (store_id, doomed)
            )
        deleted = {}
        for table in ("history", "messages", "jobs", "idempotency"):
            cursor = self.conn.execute(f"DELETE FROM {table} m WHERE {where}", params)
            deleted[table] = int(cursor.rowcount)
        return ForgetCounts(memories=len(doomed), history=deleted["history"], messages=deleted["messages"],
                            jobs=deleted["jobs"], forgotten_ids=doomed)  # fmt: skip

    def prune(self, store_id: int, retention: Retention) -> PruneCounts:
        counts = {}
        for name, table, column, before in (
            ("requests", "requests", "time", retention.requests_before),
            ("history", "history", "time", retention.history_before),
            ("idempotency_keys", "idempotency", "created_at", retention.idempotency_keys_before),
        ):
            counts[name] = 0 if before is None else int(
                self.conn.execute(
                    f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE store_id = %s AND"
                    f" {column} < %s LIMIT %s))",
                    (store_id, before, retention.batch),
                ).rowcount
            )  # fmt: skip
        return PruneCounts(**counts)

    # ---- keys, audit, bookkeeping ---------------------------------------------------------------------------------

    def save_idempotent_result(self, store_id: int, scope: Scope, key: str, fingerprint: str, result: str) -> None:
        self.conn.execute(
            "INSERT INTO idempotency (store_id, app_id, tenant_id, agent_id, run_id, key, fingerprint, result,"
            " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, key, fingerprint, result, now()),
        )

    def audit(self, entry: AuditEntry) -> None:
        self._lock(AUDIT_LOCK, entry.store_id)
        scope = entry.scope
        segments = [None] * 4 if scope is None else [segment_text(v) for v in scope.segments().values()]
        self.conn.execute(
            "INSERT INTO requests (request_id, store_id, operation, app_id, tenant_id, agent_id, run_id, outcome,"
            " error, latency_ms, time, counts, key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s::jsonb, %s)",
            (entry.request_id, entry.store_id, entry.operation, *segments, entry.outcome, entry.error,
             entry.latency_ms, now(), json.dumps(dict(entry.counts)), entry.key_id),
        )  # fmt: skip

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def trim_index_changes(self, upto: int) -> None:
        self.conn.execute("DELETE FROM index_log WHERE id <= %s", (upto,))

    def delete_index_changes(self, ids: Sequence[int]) -> None:
        """Remove applied change-log entries by id (never by a watermark: ids commit out of order)."""
        self.conn.execute("DELETE FROM index_log WHERE id = ANY(%s::bigint[])", (list(ids),))

"""Writes of the SQLite record (:class:`~memory_plugin.storage.base.RecordWriter`), inside one write transaction.

Each memory change writes its full-text entry, its history event and its vector-index change-log entry in the same
transaction; nothing here commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from ...clock import new_id, now
from ...models import Memory, Message, Metadata
from ...retrieval import index_text
from ...scope import Scope
from ..base import AuditEntry, ForgetCounts, MemoryRow, NewMemoryRecord, PruneCounts, Retention, StoreRow, Vector
from . import keywords
from .matrix_feed import TRIMMED
from .reader import SqliteReader
from .rows import dumps, embedding_blob, row_memory_row, segment_text
from .sql import chunks, scope_sql, scope_tokens

_STORE_COLUMNS = frozenset({"description", "audit_retention_days", "history_retention_days"})
# Every table that holds rows of a store, keyed by its store column.
_STORE_TABLES = ("memories", "messages", "history", "requests", "jobs", "index_log", "idempotency")


class SqliteWriter(SqliteReader):
    """Reads and writes over the writer connection inside one transaction."""

    committed_only = False

    # ---- stores ------------------------------------------------------------------------------------------------

    def create_store(
        self, name: str, description: str, embedder: str, dimension: int, audit_days: int | None,
        history_days: int | None,
    ) -> StoreRow:  # fmt: skip
        cursor = self._conn.execute(
            "INSERT INTO stores (name, description, embedder, dimension, created_at, audit_retention_days,"
            " history_retention_days) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, description, embedder, dimension, now(), audit_days, history_days),
        )
        row = self.store_by_id(int(cursor.lastrowid or 0))
        assert row is not None
        return row

    def update_store(self, store_id: int, changes: Mapping[str, str | int | None]) -> StoreRow:
        for column, value in changes.items():
            if column not in _STORE_COLUMNS:
                raise ValueError(f"not a store setting: {column}")
            self._conn.execute(f"UPDATE stores SET {column} = ? WHERE id = ?", (value, store_id))
        row = self.store_by_id(store_id)
        assert row is not None
        return row

    def delete_store(self, store_id: int) -> None:
        positions = [int(r[0]) for r in self._conn.execute("SELECT seq FROM memories WHERE store_id = ?", (store_id,))]
        keywords.unindex(self._conn, positions)
        for table in _STORE_TABLES:
            self._conn.execute(f"DELETE FROM {table} WHERE store_id = ?", (store_id,))
        self._conn.execute("DELETE FROM stores WHERE id = ?", (store_id,))
        if self._feed is not None:  # not transactional: a rollback only costs loading the store again
            self._feed.drop_store(store_id)

    # ---- messages ----------------------------------------------------------------------------------------------

    def insert_messages(self, store_id: int, messages: Sequence[Message]) -> None:
        self._conn.executemany(
            "INSERT INTO messages (id, store_id, app_id, tenant_id, agent_id, run_id, role, content, name, timestamp,"
            " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (m.id, store_id, m.scope.app_id, m.scope.tenant_id, m.scope.agent_id, m.scope.run_id, m.role,
                 m.content, m.name, m.timestamp.timestamp(), dumps(m.metadata))
                for m in messages
            ],
        )  # fmt: skip

    def delete_messages(self, store_id: int, scope: Scope) -> int:
        clauses, params = scope_sql(scope, "messages")
        return int(
            self._conn.execute(
                f"DELETE FROM messages WHERE messages.store_id = ? AND {' AND '.join(clauses)}", [store_id, *params]
            ).rowcount
        )

    # ---- memories ----------------------------------------------------------------------------------------------

    def _log_change(self, store_id: int, memory_id: str) -> None:
        self._conn.execute("INSERT INTO index_log (store_id, memory_id) VALUES (?, ?)", (store_id, memory_id))

    def _history(
        self, row: MemoryRow, event: str, request_id: str, old: tuple[str | None, str | None],
        new: tuple[str | None, str | None], source_message_ids: Sequence[str] = (),
    ) -> None:  # fmt: skip
        scope = row.memory.scope
        self._conn.execute(
            "INSERT INTO history (store_id, memory_id, app_id, tenant_id, agent_id, run_id, event, old_text,"
            " new_text, old_metadata, new_metadata, time, request_id, source_message_ids)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.store_id, row.memory.id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, event,
             old[0], new[0], old[1], new[1], now(), request_id, dumps(list(source_message_ids))),
        )  # fmt: skip

    def _fetch(self, seq: int) -> MemoryRow:
        return row_memory_row(self._conn.execute("SELECT * FROM memories WHERE seq = ?", (seq,)).fetchone())

    def insert_memory(self, store_id: int, scope: Scope, new: NewMemoryRecord, request_id: str) -> Memory:
        stamp = now()
        cursor = self._conn.execute(
            "INSERT INTO memories (id, store_id, app_id, tenant_id, agent_id, run_id, memory_type, text, speaker,"
            " context, metadata, source_message_ids, event_time, created_at, updated_at, embedding)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id("mem"), store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, new.memory_type,
             new.text, new.speaker, new.context, dumps(new.metadata), dumps(list(new.source_message_ids)),
             new.event_time.timestamp(), stamp, stamp, embedding_blob(new.embedding)),
        )  # fmt: skip
        seq = int(cursor.lastrowid or 0)
        terms = index_text(new.text, new.speaker, new.context)
        keywords.index(self._conn, [(seq, terms, scope_tokens(store_id, scope))])
        row = self._fetch(seq)
        self._log_change(store_id, row.memory.id)
        self._history(row, "created", request_id, (None, None), (new.text, dumps(new.metadata)), new.source_message_ids)
        return row.memory

    def update_memory(
        self, row: MemoryRow, *, text: str | None, metadata: Metadata | None, event_time: datetime | None,
        embedding: Vector | None, request_id: str, source_message_ids: Sequence[str] = (),
    ) -> Memory:  # fmt: skip
        old = row.memory
        new_text = old.text if text is None else text
        old_metadata = dumps(old.metadata)
        new_metadata = old_metadata if metadata is None else dumps(metadata)
        self._conn.execute(
            "UPDATE memories SET text = ?, metadata = ?, event_time = ?, updated_at = ?, embedding = ? WHERE seq = ?",
            (
                new_text,
                new_metadata,
                (old.event_time if event_time is None else event_time).timestamp(),
                now(),
                embedding_blob(row.embedding if embedding is None else embedding),
                row.position,
            ),
        )
        if text is not None:
            [(_, _, scope)] = keywords.unindex(self._conn, [row.position])
            keywords.index(self._conn, [(row.position, index_text(new_text, old.speaker, row.context), scope)])
        self._log_change(row.store_id, old.id)
        self._history(
            row, "updated", request_id, (old.text, old_metadata), (new_text, new_metadata), source_message_ids
        )
        return self._fetch(row.position).memory

    def note_unchanged(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str]) -> None:
        kept = (row.memory.text, dumps(row.memory.metadata))
        self._history(row, "unchanged", request_id, kept, kept, source_message_ids)

    def delete_memory(self, row: MemoryRow, request_id: str, source_message_ids: Sequence[str] = ()) -> None:
        self._conn.execute("DELETE FROM memories WHERE seq = ?", (row.position,))
        keywords.unindex(self._conn, [row.position])
        self._log_change(row.store_id, row.memory.id)
        self._history(
            row, "deleted", request_id, (row.memory.text, dumps(row.memory.metadata)), (None, None), source_message_ids
        )

    # ---- forgetting ----------------------------------------------------------------------------------------------

    def _scoped(self, table: str, store_id: int, scope: Scope) -> tuple[str, list[object]]:
        clauses, params = scope_sql(scope, table)
        return " AND ".join([f"{table}.store_id = ?", *clauses]), [store_id, *params]

    def forget(self, store_id: int, scope: Scope) -> ForgetCounts:
        where, params = self._scoped("memories", store_id, scope)
        doomed = self._conn.execute(f"SELECT seq, id FROM memories WHERE {where}", params).fetchall()
        for chunk in chunks(doomed):
            positions = [row[0] for row in chunk]
            marks = ",".join("?" * len(positions))
            keywords.unindex(self._conn, positions)
            self._conn.execute(f"DELETE FROM memories WHERE seq IN ({marks})", positions)
        for row in doomed:
            self._log_change(store_id, row[1])
        deleted = {}
        for table in ("history", "messages", "jobs", "idempotency"):
            where, params = self._scoped(table, store_id, scope)
            deleted[table] = int(self._conn.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount)
        return ForgetCounts(
            memories=len(doomed),
            history=deleted["history"],
            messages=deleted["messages"],
            jobs=deleted["jobs"],
            forgotten_ids=[str(row[1]) for row in doomed],
        )

    def prune(self, store_id: int, retention: Retention) -> PruneCounts:
        counts = {}
        for name, table, column, before in (
            ("requests", "requests", "time", retention.requests_before),
            ("history", "history", "time", retention.history_before),
            ("idempotency_keys", "idempotency", "created_at", retention.idempotency_keys_before),
        ):
            counts[name] = 0 if before is None else int(
                self._conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE store_id = ? AND"
                    f" {column} < ? LIMIT ?)",
                    (store_id, before, retention.batch),
                ).rowcount
            )  # fmt: skip
        return PruneCounts(**counts)

    # ---- keys, audit, bookkeeping ---------------------------------------------------------------------------------

    def save_idempotent_result(self, store_id: int, scope: Scope, key: str, fingerprint: str, result: str) -> None:
        self._conn.execute(
            "INSERT INTO idempotency (store_id, app_id, tenant_id, agent_id, run_id, key, fingerprint, result,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, key, fingerprint, result, now()),
        )

    def audit(self, entry: AuditEntry) -> None:
        scope = entry.scope
        segments = [None] * 4 if scope is None else [segment_text(v) for v in scope.segments().values()]
        self._conn.execute(
            "INSERT INTO requests (request_id, store_id, operation, app_id, tenant_id, agent_id, run_id, outcome,"
            " error, latency_ms, time, counts, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.request_id, entry.store_id, entry.operation, *segments, entry.outcome, entry.error,
             entry.latency_ms, now(), dumps(dict(entry.counts)), entry.key_id),
        )  # fmt: skip

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def trim_index_changes(self, upto: int) -> None:
        """Delete the log up to ``upto``, but not what the in-memory matrix has yet to apply."""
        needed = None if self._feed is None else self._feed.log_needed_after
        upto = upto if needed is None else min(upto, needed)
        self._conn.execute("DELETE FROM index_log WHERE seq <= ?", (upto,))
        if upto > int(self.get_meta(TRIMMED) or 0):
            self.set_meta(TRIMMED, str(upto))

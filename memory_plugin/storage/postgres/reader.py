"""Reads of the PostgreSQL record (:class:`~memory_plugin.storage.base.RecordReader`), inside one transaction.

Rows map to the domain's values with the SQLite record's own mapping (:mod:`memory_plugin.storage.sqlite.rows`):
the columns have the same names and encodings (jsonb is read back as its JSON text).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from ...filters import ReadFilter
from ...models import ExtractionJob, HistoryEvent, Message, RequestRecord, ScopeSummary, StoreStats
from ...scope import Scope
from ..base import CandidateRow, IndexChange, MemoryRow, StoreRow, Vector
from ..bm25 import K1, B, idf, query_stems, term_holding
from ..sqlite.rows import (
    CANDIDATE_COLUMNS,
    embedding_matrix,
    row_candidate,
    row_history,
    row_job,
    row_memory_row,
    row_message,
    row_request,
    row_store,
    scope_summaries,
    store_stats,
)
from .connections import Connection
from .sql import memory_sql, scope_sql

_SCAN_BATCH = 5000
# Columns of a memory row (the keyword bookkeeping stays in the record).
MEMORY_COLUMNS = (
    "m.seq, m.id, m.store_id, m.app_id, m.tenant_id, m.agent_id, m.run_id, m.memory_type, m.text, m.speaker,"
    " m.context, m.metadata, m.source_message_ids, m.event_time, m.created_at, m.updated_at, m.embedding"
)


def _best(scores: np.ndarray, positions: list[int], n: int) -> dict[int, float]:
    keep = np.argpartition(-scores, n - 1)[:n] if len(positions) > n else np.arange(len(positions))
    return {positions[i]: float(scores[i]) for i in keep}


class PostgresReader:
    """The queries the service needs, over one connection inside a transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return self.conn.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return self.conn.execute(sql, params).fetchone()

    def _memory_rows(self, sql: str, params: Sequence[Any]) -> list[MemoryRow]:
        return [row_memory_row(r) for r in self._all(f"SELECT {MEMORY_COLUMNS} FROM memories m WHERE {sql}", params)]

    # ---- stores ------------------------------------------------------------------------------------------------

    def store(self, name: str) -> StoreRow | None:
        row = self._one("SELECT * FROM stores WHERE name = %s", (name,))
        return None if row is None else row_store(row)

    def store_by_id(self, store_id: int) -> StoreRow | None:
        row = self._one("SELECT * FROM stores WHERE id = %s", (store_id,))
        return None if row is None else row_store(row)

    def stores(self) -> list[StoreRow]:
        return [row_store(r) for r in self._all('SELECT * FROM stores ORDER BY name COLLATE "C"')]

    # ---- memories ----------------------------------------------------------------------------------------------

    def memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        rows = self._memory_rows(
            "m.id = %s AND m.store_id = %s AND m.app_id = %s AND m.tenant_id = %s AND m.agent_id = %s"
            " AND m.run_id = %s",
            (memory_id, store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id),
        )
        return rows[0] if rows else None

    def tenant_memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        rows = self._memory_rows(
            "m.id = %s AND m.store_id = %s AND m.app_id = %s AND m.tenant_id = %s",
            (memory_id, store_id, scope.app_id, scope.tenant_id),
        )
        return rows[0] if rows else None

    def memories(self, read: ReadFilter, after: int, limit: int) -> list[MemoryRow]:
        where, params = memory_sql(read)
        return self._memory_rows(f"{where} AND m.seq > %s ORDER BY m.seq LIMIT %s", [*params, after, limit])

    def memories_by_id(self, memory_ids: Sequence[str]) -> dict[str, MemoryRow]:
        if not memory_ids:
            return {}
        return {row.memory.id: row for row in self._memory_rows("m.id = ANY(%s)", (list(memory_ids),))}

    def store_memories(self, store_id: int, after: int, limit: int) -> list[MemoryRow]:
        return self._memory_rows("m.store_id = %s AND m.seq > %s ORDER BY m.seq LIMIT %s", (store_id, after, limit))

    def count(self, read: ReadFilter, up_to: int) -> int:
        where, params = memory_sql(read)
        row = self._one(f"SELECT count(*) AS n FROM (SELECT 1 FROM memories m WHERE {where} LIMIT %s) AS c",
                        [*params, up_to])  # fmt: skip
        return int(row["n"]) if row else 0

    def count_by_store(self) -> dict[int, int]:
        rows = self._all("SELECT s.id, (SELECT count(*) FROM memories m WHERE m.store_id = s.id) AS n FROM stores s")
        return {int(r["id"]): int(r["n"]) for r in rows}

    def nearest(
        self, read: ReadFilter, vector: Vector, k: int, scan_limit: int | None = None
    ) -> dict[int, float] | None:
        """Cosine of every matching memory, keeping the ``k`` best; read in batches through a server-side cursor
        so memory stays bounded however many match. ``None`` when more than ``scan_limit`` match (the vector index
        answers instead)."""
        if scan_limit is not None and self.count(read, scan_limit + 1) > scan_limit:
            return None
        where, params = memory_sql(read)
        best: dict[int, float] = {}
        with self.conn.cursor(name="nearest") as cursor:
            cursor.execute(f"SELECT m.seq, m.embedding FROM memories m WHERE {where}", params)
            while rows := cursor.fetchmany(_SCAN_BATCH):
                matrix = embedding_matrix([r["embedding"] for r in rows], len(vector))
                scores: np.ndarray = np.einsum("ij,j->i", matrix, vector)
                best.update(_best(scores, [int(r["seq"]) for r in rows], k))
                if len(best) > k:
                    best = dict(sorted(best.items(), key=lambda kv: -kv[1])[:k])
        return best

    def keyword(self, read: ReadFilter, terms: Sequence[str], k: int) -> dict[int, float]:
        """BM25 of the ``k`` best keyword matches inside the filter, exactly as SQLite FTS5 scores them (see
        :mod:`.terms`): the whole table's statistics, the candidates from the GIN index on the stems."""
        return self._bm25(read, terms, k)

    def holding(self, terms: Sequence[str]) -> dict[str, int]:
        """How many memories of the record hold each of ``terms`` (by the stems SQLite's full-text index makes);
        a term that index reads as a phrase is left out."""
        return term_holding(terms, self._term_rows)

    def _term_rows(self, stems: Collection[str]) -> dict[str, int]:
        sql = "SELECT term, sum(documents) AS n FROM keyword_terms WHERE term = ANY(%s) GROUP BY term"
        return {str(r["term"]): int(r["n"]) for r in self._all(sql, (sorted(set(stems)),))}

    def keyword_of(self, read: ReadFilter, terms: Sequence[str], positions: Collection[int]) -> dict[int, float]:
        """BM25 of those of ``positions`` (inside the filter) that match any term, scored as :meth:`keyword`."""
        if not positions:
            return {}
        return self._bm25(read, terms, len(positions), sorted(positions))

    def _bm25(
        self, read: ReadFilter, terms: Sequence[str], k: int, positions: list[int] | None = None
    ) -> dict[int, float]:
        stems = query_stems(terms)
        if not stems:
            return {}
        totals = self._one("SELECT coalesce(sum(documents), 0) AS n, coalesce(sum(tokens), 0) AS t FROM keyword_totals")
        documents, tokens = (int(totals["n"]), int(totals["t"])) if totals else (0, 0)
        if documents <= 0:
            return {}
        holding = self._term_rows(stems)
        weights = [idf(documents, holding.get(stem, 0)) for stem in stems]
        average = float(tokens) / float(documents)
        where, params = memory_sql(read)
        among, among_params = ("", []) if positions is None else (" AND m.seq = ANY(%s)", [positions])
        # Each factor as fts5_aux.c computes it: idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * D / avgdl)).
        rows = self._all(
            "SELECT m.seq, sum(q.idf * ((f.tf * %s) / (f.tf + %s * (%s + %s * m.length / %s)))) AS score"
            " FROM memories m CROSS JOIN unnest(%s::text[], %s::float8[]) AS q(term, idf)"
            " CROSS JOIN LATERAL (SELECT m.term_counts[array_position(m.terms, q.term)]::float8 AS tf) AS f"
            f" WHERE m.terms && %s::text[] AND f.tf IS NOT NULL AND {where}{among}"
            " GROUP BY m.seq ORDER BY score DESC, m.seq LIMIT %s",
            [K1 + 1.0, K1, 1 - B, B, average, stems, weights, stems, *params, *among_params, k],
        )
        return {int(r["seq"]): float(r["score"]) for r in rows}

    def _inside(self, columns: str, read: ReadFilter, positions: Collection[int]) -> list[dict[str, Any]]:
        if not positions:
            return []
        where, params = memory_sql(read)
        return self._all(f"SELECT {columns} FROM memories m WHERE m.seq = ANY(%s) AND {where}",
                         [sorted(positions), *params])  # fmt: skip

    def inside(self, read: ReadFilter, positions: Collection[int]) -> set[int]:
        return {int(r["seq"]) for r in self._inside("m.seq", read, positions)}

    def rows(self, read: ReadFilter, positions: Collection[int]) -> dict[int, MemoryRow]:
        return {int(r["seq"]): row_memory_row(r) for r in self._inside(MEMORY_COLUMNS, read, positions)}

    def candidates(self, read: ReadFilter, positions: Collection[int]) -> dict[int, CandidateRow]:
        return {int(row["seq"]): row_candidate(row) for row in self._inside(CANDIDATE_COLUMNS, read, positions)}

    # ---- messages, history, audit ------------------------------------------------------------------------------

    def messages(self, store_id: int, scope: Scope, after: int, limit: int) -> list[tuple[int, Message]]:
        params: list[Any] = [store_id]
        clauses = scope_sql(scope, "m", params)
        rows = self._all(
            f"SELECT * FROM messages m WHERE m.store_id = %s AND {' AND '.join(clauses)} AND m.seq > %s"
            " ORDER BY m.seq LIMIT %s",
            [*params, after, limit],
        )
        return [(int(r["seq"]), row_message(r)) for r in rows]

    def recent_messages(self, store_id: int, scope: Scope, before: int | None, limit: int) -> list[Message]:
        params: list[Any] = [store_id]
        clauses = scope_sql(scope, "m", params)
        if before is not None:
            clauses.append("m.seq < %s")
            params.append(before)
        rows = self._all(
            f"SELECT * FROM messages m WHERE m.store_id = %s AND {' AND '.join(clauses)} ORDER BY m.seq DESC LIMIT %s",
            [*params, limit],
        )
        return [row_message(r) for r in reversed(rows)]

    def messages_by_id(self, message_ids: Sequence[str]) -> list[tuple[int, Message]]:
        if not message_ids:
            return []
        rows = self._all("SELECT * FROM messages WHERE id = ANY(%s) ORDER BY seq", (list(message_ids),))
        return [(int(r["seq"]), row_message(r)) for r in rows]

    def history(self, store_id: int, scope: Scope, memory_id: str) -> list[HistoryEvent]:
        params: list[Any] = [memory_id, store_id]
        clauses = scope_sql(scope, "h", params)
        rows = self._all(
            f"SELECT * FROM history h WHERE h.memory_id = %s AND h.store_id = %s AND {' AND '.join(clauses)}"
            " ORDER BY h.seq",
            params,
        )
        return [row_history(r) for r in rows]

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
        params: list[Any] = [store_id]
        scope_clauses = scope_sql(scope, "r", params)
        # Store-level calls (flush, extraction status and retry, prune) have no scope: every listing shows them.
        clauses = ["r.store_id = %s", f"(r.app_id IS NULL OR ({' AND '.join(scope_clauses)}))"]
        if operation is not None:
            clauses.append("r.operation = %s")
            params.append(operation)
        if before is not None:
            clauses.append("r.seq < %s")
            params.append(before)
        if outcome is not None:
            clauses.append("r.outcome != 'ok'" if outcome == "error" else "r.outcome = %s")
            params += [] if outcome == "error" else [outcome]
        if key_id is not None:
            clauses.append("r.key_id = %s")
            params.append(key_id)
        rows = self._all(
            f"SELECT * FROM requests r WHERE {' AND '.join(clauses)} ORDER BY r.seq DESC LIMIT %s", [*params, limit]
        )
        return [(int(r["seq"]), row_request(r)) for r in rows]

    def scopes(self, store_id: int, scope: Scope, level: str, after: str | None, limit: int) -> list[ScopeSummary]:
        if level not in ("tenant_id", "agent_id", "run_id"):
            raise ValueError(f"not a scope level: {level}")
        counted: list[tuple[str, str, int, float | None]] = []
        for table, kind, moment in (("memories", "memories", "updated_at"), ("messages", "messages", "timestamp")):
            params: list[Any] = [store_id]
            clauses = ["t.store_id = %s", *scope_sql(scope, "t", params)]
            if after:
                clauses.append(f"t.{level} > %s")
                params.append(after)
            rows = self._all(
                f"SELECT t.{level} AS value, count(*) AS n, max(t.{moment}) AS last FROM {table} t"
                f' WHERE {" AND ".join(clauses)} GROUP BY t.{level} ORDER BY t.{level} COLLATE "C" LIMIT %s',
                [*params, limit],
            )
            counted += [(kind, str(r["value"]), int(r["n"]), r["last"]) for r in rows]
        return scope_summaries(counted, limit)

    def stats(self, store_id: int, scope: Scope) -> StoreStats:
        params: list[Any] = [store_id]
        where = " AND ".join(["t.store_id = %s", *scope_sql(scope, "t", params)])

        def grouped(sql: str) -> dict[str, int]:
            return {str(r["key"]): int(r["n"]) for r in self._all(sql, params)}

        def counted(sql: str, values: list[Any]) -> int:
            row = self._one(sql, values)
            return int(row["n"]) if row else 0

        types = grouped(f"SELECT t.memory_type AS key, count(*) AS n FROM memories t WHERE {where} GROUP BY 1")
        jobs = grouped(f"SELECT t.state AS key, count(*) AS n FROM jobs t WHERE {where} GROUP BY 1")
        tenants = counted(
            f"SELECT count(*) AS n FROM (SELECT t.tenant_id FROM memories t WHERE {where} UNION"
            f" SELECT t.tenant_id FROM messages t WHERE {where}) AS u",
            params * 2,
        )
        return store_stats(types, jobs, counted(f"SELECT count(*) AS n FROM messages t WHERE {where}", params), tenants)

    def calls_since(self, store_id: int, scope: Scope, since: float) -> list[tuple[float, str, str, float]]:
        params: list[Any] = [store_id, since]
        clauses = ["r.store_id = %s", "r.time >= %s", *scope_sql(scope, "r", params)]
        rows = self._all(
            "SELECT r.time, r.operation, r.outcome, r.latency_ms FROM requests r"
            f" WHERE {' AND '.join(clauses)} ORDER BY r.time",
            params,
        )
        return [(float(r["time"]), str(r["operation"]), str(r["outcome"]), float(r["latency_ms"])) for r in rows]

    # ---- background work, keys, bookkeeping --------------------------------------------------------------------

    def jobs(self, store_id: int) -> list[ExtractionJob]:
        return [row_job(r) for r in self._all("SELECT * FROM jobs WHERE store_id = %s ORDER BY seq", (store_id,))]

    def unfinished_jobs(self, store_id: int) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM jobs WHERE store_id = %s AND state IN ('pending', 'running')", (store_id,)
        )
        return int(row["n"]) if row else 0

    def job_exists(self, position: int) -> bool:
        return self._one("SELECT 1 FROM jobs WHERE seq = %s", (position,)) is not None

    def idempotent_result(self, store_id: int, scope: Scope, key: str) -> tuple[str, str] | None:
        row = self._one(
            "SELECT fingerprint, result FROM idempotency WHERE store_id = %s AND app_id = %s AND tenant_id = %s"
            " AND key = %s",
            (store_id, scope.app_id, scope.tenant_id, key),
        )
        return None if row is None else (str(row["fingerprint"]), str(row["result"]))

    def totals(self) -> dict[str, int]:
        tables = ("memories", "messages", "history", "requests", "jobs")
        return {t: int(self._one(f"SELECT count(*) AS n FROM {t}")["n"]) for t in tables}  # type: ignore[index]

    def index_changes(self, after: int) -> list[IndexChange]:
        rows = self._all("SELECT id, store_id, memory_id FROM index_log WHERE id > %s ORDER BY id", (after,))
        return [IndexChange(int(r["id"]), int(r["store_id"]), str(r["memory_id"])) for r in rows]

    def store_index_changes(self, store_id: int, limit: int) -> list[IndexChange]:
        """The change-log entries of one store not applied to the vector index yet (at most ``limit``)."""
        rows = self._all(
            "SELECT id, store_id, memory_id FROM index_log WHERE store_id = %s ORDER BY id LIMIT %s", (store_id, limit)
        )
        return [IndexChange(int(r["id"]), int(r["store_id"]), str(r["memory_id"])) for r in rows]

    def last_index_change(self) -> int:
        row = self._one("SELECT coalesce(max(id), 0) AS n FROM index_log")
        return int(row["n"]) if row else 0

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = %s", (key,))
        return None if row is None else str(row["value"])

"""Reads of the SQLite record (:class:`~memory_plugin.storage.base.RecordReader`), inside one read transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np

from ...filters import ReadFilter
from ...models import ExtractionJob, HistoryEvent, Message, RequestRecord, ScopeSummary, StoreStats
from ...retrieval import match_expression
from ...scope import Scope
from ..base import CandidateRow, IndexChange, MemoryRow, StoreRow, Vector
from ..bm25 import term_holding
from . import keywords
from .matrix_feed import MatrixFeed
from .rows import (
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
from .sql import chunks, memory_sql, scope_match, scope_sql

# BM25 column weights of the full-text index: the terms count, the scope tokens only restrict.
_BM25_WEIGHTS = "1.0, 0.0"
# How many times the wanted keyword matches the full-text index is asked for before the record filters them.
_OVER_FETCH = 2
_SCAN_BATCH = 5000


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    # einsum runs in one thread: BLAS worker threads spinning after a matvec slowed the next query embedding.
    result: np.ndarray = np.einsum("ij,j->i", matrix, vector)
    return result


def _best(scores: np.ndarray, positions: list[int], n: int) -> dict[int, float]:
    keep = np.argpartition(-scores, n - 1)[:n] if len(positions) > n else np.arange(len(positions))
    return {positions[i]: float(scores[i]) for i in keep}


def _match(read: ReadFilter, terms: Sequence[str]) -> str | None:
    """The full-text ``MATCH`` expression of any of ``terms`` inside the read scope; ``None`` without terms."""
    expression = match_expression(terms)
    if expression is None:
        return None
    restriction = scope_match(read)
    return expression if restriction is None else f"({expression}) AND {restriction}"


class SqliteReader:
    """The queries the service needs, over one connection inside a transaction."""

    #: Whether this transaction sees only committed rows (a read). The in-memory matrix may only learn from those:
    #: a write transaction may still roll back, and the log positions it used would then be given out again.
    committed_only = True

    def __init__(self, conn: sqlite3.Connection, feed: MatrixFeed | None = None) -> None:
        self._conn = conn
        self._feed = feed

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Raw SQL in this transaction, for the other parts of the SQLite backend (the job queue)."""
        return self._conn.execute(sql, params)

    # ---- stores ------------------------------------------------------------------------------------------------

    def store(self, name: str) -> StoreRow | None:
        row = self._conn.execute("SELECT * FROM stores WHERE name = ?", (name,)).fetchone()
        return None if row is None else row_store(row)

    def store_by_id(self, store_id: int) -> StoreRow | None:
        row = self._conn.execute("SELECT * FROM stores WHERE id = ?", (store_id,)).fetchone()
        return None if row is None else row_store(row)

    def stores(self) -> list[StoreRow]:
        return [row_store(r) for r in self._conn.execute("SELECT * FROM stores ORDER BY name")]

    # ---- memories ----------------------------------------------------------------------------------------------

    def memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        row = self._conn.execute(
            "SELECT * FROM memories WHERE id = ? AND store_id = ? AND app_id = ? AND tenant_id = ? AND agent_id = ?"
            " AND run_id = ?",
            (memory_id, store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id),
        ).fetchone()
        return None if row is None else row_memory_row(row)

    def tenant_memory(self, store_id: int, scope: Scope, memory_id: str) -> MemoryRow | None:
        row = self._conn.execute(
            "SELECT * FROM memories WHERE id = ? AND store_id = ? AND app_id = ? AND tenant_id = ?",
            (memory_id, store_id, scope.app_id, scope.tenant_id),
        ).fetchone()
        return None if row is None else row_memory_row(row)

    def memories(self, read: ReadFilter, after: int, limit: int) -> list[MemoryRow]:
        where, params = memory_sql(read)
        rows = self._conn.execute(
            f"SELECT * FROM memories m WHERE {where} AND m.seq > ? ORDER BY m.seq LIMIT ?", [*params, after, limit]
        ).fetchall()
        return [row_memory_row(r) for r in rows]

    def memories_by_id(self, memory_ids: Sequence[str]) -> dict[str, MemoryRow]:
        found: dict[str, MemoryRow] = {}
        for chunk in chunks(memory_ids):
            marks = ",".join("?" * len(chunk))
            for row in self._conn.execute(f"SELECT * FROM memories WHERE id IN ({marks})", list(chunk)):
                found[row["id"]] = row_memory_row(row)
        return found

    def store_memories(self, store_id: int, after: int, limit: int) -> list[MemoryRow]:
        rows = self._conn.execute(
            "SELECT * FROM memories WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?", (store_id, after, limit)
        ).fetchall()
        return [row_memory_row(r) for r in rows]

    def count(self, read: ReadFilter, up_to: int) -> int:
        """How many memories ``read`` allows, up to ``up_to``: from the in-memory matrix when it holds the store
        (the record has no index on event time: counting one period of a large tenant read every row of it)."""
        if self._feed is not None and self.committed_only:
            found = self._feed.count(read)
            if found is not None:
                return min(found, up_to)
        where, params = memory_sql(read)
        row = self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE {where} LIMIT ?)", [*params, up_to]
        ).fetchone()
        return int(row[0])

    def count_by_store(self) -> dict[int, int]:
        return {
            int(row[0]): int(row[1])
            for row in self._conn.execute(
                "SELECT id, (SELECT count(*) FROM memories m WHERE m.store_id = s.id) FROM stores s"
            )
        }

    def nearest(
        self, read: ReadFilter, vector: Vector, k: int, scan_limit: int | None = None
    ) -> dict[int, float] | None:
        """The ``k`` best cosines among the matching memories: from the in-memory matrix when it holds the store,
        else by scanning the record (in batches, so memory stays bounded), or ``None`` when that would read more
        than ``scan_limit`` memories."""
        if self._feed is not None and self.committed_only:
            found = self._feed.nearest(read, vector, k)
            if found is not None:
                return found
        if scan_limit is not None and self.count(read, scan_limit + 1) > scan_limit:
            return None
        where, params = memory_sql(read)
        best: dict[int, float] = {}
        cursor = self._conn.execute(f"SELECT m.seq, m.embedding FROM memories m WHERE {where}", params)
        while rows := cursor.fetchmany(_SCAN_BATCH):
            matrix = embedding_matrix([r[1] for r in rows], len(vector))
            best.update(_best(_dot(matrix, vector), [int(r[0]) for r in rows], k))
            if len(best) > k:
                best = dict(sorted(best.items(), key=lambda kv: -kv[1])[:k])
        return best

    def keyword(self, read: ReadFilter, terms: Sequence[str], k: int) -> dict[int, float]:
        """BM25 of the ``k`` best keyword matches inside the filter. The full-text index is asked alone first
        (joining every match to its row cost as much as the search itself) and its answer filtered by the record;
        only when too few survive is the joined query used. The index itself restricts matches to the scope's
        tenants, agents and runs (tokens indexed with each memory), so BM25 ranks only memories inside the scope."""
        match = _match(read, terms)
        if match is None:
            return {}
        wanted = k * _OVER_FETCH
        found = self._conn.execute(
            f"SELECT rowid, -bm25(memories_fts, {_BM25_WEIGHTS}) FROM memories_fts WHERE memories_fts MATCH ?"
            f" ORDER BY bm25(memories_fts, {_BM25_WEIGHTS}) LIMIT ?",
            [match, wanted],
        ).fetchall()
        scores = {int(seq): float(score) for seq, score in found}
        inside = self.inside(read, list(scores))
        if len(inside) >= k or len(found) < wanted:
            return dict(sorted(((p, scores[p]) for p in inside), key=lambda kv: -kv[1])[:k])
        where, params = memory_sql(read)
        rows = self._conn.execute(
            f"SELECT m.seq, -bm25(memories_fts, {_BM25_WEIGHTS}) FROM memories_fts"
            " JOIN memories m NOT INDEXED ON m.seq = memories_fts.rowid"
            f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts, {_BM25_WEIGHTS}) LIMIT ?",
            [match, *params, k],
        ).fetchall()
        return {int(seq): float(score) for seq, score in rows}

    def holding(self, terms: Sequence[str]) -> dict[str, int]:
        """How many memories of the record hold each of ``terms`` (as the full-text index stems them); a term the
        index reads as a phrase is left out."""
        return term_holding(terms, partial(keywords.term_rows, self._conn))

    def keyword_of(self, read: ReadFilter, terms: Sequence[str], positions: Collection[int]) -> dict[int, float]:
        """BM25 of those of ``positions`` that match any term, the same score :meth:`keyword` gives: computed from
        the statistics the record keeps beside the full-text index (:mod:`.keywords`), or, for a query with a term
        FTS5 reads as a phrase, asked of FTS5 one row at a time."""
        found = keywords.scores(self._conn, terms, positions)
        return self._keyword_by_row(terms, positions) if found is None else found

    def _keyword_by_row(self, terms: Sequence[str], positions: Collection[int]) -> dict[int, float]:
        """One lookup per position: the full-text index seeks each term's postings to that row (``rowid IN (...)``
        would walk every match of the terms instead)."""
        expression = match_expression(terms)
        if expression is None:
            return {}
        found: dict[int, float] = {}
        sql = f"SELECT -bm25(memories_fts, {_BM25_WEIGHTS}) FROM memories_fts WHERE memories_fts MATCH ? AND rowid = ?"
        for position in sorted(positions):
            row = self._conn.execute(sql, [expression, position]).fetchone()
            if row is not None:
                found[position] = float(row[0])
        return found

    def _select_inside(self, columns: str, read: ReadFilter, positions: Collection[int]) -> Iterator[sqlite3.Row]:
        """``columns`` of the rows at ``positions`` that are inside the filter. ``NOT INDEXED`` keeps SQLite on
        rowid lookups; left to itself it walks the scope index over the whole store."""
        where, params = memory_sql(read)
        for chunk in chunks(sorted(positions)):
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT {columns} FROM memories m NOT INDEXED WHERE m.seq IN ({marks}) AND {where}"
            yield from self._conn.execute(sql, [*chunk, *params])

    def inside(self, read: ReadFilter, positions: Collection[int]) -> set[int]:
        return {int(row[0]) for row in self._select_inside("m.seq", read, positions)}

    def rows(self, read: ReadFilter, positions: Collection[int]) -> dict[int, MemoryRow]:
        return {int(row["seq"]): row_memory_row(row) for row in self._select_inside("*", read, positions)}

    def candidates(self, read: ReadFilter, positions: Collection[int]) -> dict[int, CandidateRow]:
        return {int(row["seq"]): row_candidate(row) for row in self._select_inside(CANDIDATE_COLUMNS, read, positions)}

    # ---- messages, history, audit ------------------------------------------------------------------------------

    def messages(self, store_id: int, scope: Scope, after: int, limit: int) -> list[tuple[int, Message]]:
        clauses, params = scope_sql(scope, "m")
        rows = self._conn.execute(
            f"SELECT * FROM messages m WHERE m.store_id = ? AND {' AND '.join(clauses)} AND m.seq > ?"
            " ORDER BY m.seq LIMIT ?",
            [store_id, *params, after, limit],
        ).fetchall()
        return [(int(r["seq"]), row_message(r)) for r in rows]

    def recent_messages(self, store_id: int, scope: Scope, before: int | None, limit: int) -> list[Message]:
        clauses, params = scope_sql(scope, "m")
        if before is not None:
            clauses.append("m.seq < ?")
            params.append(before)
        rows = self._conn.execute(
            f"SELECT * FROM messages m WHERE m.store_id = ? AND {' AND '.join(clauses)} ORDER BY m.seq DESC LIMIT ?",
            [store_id, *params, limit],
        ).fetchall()
        return [row_message(r) for r in reversed(rows)]

    def messages_by_id(self, message_ids: Sequence[str]) -> list[tuple[int, Message]]:
        found: list[tuple[int, Message]] = []
        for chunk in chunks(message_ids):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(f"SELECT * FROM messages WHERE id IN ({marks})", list(chunk)).fetchall()
            found += [(int(r["seq"]), row_message(r)) for r in rows]
        return sorted(found, key=lambda item: item[0])

    def history(self, store_id: int, scope: Scope, memory_id: str) -> list[HistoryEvent]:
        clauses, params = scope_sql(scope, "h")
        rows = self._conn.execute(
            f"SELECT * FROM history h WHERE h.memory_id = ? AND h.store_id = ? AND {' AND '.join(clauses)}"
            " ORDER BY h.seq",
            [memory_id, store_id, *params],
        ).fetchall()
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
        scope_clauses, params = scope_sql(scope, "r")
        # Store-level calls (flush, extraction status and retry, prune) have no scope: every listing shows them.
        clauses = ["r.store_id = ?", f"(r.app_id IS NULL OR ({' AND '.join(scope_clauses)}))"]
        params.insert(0, store_id)
        if operation is not None:
            clauses.append("r.operation = ?")
            params.append(operation)
        if before is not None:
            clauses.append("r.seq < ?")
            params.append(before)
        if outcome is not None:
            clauses.append("r.outcome != 'ok'" if outcome == "error" else "r.outcome = ?")
            params += [] if outcome == "error" else [outcome]
        if key_id is not None:
            clauses.append("r.key_id = ?")
            params.append(key_id)
        rows = self._conn.execute(
            f"SELECT * FROM requests r WHERE {' AND '.join(clauses)} ORDER BY r.seq DESC LIMIT ?", [*params, limit]
        ).fetchall()
        return [(int(r["seq"]), row_request(r)) for r in rows]

    def scopes(self, store_id: int, scope: Scope, level: str, after: str | None, limit: int) -> list[ScopeSummary]:
        if level not in ("tenant_id", "agent_id", "run_id"):
            raise ValueError(f"not a scope level: {level}")
        counted: list[tuple[str, str, int, float | None]] = []
        for table, kind, moment in (("memories", "memories", "updated_at"), ("messages", "messages", "timestamp")):
            clauses, params = scope_sql(scope, "t")
            where = " AND ".join(["t.store_id = ?", *clauses, *(["t." + level + " > ?"] if after else [])])
            rows = self._conn.execute(
                f"SELECT t.{level}, count(*), max(t.{moment}) FROM {table} t WHERE {where} GROUP BY t.{level}"
                f" ORDER BY t.{level} LIMIT ?",
                [store_id, *params, *([after] if after else []), limit],
            ).fetchall()
            counted += [(kind, str(value), int(count), last) for value, count, last in rows]
        return scope_summaries(counted, limit)

    def stats(self, store_id: int, scope: Scope) -> StoreStats:
        clauses, scope_params = scope_sql(scope, "t")
        where = " AND ".join(["t.store_id = ?", *clauses])
        params = [store_id, *scope_params]

        def grouped(sql: str) -> dict[str, int]:
            return {str(key): int(count) for key, count in self._conn.execute(sql, params)}

        def counted(sql: str, values: list[Any]) -> int:
            return int(self._conn.execute(sql, values).fetchone()[0])

        types = grouped(f"SELECT t.memory_type, count(*) FROM memories t WHERE {where} GROUP BY t.memory_type")
        jobs = grouped(f"SELECT t.state, count(*) FROM jobs t WHERE {where} GROUP BY t.state")
        tenants = counted(
            f"SELECT count(*) FROM (SELECT t.tenant_id FROM memories t WHERE {where} UNION"
            f" SELECT t.tenant_id FROM messages t WHERE {where})",
            params * 2,
        )
        return store_stats(types, jobs, counted(f"SELECT count(*) FROM messages t WHERE {where}", params), tenants)

    def calls_since(self, store_id: int, scope: Scope, since: float) -> list[tuple[float, str, str, float]]:
        clauses, params = scope_sql(scope, "r")
        rows = self._conn.execute(
            f"SELECT r.time, r.operation, r.outcome, r.latency_ms FROM requests r WHERE r.store_id = ? AND r.time >= ?"
            f" AND {' AND '.join(clauses)} ORDER BY r.time",
            [store_id, since, *params],
        ).fetchall()
        return [(float(t), str(op), str(outcome), float(ms)) for t, op, outcome, ms in rows]

    # ---- background work, keys, bookkeeping --------------------------------------------------------------------

    def jobs(self, store_id: int) -> list[ExtractionJob]:
        rows = self._conn.execute("SELECT * FROM jobs WHERE store_id = ? ORDER BY seq", (store_id,)).fetchall()
        return [row_job(r) for r in rows]

    def unfinished_jobs(self, store_id: int) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM jobs WHERE store_id = ? AND state IN ('pending', 'running')", (store_id,)
        ).fetchone()
        return int(row[0])

    def job_exists(self, position: int) -> bool:
        return self._conn.execute("SELECT 1 FROM jobs WHERE seq = ?", (position,)).fetchone() is not None

    def idempotent_result(self, store_id: int, scope: Scope, key: str) -> tuple[str, str] | None:
        row = self._conn.execute(
            "SELECT fingerprint, result FROM idempotency WHERE store_id = ? AND app_id = ? AND tenant_id = ?"
            " AND key = ?",
            (store_id, scope.app_id, scope.tenant_id, key),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def totals(self) -> dict[str, int]:
        tables = ("memories", "messages", "history", "requests", "jobs")
        return {t: int(self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}

    def index_changes(self, after: int) -> list[IndexChange]:
        rows = self._conn.execute(
            "SELECT seq, store_id, memory_id FROM index_log WHERE seq > ? ORDER BY seq", (after,)
        ).fetchall()
        return [IndexChange(int(r[0]), int(r[1]), str(r[2])) for r in rows]

    def last_index_change(self) -> int:
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

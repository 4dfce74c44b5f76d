"""Hybrid candidate generation for one search: scope-filtered vector kNN and scope-filtered BM25, then the
score contract of :mod:`memory_plugin.retrieval`.

Vector candidates come from an exact scan of the record's embeddings when few memories match the filter (the
usual case: one user's memories), and from the Chroma index when many do. Chroma's filtered kNN costs time in
proportion to the matching set (50-100 ms at 100k rows here), so the index is first asked without a filter for
more results than needed, which the record then filters; only when too few survive is the filtered query used.
Keyword candidates come from SQLite FTS5, restricted to the scope by tokens indexed with each memory, so BM25
ranks only memories inside the scope. When the query names a period ("on 9 May, 2023"), the memories from around
then are candidates too (when they are few enough to scan), so the ``date`` signal can lift a memory that neither
retriever ranked high.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .filters import ReadFilter, index_where, memory_sql, scope_match
from .models import Memory
from .query_time import Period, proximity, reach
from .retrieval import Candidate, match_expression, names_speaker, query_terms, rank, terms
from .storage.record import Record, embedding_matrix, row_memory
from .storage.vector_index import VectorIndex

# At or below this many matching memories the record is scanned exactly: reading and scoring 4,000 embeddings
# takes a few milliseconds, less than one filtered index query (see benchmarks/engine.py).
EXACT_SCAN_LIMIT = 4000
# How many times the wanted candidates an unfiltered query asks for before the record filters them.
OVER_FETCH = 2
# BM25 column weights of the full-text index: the terms count, the scope tokens only restrict.
_BM25_WEIGHTS = "1.0, 0.0"
_SCAN_BATCH = 5000
_CHUNK = 500
# The full-text search uses at most this many distinct query terms, in query order: each term costs a posting
# list walk, and 4,000 CJK characters make about 4,000 bigrams. Questions have far fewer.
MAX_QUERY_TERMS = 64


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[tuple[Memory, float]]
    candidates: int


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    # einsum runs in one thread: BLAS worker threads spinning after a matvec slowed the next query embedding.
    result: np.ndarray = np.einsum("ij,j->i", matrix, vector)
    return result


def _best(scores: np.ndarray, positions: list[int], n: int) -> dict[int, float]:
    keep = np.argpartition(-scores, n - 1)[:n] if len(positions) > n else np.arange(len(positions))
    return {positions[i]: float(scores[i]) for i in keep}


def _exact_scan(
    conn: sqlite3.Connection, where: str, params: list[Any], vector: np.ndarray, pool: int
) -> dict[int, float]:
    """Cosine of every matching memory, keeping the ``pool`` best; memory stays bounded by batching."""
    best: dict[int, float] = {}
    cursor = conn.execute(f"SELECT m.seq, m.embedding FROM memories m WHERE {where}", params)
    while rows := cursor.fetchmany(_SCAN_BATCH):
        matrix = embedding_matrix([r[1] for r in rows], len(vector))
        best.update(_best(_dot(matrix, vector), [int(r[0]) for r in rows], pool))
        if len(best) > pool:
            best = dict(sorted(best.items(), key=lambda kv: -kv[1])[:pool])
    return best


def _count_up_to_scan_limit(conn: sqlite3.Connection, where: str, params: list[Any]) -> int:
    """How many memories match, counted up to ``EXACT_SCAN_LIMIT + 1``: only "few or many" matters, and a full
    count costs a scan."""
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM memories m WHERE {where} LIMIT ?)", [*params, EXACT_SCAN_LIMIT + 1]
    ).fetchone()
    return int(row[0])


def _around_periods(
    conn: sqlite3.Connection, where: str, params: list[Any], periods: Sequence[Period], vector: np.ndarray, pool: int
) -> dict[int, float]:
    """Cosines of the ``pool`` best memories whose event time is near a named period; none when a period holds
    more memories than an exact scan takes (a whole year of a large store), as the date then tells little."""
    best: dict[int, float] = {}
    for start, end in reach(periods):
        near, near_params = f"{where} AND m.event_time BETWEEN ? AND ?", [*params, start, end]
        if 0 < _count_up_to_scan_limit(conn, near, near_params) <= EXACT_SCAN_LIMIT:
            best.update(_exact_scan(conn, near, near_params, vector, pool))
    return best


def search_terms(query: str) -> list[str]:
    """The terms the full-text search looks for: the query's distinct content terms in order, at most
    ``MAX_QUERY_TERMS``."""
    return query_terms(query)[:MAX_QUERY_TERMS]


def _lexical(conn: sqlite3.Connection, read: ReadFilter, where: str, params: list[Any], query: str,
             pool: int) -> dict[int, float]:  # fmt: skip
    """BM25 of the ``pool`` best keyword matches inside the filter. The full-text index is asked alone first
    (joining every match to its row cost as much as the search itself) and its answer filtered by the record;
    only when too few survive is the joined query used."""
    terms = match_expression(search_terms(query))
    if terms is None:
        return {}
    restriction = scope_match(read)
    match = terms if restriction is None else f"({terms}) AND {restriction}"
    wanted = pool * OVER_FETCH
    found = conn.execute(
        f"SELECT rowid, -bm25(memories_fts, {_BM25_WEIGHTS}) FROM memories_fts WHERE memories_fts MATCH ?"
        f" ORDER BY bm25(memories_fts, {_BM25_WEIGHTS}) LIMIT ?",
        [match, wanted],
    ).fetchall()
    scores = {int(seq): float(score) for seq, score in found}
    inside = _inside(conn, list(scores), where, params)
    if len(inside) >= pool or len(found) < wanted:
        return dict(sorted(((p, scores[p]) for p in inside), key=lambda kv: -kv[1])[:pool])
    rows = conn.execute(
        f"SELECT m.seq, -bm25(memories_fts, {_BM25_WEIGHTS}) FROM memories_fts"
        " JOIN memories m NOT INDEXED ON m.seq = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts, {_BM25_WEIGHTS}) LIMIT ?",
        [match, *params, pool],
    ).fetchall()
    return {int(seq): float(score) for seq, score in rows}


def _select_inside(
    conn: sqlite3.Connection, columns: str, positions: list[int], where: str, params: list[Any]
) -> Iterator[sqlite3.Row]:
    """``columns`` of the rows at ``positions`` that are inside the filter. ``NOT INDEXED`` keeps SQLite on rowid
    lookups; left to itself it walks the scope index over the whole store."""
    for start in range(0, len(positions), _CHUNK):
        chunk = positions[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {columns} FROM memories m NOT INDEXED WHERE m.seq IN ({marks}) AND {where}"
        yield from conn.execute(sql, [*chunk, *params])


def _inside(conn: sqlite3.Connection, positions: list[int], where: str, params: list[Any]) -> set[int]:
    return {int(row[0]) for row in _select_inside(conn, "m.seq", positions, where, params)}


def _rows(conn: sqlite3.Connection, positions: list[int], where: str, params: list[Any]) -> dict[int, sqlite3.Row]:
    return {int(row["seq"]): row for row in _select_inside(conn, "*", positions, where, params)}


def _index_positions(
    record: Record, index: VectorIndex, read: ReadFilter, where: str, params: list[Any], vector: np.ndarray,
    pool: int,
) -> list[int] | None:  # fmt: skip
    positions = index.query(read.store_id, vector, pool * OVER_FETCH, None)
    if positions is None:
        return None
    with record.reading() as conn:
        inside = _inside(conn, positions, where, params)
    if len(inside) >= pool:
        return [p for p in positions if p in inside]
    return index.query(read.store_id, vector, pool, index_where(read))


def hybrid_search(
    record: Record, index: VectorIndex, read: ReadFilter, query: str, vector: np.ndarray, top_k: int, rerank: bool,
    periods: Sequence[Period] = (),
) -> SearchOutcome:  # fmt: skip
    """The ``top_k`` best memories allowed by ``read`` for ``query`` (which names ``periods``), with scores per the
    score contract."""
    # Keyword search gets a deeper pool: on LoCoMo it finds more of the evidence than the embedding does.
    pool, lexical_pool = max(top_k * 4, 40), max(top_k * 6, 60)
    where, params = memory_sql(read)
    with record.reading() as conn:
        matching = _count_up_to_scan_limit(conn, where, params)
        if matching == 0:
            return SearchOutcome([], 0)
        cosines = _exact_scan(conn, where, params, vector, pool) if matching <= EXACT_SCAN_LIMIT else None
    if cosines is None:
        positions = _index_positions(record, index, read, where, params, vector, pool)
        if positions is None:  # the index is being rebuilt: the record answers exactly, only slower
            with record.reading() as conn:
                cosines = _exact_scan(conn, where, params, vector, pool)
        else:
            cosines = dict.fromkeys(positions, float("nan"))
    with record.reading() as conn:
        if periods:
            cosines.update(_around_periods(conn, where, params, periods, vector, pool))
        lexical = _lexical(conn, read, where, params, query, lexical_pool)
        rows = _rows(conn, sorted(set(cosines) | set(lexical)), where, params)
    candidates = []
    words = set(terms(query))
    for position, row in rows.items():
        cosine = cosines.get(position, float("nan"))
        if cosine != cosine:  # NaN: not scored yet; the record's unit vectors give the exact cosine
            cosine = float(np.frombuffer(row["embedding"], dtype=np.float32) @ vector)
        candidates.append(
            Candidate(
                position,
                cosine,
                lexical.get(position),
                names_speaker(words, row["speaker"]),
                proximity(row["event_time"], periods),
            )
        )
    ranked = rank(candidates, {p: r["text"] for p, r in rows.items()}, query, top_k, rerank)
    return SearchOutcome([(row_memory(rows[p]), score) for p, score in ranked], len(candidates))

"""Hybrid candidate generation for one search: scope-filtered vector kNN and scope-filtered BM25, then the
score contract of :mod:`memory_plugin.retrieval`.

Vector candidates come from an exact scan of the record's embeddings when few memories match the filter (the
usual case: one user's memories), and from the Chroma index when many do: Chroma's filtered kNN costs time in
proportion to the matching set, while a broad filter is served faster by an unfiltered query that over-fetches
and is then filtered by the record.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from .filters import ReadFilter, index_where, memory_sql
from .models import Memory
from .retrieval import Candidate, match_expression, query_terms, rank
from .storage.record import Record, embedding_matrix, row_memory
from .storage.vector_index import VectorIndex

# At or below this many matching memories the record is scanned exactly (measured in benchmarks/engine.py).
EXACT_SCAN_LIMIT = 4000
# Share of the store a filter must cover for an unfiltered, over-fetching index query to be used.
BROAD_FILTER_SHARE = 0.5
_SCAN_BATCH = 5000


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[tuple[Memory, float]]
    candidates: int


def _top(scores: np.ndarray, positions: list[int], n: int) -> dict[int, float]:
    keep = np.argpartition(-scores, n - 1)[:n] if len(positions) > n else np.arange(len(positions))
    return {positions[i]: float(scores[i]) for i in keep}


def _exact_scan(
    conn: sqlite3.Connection, where: str, params: list[object], vector: np.ndarray, pool: int
) -> dict[int, float]:
    """Cosine of every matching memory, keeping the ``pool`` best; memory stays bounded by batching."""
    best: dict[int, float] = {}
    cursor = conn.execute(f"SELECT m.seq, m.embedding FROM memories m WHERE {where}", params)
    while rows := cursor.fetchmany(_SCAN_BATCH):
        matrix = embedding_matrix([r[1] for r in rows], len(vector))
        best.update(_top(matrix @ vector, [int(r[0]) for r in rows], pool))
        if len(best) > pool:
            best = dict(sorted(best.items(), key=lambda kv: -kv[1])[:pool])
    return best


def _lexical(conn: sqlite3.Connection, where: str, params: list[object], query: str, pool: int) -> dict[int, float]:
    expression = match_expression(query_terms(query))
    if expression is None:
        return {}
    rows = conn.execute(
        "SELECT m.seq, -bm25(memories_fts) FROM memories_fts JOIN memories m ON m.seq = memories_fts.rowid"
        f" WHERE memories_fts MATCH ? AND {where} ORDER BY bm25(memories_fts) LIMIT ?",
        [expression, *params, pool],
    ).fetchall()
    return {int(seq): float(score) for seq, score in rows}


def hybrid_search(
    record: Record, index: VectorIndex, read: ReadFilter, query: str, vector: np.ndarray, top_k: int, rerank: bool
) -> SearchOutcome:
    """The ``top_k`` best memories allowed by ``read`` for ``query``, with scores per the score contract."""
    pool = max(top_k * 4, 40)
    where, params = memory_sql(read)
    with record.reading() as conn:
        matching = int(conn.execute(f"SELECT count(*) FROM memories m WHERE {where}", params).fetchone()[0])
        if matching == 0:
            return SearchOutcome([], 0)
        total = int(conn.execute("SELECT count(*) FROM memories WHERE store_id = ?", (read.store_id,)).fetchone()[0])
        vector_hits = _exact_scan(conn, where, params, vector, pool) if matching <= EXACT_SCAN_LIMIT else None
    if vector_hits is None:
        positions = _index_positions(index, read, vector, pool, matching, total)
        if positions is None:  # index busy rebuilding: the record answers exactly, only slower
            with record.reading() as conn:
                vector_hits = _exact_scan(conn, where, params, vector, pool)
        else:
            vector_hits = {p: float("nan") for p in positions}
    with record.reading() as conn:
        lexical_hits = _lexical(conn, where, params, query, pool)
        wanted = sorted(set(vector_hits) | set(lexical_hits))
        rows: dict[int, sqlite3.Row] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT * FROM memories m WHERE m.seq IN ({marks}) AND {where}", [*chunk, *params]
            ):
                rows[int(row["seq"])] = row
    # Cosine is recomputed from the record's unit vectors, so index results (possibly stale) are scored exactly.
    candidates = []
    for position, row in rows.items():
        cosine = vector_hits.get(position, float("nan"))
        if cosine != cosine:  # NaN: not known yet
            cosine = float(np.frombuffer(row["embedding"], dtype=np.float32) @ vector)
        candidates.append(Candidate(position, cosine, lexical_hits.get(position)))
    ranked = rank(candidates, {p: r["text"] for p, r in rows.items()}, query, top_k, rerank)
    return SearchOutcome([(row_memory(rows[p]), score) for p, score in ranked], len(candidates))


def _index_positions(
    index: VectorIndex, read: ReadFilter, vector: np.ndarray, pool: int, matching: int, total: int
) -> list[int] | None:
    if matching >= BROAD_FILTER_SHARE * total:
        # Unfiltered and over-fetched so that about 1.5 x pool of the results pass the record's filter afterwards.
        return index.query(read.store_id, vector, min(total, int(pool * total / matching * 1.5) + 1), None)
    return index.query(read.store_id, vector, pool, index_where(read))

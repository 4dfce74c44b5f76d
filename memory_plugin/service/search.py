"""Hybrid candidate generation for one search: scope-filtered vector kNN and scope-filtered BM25, then the
score contract of :mod:`memory_plugin.retrieval`.

Vector candidates come from the record's in-memory embedding matrix for a store it holds (near-exact at any scope
size), else from an exact scan of the record when few memories match the filter (the usual case: one user's
memories), and else from the Chroma index. Chroma's filtered kNN costs time in proportion to the matching set
(50-100 ms at 100k rows here), so the index is first asked without a filter for more results than needed, which the
record then filters; only when too few survive is the filtered query used.

Keyword candidates come from the record's full-text index (BM25), restricted to the scope (over every tenant or one
large tenant, only terms few memories hold nominate them); every candidate gets its BM25 on every query term,
whichever retriever found it, so that its score does not depend on the depth of the keyword pool. When the query
names a period ("on 9 May, 2023"), the memories from around then are candidates too (when they are few enough to
scan), so the ``date`` signal can lift a memory that neither retriever ranked high. Only the hits are read whole
from the record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from ..filters import ReadFilter
from ..models import Memory
from ..query_time import Period, proximity, reach
from ..retrieval import ASSISTANT, Candidate, names_speaker, query_terms, rank, terms
from ..retrieval import explain as explain_signals
from ..scope import WILDCARD
from ..settings import Settings
from ..storage.base import CandidateRow, RecordReader, RecordStore, Vector, VectorIndex

# Candidates per search, at least: the best by vector and the best by keyword (more for a larger ``top_k``). Deeper
# pools than 40 / 60 lifted LoCoMo recall@10 from 0.796 to 0.802 at top_k=10 (benchmarks/locomo.py).
VECTOR_POOL = 80
KEYWORD_POOL = 120
# How many times the wanted candidates an unfiltered index query asks for before the record filters them.
OVER_FETCH = 2
# The full-text search uses at most this many distinct query terms, in query order: each term costs a posting
# list walk, and 4,000 CJK characters make about 4,000 bigrams. Questions have far fewer.
MAX_QUERY_TERMS = 64
# In a large scope (every tenant, or one holding more than LARGE_SCOPE memories), a term more than this many memories
# hold does not nominate keyword candidates: the full-text index would score every one of its matches (a first name
# common at 100k memories matched 30,000 rows: 22 ms; at 10k, terms held by up to 2,000 rows still cost 4.6 ms of a
# search), and a term that common says little of which memory is meant. It still counts in every candidate's BM25.
COMMON_TERM_ROWS = 500
# A scope of one tenant up to this many memories (one user's) takes keyword candidates from every query term: its
# matches are few whatever the term. LoCoMo's and PrefEval's scopes stay under it.
LARGE_SCOPE = 5000


@dataclass(frozen=True)
class SearchOutcome:
    hits: list[tuple[Memory, float]]
    candidates: int
    signals: list[dict[str, float]] | None = None  # per hit, when asked to explain


def search_terms(query: str) -> list[str]:
    """The terms the full-text search looks for: the query's distinct content terms in order, at most
    ``MAX_QUERY_TERMS``."""
    return query_terms(query)[:MAX_QUERY_TERMS]


def _around_periods(
    reader: RecordReader, read: ReadFilter, periods: Sequence[Period], vector: Vector, pool: int, limit: int
) -> dict[int, float]:
    """Cosines of the ``pool`` best memories whose event time is near a named period; none when a period holds
    more memories than an exact scan takes (a whole year of a large store), as the date then tells little."""
    best: dict[int, float] = {}
    for start, end in reach(periods):
        near = dataclasses.replace(
            read,
            start_time=_later(read.start_time, start),
            end_time=_earlier(read.end_time, end),
        )
        if 0 < reader.count(near, limit + 1) <= limit:
            best.update(reader.nearest(near, vector, pool) or {})
    return best


def _later(bound: datetime | None, seconds: float) -> datetime:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment if bound is None else max(bound, moment)


def _earlier(bound: datetime | None, seconds: float) -> datetime:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment if bound is None else min(bound, moment)


def _index_positions(
    record: RecordStore, index: VectorIndex, read: ReadFilter, vector: Vector, pool: int
) -> list[int] | None:
    """Vector candidates from the index: first unfiltered with over-fetching, filtered by the record; only when too
    few survive, the index's filtered query (which costs time in proportion to the matching set)."""
    positions = index.query(read.store_id, vector, pool * OVER_FETCH, None)
    if positions is None:
        return None
    with record.read() as reader:
        inside = reader.inside(read, positions)
    if len(inside) >= pool:
        return [p for p in positions if p in inside]
    return index.query(read.store_id, vector, pool, read)


def _nominating(reader: RecordReader, read: ReadFilter, wanted: list[str]) -> list[str]:
    """The terms whose matches are keyword candidates: all of them in a scope of one tenant's memories up to
    :data:`LARGE_SCOPE`; in a larger scope or one over every tenant, only those held by at most
    :data:`COMMON_TERM_ROWS` memories."""
    if not wanted:
        return wanted
    if read.scope.tenant_id != WILDCARD and reader.count(read, LARGE_SCOPE + 1) <= LARGE_SCOPE:
        return wanted
    held = reader.holding(wanted)
    return [term for term in wanted if held.get(term, 0) <= COMMON_TERM_ROWS]


def _turn(row: CandidateRow) -> str | None:
    """The message a turn memory was made from: memories of one turn are alternatives, of which a search returns
    the best (see :class:`memory_plugin.TurnExtractor`)."""
    if row.memory_type != "message" or len(row.source_message_ids) != 1:
        return None
    return row.source_message_ids[0]


def hybrid_search(
    record: RecordStore, index: VectorIndex, read: ReadFilter, query: str, vector: Vector, top_k: int, rerank: bool,
    settings: Settings, periods: Sequence[Period] = (), explain: bool = False,
) -> SearchOutcome:  # fmt: skip
    """The ``top_k`` best memories allowed by ``read`` for ``query`` (which names ``periods``), with scores per the
    score contract."""
    # Keyword search gets a deeper pool: on LoCoMo it finds more of the evidence than the embedding does.
    pool, lexical_pool = max(top_k * 4, VECTOR_POOL), max(top_k * 6, KEYWORD_POOL)
    limit = settings.exact_scan_limit
    with record.read() as reader:  # exact: from memory at any size, or a scan of a few thousand from the record
        cosines = reader.nearest(read, vector, pool, scan_limit=limit)
    if cosines is None:  # too many to scan and not held in memory: the vector index answers
        positions = _index_positions(record, index, read, vector, pool)
        if positions is None:  # the index is being rebuilt: the record answers exactly, only slower
            with record.read() as reader:
                cosines = reader.nearest(read, vector, pool) or {}
        else:
            cosines = dict.fromkeys(positions, float("nan"))
    elif not cosines:
        return SearchOutcome([], 0)
    with record.read() as reader:  # one read: the hits are whole memories from the same snapshot
        if periods:
            cosines.update(_around_periods(reader, read, periods, vector, pool, max(limit, 1)))
        wanted_terms = search_terms(query)
        nominating = _nominating(reader, read, wanted_terms)
        found = reader.keyword(read, nominating, lexical_pool)
        lexical = found if nominating == wanted_terms else {}  # else scored below, on every term
        rows = reader.candidates(read, set(cosines) | set(found))
        lexical.update(reader.keyword_of(read, wanted_terms, [p for p in rows if p not in lexical]))
        words = set(terms(query))
        candidates = [_candidate(row, cosines, lexical, words, vector, periods) for row in rows.values()]
        texts = {p: r.text for p, r in rows.items()}
        ranked = rank(candidates, texts, top_k, rerank)
        memories = reader.rows(read, [p for p, _ in ranked])
    hits = [(memories[p].memory, score) for p, score in ranked]
    if not explain:
        return SearchOutcome(hits, len(candidates))
    by_position = {c.position: c for c in candidates}
    signals = [{**explain_signals(by_position[p], texts[p]), "score": s} for p, s in ranked]
    return SearchOutcome(hits, len(candidates), signals)


def _candidate(
    row: CandidateRow, cosines: dict[int, float], lexical: dict[int, float], words: set[str], vector: Vector,
    periods: Sequence[Period],
) -> Candidate:  # fmt: skip
    cosine = cosines.get(row.position, float("nan"))
    if cosine != cosine:  # NaN: not scored yet; the record's unit vectors give the exact cosine
        cosine = float(np.asarray(row.embedding, dtype=np.float32) @ vector)
    return Candidate(
        row.position,
        cosine,
        lexical.get(row.position),
        names_speaker(words, row.speaker),
        proximity(row.event_time, periods),
        row.speaker == ASSISTANT,
        _turn(row),
    )

"""The SQLite record computes the BM25 of the vector side's candidates itself, from the full-text index's own
statistics (``storage/sqlite/keywords.py``), instead of asking FTS5 one row at a time: the scores must be FTS5's,
to the last bit that matters, after inserts, updates and deletes, for stems, diacritics and CJK bigrams."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_plugin import Embedder, MemoryClient
from memory_plugin.filters import ReadFilter
from memory_plugin.service.search import search_terms
from memory_plugin.storage.sqlite import SqliteRecord, keywords
from tests.conftest import KEYWORD_QUERIES, KEYWORD_TEXTS, SCOPE
from tests.internals import service

TEXTS = (*KEYWORD_TEXTS, "Nothing here shares a word with any question")
QUERIES = (*KEYWORD_QUERIES, "running running", "nothing matches xyzzy")


def _scores(owner: MemoryClient, query: str) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """Computed here, asked of FTS5 row by row, and FTS5's own ranking of every match."""
    record = service(owner).folder.record
    assert isinstance(record, SqliteRecord)
    with record.read() as reader:
        store = reader.store("keywords")
        assert store is not None
        read = ReadFilter(store.id, SCOPE.with_(agent_id="*", run_id="*"))
        positions = reader.inside(read, range(1, 10_000))
        terms = search_terms(query)
        return (reader.keyword_of(read, terms, positions), reader._keyword_by_row(terms, positions),
                reader.keyword(read, terms, 10_000))  # fmt: skip


def test_computed_bm25_is_fts5s_after_inserts_updates_and_deletes(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("keywords")
        written = [store.add(SCOPE, text=text).memories[0] for text in TEXTS]
        for stage in ("written", "changed"):
            if stage == "changed":
                store.update(SCOPE, written[0].id, text="The user drinks strong coffee every single morning")
                store.delete(SCOPE, written[5].id)
                store.add(SCOPE, text="Another runner ran a marathon with coffee")
            for query in QUERIES:
                computed, by_row, ranked = _scores(client, query)
                assert computed.keys() == by_row.keys() == ranked.keys(), (stage, query)
                for position, value in by_row.items():
                    assert computed[position] == pytest.approx(value, rel=1e-12), (stage, query)
        assert len(_scores(client, "coffee")[0]) == 3


def test_a_term_fts5_reads_as_a_phrase_is_scored_by_fts5(tmp_path: Path, fake_embedder: Embedder) -> None:
    # A New Tai Lue vowel sign is a letter to Python and a separator to SQLite's tokenizer: the query term is two
    # tokens, a phrase, which only FTS5 scores.
    phrase = "ab\u19b0cd"
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("keywords")
        for text in ("ab cd", "cd ab", "ab", phrase):
            store.add(SCOPE, text=text)
        record = service(client).folder.record
        with record.read() as reader:
            assert keywords.scores(reader._conn, [phrase], {1, 2, 3, 4}) is None
        computed, by_row, _ = _scores(client, phrase)
    assert computed == by_row and computed

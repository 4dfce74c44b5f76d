"""The SQLite record computes the BM25 of the vector side's candidates itself, from the full-text index's own
statistics (``storage/sqlite/keywords.py``), instead of asking FTS5 one row at a time: the scores must be FTS5's,
to the last bit that matters, after inserts, updates and deletes, for stems, diacritics and CJK bigrams."""

from __future__ import annotations

import sqlite3
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


def _kept(folder: Path) -> tuple[dict[str, int], dict[str, int], dict[int, int], dict[int, int]]:
    """What the record keeps beside the full-text index (each term's row count, each row's length) and the same as
    FTS5 counts it (an ``fts5vocab`` table, the docsize records)."""
    with sqlite3.connect(folder / "memory.db") as db:
        db.execute("CREATE VIRTUAL TABLE temp.counted USING fts5vocab(main, 'memories_fts', 'row')")
        sizes = {
            seq: sum(keywords.varints(size)) for seq, size in db.execute("SELECT id, sz FROM memories_fts_docsize")
        }
        return (dict(db.execute("SELECT term, documents FROM keyword_terms")),
                dict(db.execute("SELECT term, doc FROM temp.counted")),
                dict(db.execute("SELECT seq, length FROM keyword_rows")), sizes)  # fmt: skip


def test_what_is_kept_beside_the_index_stays_fts5s_after_every_write(tmp_path: Path, fake_embedder: Embedder) -> None:
    other_tenant = SCOPE.with_(tenant_id="user-002")
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("keywords")
        written = [store.add(SCOPE, text=text).memories[0] for text in TEXTS]
        store.add(SCOPE, messages=[{"role": "user", "content": "Coffee again, said Zoë", "name": "Zoë"}])
        for text in TEXTS[:4]:
            store.add(other_tenant, text=text)
        doomed = client.create_memory_store("doomed")
        doomed.add(SCOPE, text="A store that goes away, with its own coffee")
        writes = [
            lambda: store.update(SCOPE, written[0].id, text="The user drinks strong coffee every single morning"),
            lambda: store.update(SCOPE, written[1].id, metadata={"topic": "jokes"}),
            lambda: store.delete(SCOPE, written[2].id),
            lambda: store.delete_all(other_tenant),
            lambda: client.delete_memory_store("doomed"),
            lambda: store.delete_all(SCOPE),
        ]
        kept, counted, lengths, sizes = _kept(tmp_path)
        assert kept == counted and kept["coffe"] >= 5 and lengths == sizes
        for write in writes:
            write()
            kept, counted, lengths, sizes = _kept(tmp_path)
            assert kept == counted and lengths == sizes
    assert kept == {} and lengths == {}


def test_a_version_3_record_gets_what_is_kept_beside_the_index(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("keywords")
        for text in TEXTS:
            store.add(SCOPE, text=text)
    with sqlite3.connect(tmp_path / "memory.db") as db:  # version 3: nothing kept beside the full-text index
        db.execute("DROP TABLE keyword_terms")
        db.execute("DROP TABLE keyword_rows")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        kept, counted, lengths, sizes = _kept(tmp_path)
        assert kept == counted and len(kept) > 20 and lengths == sizes
        computed, by_row, _ = _scores(client, "coffee running")
        assert computed == pytest.approx(by_row, rel=1e-12) and computed

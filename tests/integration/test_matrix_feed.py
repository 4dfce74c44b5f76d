"""The matrix feed over a real SQLite record: after any writes (the record's own writer, which logs every change),
its answers are those of an exact scan of the record; the vector index trims only the log entries the feed has
applied, and entries lost anyway make the feed load the store again; a store over the memory bound answers None."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugin import Scope
from memory_plugin.filters import ReadFilter
from memory_plugin.storage.base import MemoryRow, NewMemoryRecord
from memory_plugin.storage.chroma import ChromaIndex
from memory_plugin.storage.sqlite import SqliteRecord
from memory_plugin.storage.sqlite.matrix_feed import TRIMMED, MatrixFeed
from memory_plugin.storage.sqlite.reader import SqliteReader

DIMENSION = 8
TENANTS = ("ann", "bob", "cy")
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def new_record(folder: Path, max_memories: int = 200_000, quantized: bool = False) -> tuple[SqliteRecord, int]:
    record = SqliteRecord(folder / "memory.db", vector_memory_limit=0)
    record.feed = MatrixFeed(record.connections, max_memories, quantized=quantized)
    with record.write() as tx:
        store = tx.create_store("s", "", "fake", DIMENSION, None, None)
    return record, store.id


def feed_of(record: SqliteRecord) -> MatrixFeed:
    assert record.feed is not None
    return record.feed


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return v / np.linalg.norm(v)


def add(record: SqliteRecord, store_id: int, tenant: str, seed: int, source: str = "chat") -> None:
    new = NewMemoryRecord(
        text=f"memory {seed}", memory_type="fact" if seed % 3 else "event", metadata={"source": source},
        event_time=WHEN + timedelta(days=seed % 5), source_message_ids=[], embedding=vector(seed),
    )  # fmt: skip
    with record.write() as tx:
        tx.insert_memory(store_id, Scope("app", tenant, "agent", f"run-{seed % 2}"), new, "r")


def all_rows(record: SqliteRecord, store_id: int) -> list[MemoryRow]:
    with record.read() as reader:
        return reader.store_memories(store_id, 0, 10_000)


def exact(record: SqliteRecord, read: ReadFilter, query: np.ndarray, k: int) -> dict[int, float]:
    """The reference: every memory the filter allows, scanned from the record (no matrix)."""
    with record.connections.reading() as conn:
        found = SqliteReader(conn).nearest(read, query, k)
    assert found is not None
    return found


def assert_same(found: dict[int, float] | None, expected: dict[int, float]) -> None:
    assert found is not None
    assert len(found) == len(expected)
    if expected:  # ties may go either way: compare scores, not positions
        assert sorted(found.values()) == pytest.approx(sorted(expected.values()), abs=1e-6)


def reads(store_id: int) -> list[ReadFilter]:
    return [
        ReadFilter(store_id, Scope("app", "ann", "*", "*")),
        ReadFilter(store_id, Scope("app", "*", "*", "*")),
        ReadFilter(store_id, Scope("app", ["bob", "cy"], "*", "run-1"), memory_types=("fact",)),
        ReadFilter(store_id, Scope("app", "*", "agent", "*"), metadata={"source": ("mail",)}),
        ReadFilter(store_id, Scope("app", "bob", "*", "*"), start_time=WHEN + timedelta(days=1)),
        ReadFilter(store_id, Scope("app", "*", "*", "*"), start_time=WHEN, end_time=WHEN + timedelta(days=2)),
    ]


writes = st.lists(
    st.tuples(st.sampled_from(("add", "add", "update", "delete", "forget")), st.integers(0, 10**6)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(writes, min_size=1, max_size=4), query_seed=st.integers(0, 1000))
def test_answers_like_an_exact_scan_of_the_record_after_any_writes(
    batches: list[list[tuple[str, int]]], query_seed: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        record, store_id = new_record(Path(folder))
        feed = feed_of(record)
        query = vector(query_seed)
        for batch in batches:
            for kind, seed in batch:
                rows = all_rows(record, store_id)
                if kind == "add" or not rows:
                    add(record, store_id, TENANTS[seed % 3], seed, "mail" if seed % 4 == 0 else "chat")
                    continue
                row = rows[seed % len(rows)]
                with record.write() as tx:
                    if kind == "update":
                        tx.update_memory(
                            row, text="changed", metadata={"source": "mail"}, event_time=None, embedding=vector(seed),
                            request_id="r",
                        )  # fmt: skip
                    elif kind == "delete":
                        tx.delete_memory(row, "r")
                    else:
                        tx.forget(store_id, Scope("app", row.memory.scope.tenant_id, "*", "*"))
            for read in reads(store_id):
                assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
                with record.read() as reader, record.connections.reading() as conn:  # from memory; from the record
                    assert reader.count(read, 10_000) == SqliteReader(conn).count(read, 10_000)
        record.close()


def log_size(record: SqliteRecord) -> int:
    with record.connections.reading() as conn:
        return int(conn.execute("SELECT count(*) FROM index_log").fetchone()[0])


def test_the_index_trims_only_what_the_feed_applied_and_a_lost_entry_reloads_the_store(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path)
    feed = feed_of(record)
    for seed in range(20):
        add(record, store_id, "ann", seed)
    read, query = reads(store_id)[1], vector(99)
    assert feed.log_needed_after is None  # no store held: the index may delete the whole log
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    index = ChromaIndex(tmp_path, record)
    index.catch_up()  # the index is built and trims the log the feed applied
    assert log_size(record) == 0
    best = next(row for row in all_rows(record, store_id) if row.position == next(iter(exact(record, read, query, 1))))
    with record.write() as tx:
        tx.delete_memory(best, "r")
    index.catch_up()  # Chroma applies the deletion, but keeps the entry the feed has not applied yet
    assert log_size(record) == 1
    assert best.position not in (feed.nearest(read, query, 5) or {})
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    add(record, store_id, "bob", 500)
    feed.nearest(read, query, 5)
    index.catch_up()  # the next change trims what the feed applied since
    assert log_size(record) == 0
    nearest = next(
        row for row in all_rows(record, store_id) if row.position == next(iter(exact(record, read, query, 1)))
    )
    with record.write() as tx:  # an entry lost before the feed saw it (as a crash between trims could leave it)
        tx.delete_memory(nearest, "r")
    with record.connections.transaction() as conn:
        last = conn.execute("SELECT max(seq) FROM index_log").fetchone()[0]
        conn.execute("DELETE FROM index_log")
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (TRIMMED, str(last)))
    assert nearest.position not in (feed.nearest(read, query, 5) or {})  # loaded again from the record
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    index.close()
    record.close()


def test_a_store_over_the_bound_answers_none_until_it_fits(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path, max_memories=10)
    feed = feed_of(record)
    for seed in range(12):
        add(record, store_id, "ann", seed)
    read, query = reads(store_id)[0], vector(1)
    assert feed.nearest(read, query, 5) is None  # the caller asks the vector index instead
    with record.write() as tx:
        for row in all_rows(record, store_id)[:2]:
            tx.delete_memory(row, "r")
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    add(record, store_id, "bob", 100)  # 11: over the bound again, let go
    assert feed.nearest(read, query, 5) is None
    record.close()


def test_a_quantized_feed_rescores_from_the_record(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path, quantized=True)
    feed = feed_of(record)
    for seed in range(300):
        add(record, store_id, TENANTS[seed % 3], seed)
    for read in reads(store_id):
        query = vector(7)
        found, expected = feed.nearest(read, query, 10), exact(record, read, query, 10)
        assert found is not None
        for seq, score in found.items():  # every score is the exact cosine
            assert score == pytest.approx(float(np.frombuffer(_embedding(record, seq), np.float32) @ query), abs=1e-6)
        assert len(set(found) & set(expected)) >= 0.9 * len(expected)
    record.close()


def _embedding(record: SqliteRecord, seq: int) -> bytes:
    with record.connections.reading() as conn:
        return bytes(conn.execute("SELECT embedding FROM memories WHERE seq = ?", (seq,)).fetchone()[0])


def test_a_write_transaction_that_rolls_back_teaches_the_feed_nothing(tmp_path: Path) -> None:
    """Log positions a rolled-back transaction used are given out again: had the feed read them inside that
    transaction, it would skip the committed changes that reuse them."""
    record, store_id = new_record(tmp_path)
    feed = feed_of(record)
    add(record, store_id, "ann", 1)
    read, query = reads(store_id)[1], vector(2)
    feed.nearest(read, query, 5)  # the store is held
    new = NewMemoryRecord(
        text="rolled back", memory_type="fact", metadata={}, event_time=WHEN, source_message_ids=[],
        embedding=vector(3),
    )  # fmt: skip
    with pytest.raises(RuntimeError), record.write() as tx:
        tx.insert_memory(store_id, Scope("app", "ann", "agent", "r"), new, "r")
        assert tx.nearest(read, query, 5)  # the transaction sees its own write, from the record
        raise RuntimeError("roll back")
    add(record, store_id, "bob", 2)  # committed, at the log position the rolled-back write had
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    assert len(feed.nearest(read, query, 5) or {}) == 2
    record.close()

"""The matrix feed over a real SQLite record: after any writes (the engine's own write functions, which log every
change), its answers are those of an exact scan of the record, even when the vector index deleted log entries
first; a store over the memory bound answers None."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugin import Scope
from memory_plugin.filters import ReadFilter, memory_sql
from memory_plugin.forgetting import forget_scope
from memory_plugin.storage.matrix_feed import MatrixFeed
from memory_plugin.storage.record import Record, now
from memory_plugin.storage.vector_index import VectorIndex
from memory_plugin.writes import delete_memory, insert_memory, update_memory

DIMENSION = 8
TENANTS = ("ann", "bob", "cy")
WHEN = datetime(2024, 5, 1, tzinfo=timezone.utc)


def new_record(folder: Path) -> tuple[Record, int]:
    record = Record(folder / "memory.db")
    with record.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO stores (name, description, embedder, dimension, created_at) VALUES ('s', '', 'fake', ?, ?)",
            (DIMENSION, now()),
        )
    return record, int(cursor.lastrowid or 0)


def vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)
    return v / np.linalg.norm(v)


def add(record: Record, store_id: int, tenant: str, seed: int, source: str = "chat") -> None:
    with record.transaction() as conn:
        insert_memory(
            conn,
            store_id,
            Scope("app", tenant, "agent", f"run-{seed % 2}"),
            text=f"memory {seed}",
            memory_type="fact" if seed % 3 else "event",
            metadata={"source": source},
            event_time=WHEN,
            source_message_ids=[],
            embedding=vector(seed),
            request_id="r",
        )


def exact(record: Record, read: ReadFilter, query: np.ndarray, k: int) -> dict[int, float]:
    """The reference: every memory the filter allows, read from the record and scored."""
    where, params = memory_sql(read)
    with record.reading() as conn:
        rows = conn.execute(f"SELECT m.seq, m.embedding FROM memories m WHERE {where}", params).fetchall()
    scores = {int(r[0]): float(np.frombuffer(r[1], np.float32) @ query) for r in rows}
    return dict(sorted(scores.items(), key=lambda kv: -kv[1])[:k])


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
        feed = MatrixFeed(record)
        query = vector(query_seed)
        for batch in batches:
            for kind, seed in batch:
                with record.reading() as conn:
                    rows = conn.execute("SELECT * FROM memories ORDER BY seq").fetchall()
                if kind == "add" or not rows:
                    add(record, store_id, TENANTS[seed % 3], seed, "mail" if seed % 4 == 0 else "chat")
                    continue
                row = rows[seed % len(rows)]
                with record.transaction() as conn:
                    if kind == "update":
                        update_memory(
                            conn,
                            row,
                            text="changed",
                            metadata={"source": "mail"},
                            event_time=None,
                            embedding=vector(seed),
                            request_id="r",
                        )
                    elif kind == "delete":
                        delete_memory(conn, row, "r")
                    else:
                        forget_scope(conn, store_id, Scope("app", row["tenant_id"], "*", "*"))
            for read in reads(store_id):
                assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
        record.close()


def test_log_entries_the_index_deleted_first_make_the_feed_load_the_store_again(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path)
    feed = MatrixFeed(record)
    for seed in range(20):
        add(record, store_id, "ann", seed)
    read, query = reads(store_id)[1], vector(99)
    assert feed.log_needed_after is None  # no store held: the index may delete the whole log
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    with record.reading() as conn:
        assert feed.log_needed_after == conn.execute("SELECT max(seq) FROM index_log").fetchone()[0]
    index = VectorIndex(tmp_path, record)
    index.catch_up()  # the index is built (a first build keeps the log)
    with record.reading() as conn:
        best = conn.execute("SELECT * FROM memories WHERE seq = ?", (next(iter(exact(record, read, query, 1))),))
        row = best.fetchone()
    with record.transaction() as conn:
        delete_memory(conn, row, "r")
    index.catch_up()  # Chroma applies the deletion and deletes its log entry, before the feed saw it
    index.close()
    with record.reading() as conn:
        assert conn.execute("SELECT count(*) FROM index_log").fetchone()[0] == 0
    assert row["seq"] not in (feed.nearest(read, query, 5) or {})
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    record.close()


def test_a_store_over_the_bound_answers_none_until_it_fits(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path)
    feed = MatrixFeed(record, max_memories=10)
    for seed in range(12):
        add(record, store_id, "ann", seed)
    read, query = reads(store_id)[0], vector(1)
    assert feed.nearest(read, query, 5) is None  # the caller asks the vector index instead
    with record.transaction() as conn:
        for row in conn.execute("SELECT * FROM memories ORDER BY seq LIMIT 2").fetchall():
            delete_memory(conn, row, "r")
    assert_same(feed.nearest(read, query, 5), exact(record, read, query, 5))
    add(record, store_id, "bob", 100)  # 11: over the bound again, let go
    assert feed.nearest(read, query, 5) is None
    record.close()


def test_a_quantized_feed_rescores_from_the_record(tmp_path: Path) -> None:
    record, store_id = new_record(tmp_path)
    feed = MatrixFeed(record, quantized=True)
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


def _embedding(record: Record, seq: int) -> bytes:
    with record.reading() as conn:
        return bytes(conn.execute("SELECT embedding FROM memories WHERE seq = ?", (seq,)).fetchone()[0])

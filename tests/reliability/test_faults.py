"""Faults: SIGKILL at random points (during extraction and during the index repair on reopen), an embedder that
fails mid-batch, a full disk and a read-only record. Each ends in a clear error or a clean recovery; nothing
acknowledged is lost, nothing half-written is visible, the data folder does not grow without bound."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import Embedder, EmbeddingError, MemoryClient, MemoryStore, StorageError
from memory_plugin.service import worker
from memory_plugin.storage.chroma import ChromaIndex
from tests.conftest import SCOPE, fake_vectors, make_fake_embedder, turn
from tests.internals import sqlite_writer, totals
from tests.reliability.crash import crash_trial


def test_sigkill_at_random_points_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "data"
    sizes = []
    for trial in range(3):
        result = crash_trial(path, rng, kill_repair=trial > 0)
        assert result.lost == 0
        assert result.index_folders == 1
        sizes.append(result.size)
    assert sizes[-1] < 50_000_000  # a few hundred small writes: no leftover index generations or runaway WAL


class FlakyEmbedder:
    """The fake embedder, failing on the n-th text it is given (a crash in the middle of a batch)."""

    def __init__(self) -> None:
        self.fail_at: int | None = None
        self.seen = 0

    def __call__(self, texts: list[str]) -> list[list[float]]:
        for _ in texts:
            self.seen += 1
            if self.fail_at is not None and self.seen >= self.fail_at:
                raise RuntimeError("embedding service went away")
        return fake_vectors(texts)


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[MemoryStore, FlakyEmbedder]]:
    function = FlakyEmbedder()
    with MemoryClient(path=tmp_path, embedder=Embedder(function, name="fake-hash-256", dimension=256)) as client:
        yield client.create_memory_store("flaky"), function


def counts(store: MemoryStore) -> tuple[int, int, int]:
    found = totals(store)
    return found["memories"], found["messages"], found["history"]


def test_embedder_failing_mid_batch_writes_nothing(flaky: tuple[MemoryStore, FlakyEmbedder]) -> None:
    store, embedder = flaky
    store.add(SCOPE, text="first memory about tea")
    before = counts(store)
    embedder.fail_at = embedder.seen + 2  # the second of three turns
    with pytest.raises(EmbeddingError):
        store.add(SCOPE, messages=[turn("user", "one coffee"), turn("assistant", "two tea"), turn("user", "three")])
    memory_id = store.list(SCOPE).items[0].id
    with pytest.raises(EmbeddingError):
        store.update(SCOPE, memory_id, text="changed text")
    with pytest.raises(EmbeddingError):
        store.search(SCOPE, "tea")
    assert counts(store) == before
    assert store.get(SCOPE, memory_id).text == "first memory about tea"
    embedder.fail_at = None  # the embedder recovers: so does the store
    store.add(SCOPE, messages=[turn("user", "one coffee"), turn("assistant", "two tea")])
    assert {h.memory.text for h in store.search(SCOPE, "coffee tea", top_k=5)} >= {"one coffee", "two tea"}


def test_embedder_failing_in_background_keeps_the_messages(flaky: tuple[MemoryStore, FlakyEmbedder]) -> None:
    store, embedder = flaky
    embedder.fail_at = embedder.seen + 1
    result = store.add(SCOPE, messages=[turn("user", "background coffee")], sync=False)
    assert [m.id for m in store.messages(SCOPE).items] == result.message_ids  # acknowledged = durably stored
    embedder.fail_at = None
    assert store.flush(timeout=60)  # retried with back-off, then extracted
    assert [m.text for m in store.list(SCOPE).items] == ["background coffee"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MemoryStore]:
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        yield client.create_memory_store("disk")


def test_full_disk_is_a_clear_error_and_the_store_recovers(store: MemoryStore) -> None:
    """``PRAGMA max_page_count`` makes SQLite itself answer SQLITE_FULL, as a full disk does."""
    store.add(SCOPE, text="kept before the disk filled")
    conn = sqlite_writer(store)
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(StorageError, match="full"):
        for i in range(100):
            store.add(SCOPE, messages=[turn("user", f"big {i} " + "word " * 3000)] * 3)
    texts = [m.text for m in store.list(SCOPE, limit=100).items]
    assert all(t == "kept before the disk filled" or t.startswith("big ") for t in texts)
    assert len(store.messages(SCOPE, limit=100).items) == 3 * (len(texts) - 1)  # messages and memories together
    store.search(SCOPE, "kept disk")  # reads still work
    conn.execute("PRAGMA max_page_count = 1073741823")  # space is freed
    store.add(SCOPE, text="written after space was freed")
    assert "written after space was freed" in [m.text for m in store.list(SCOPE, limit=100).items]


def test_read_only_record_is_a_clear_error(store: MemoryStore) -> None:
    store.add(SCOPE, text="readable")
    conn = sqlite_writer(store)
    conn.execute("PRAGMA query_only = 1")
    try:
        before = counts(store)
        with pytest.raises(StorageError):
            store.add(SCOPE, text="refused")
        with pytest.raises(StorageError):
            store.delete(SCOPE, store.list(SCOPE).items[0].id)
        assert counts(store) == before
    finally:
        conn.execute("PRAGMA query_only = 0")
    assert [m.text for m in store.list(SCOPE).items] == ["readable"]


def test_data_folder_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create the data folder"):
        MemoryClient(path=blocker / "data", embedder=make_fake_embedder())
    (tmp_path / "odd" / "memory.db").mkdir(parents=True)  # the record's path is taken by a folder
    with pytest.raises(StorageError, match="cannot open the record"):
        MemoryClient(path=tmp_path / "odd", embedder=make_fake_embedder()).close()


def test_the_worker_outlives_a_fault_of_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's catch-up raises a non-library error once (as a broken Chroma collection did): a fault injected
    at the storage boundary. The worker logs it, backs off and goes on with the jobs."""
    monkeypatch.setattr(worker, "FAULT_DELAY_SECONDS", 0.05)
    failed = threading.Event()
    catch_up = ChromaIndex.catch_up

    def faulty_catch_up(self: ChromaIndex) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("Error executing plan: collection is broken")
        catch_up(self)

    monkeypatch.setattr(ChromaIndex, "catch_up", faulty_catch_up)
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("s")
        store.add(SCOPE, text="a change for the index")  # the idle worker catches the index up: and meets the fault
        assert failed.wait(timeout=30)
        store.add(SCOPE, messages=[turn("user", "queued after the fault")], sync=False)
        assert store.flush(timeout=30) is True
        assert "queued after the fault" in [m.text for m in store.list(SCOPE).items]


def test_a_fault_of_the_worker_is_shown_on_the_jobs_it_holds_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job queue (the record, at the worker's claim) fails with a non-library error until it is repaired:
    meanwhile extraction_status() says why the jobs wait; then they finish."""
    monkeypatch.setattr(worker, "FAULT_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(worker, "MAX_FAULT_DELAY_SECONDS", 0.2)
    broken = threading.Event()
    broken.set()
    claim = worker.ExtractionWorker._claim

    def faulty_claim(self: worker.ExtractionWorker) -> Any:
        if broken.is_set():
            raise RuntimeError("database disk image is malformed")
        return claim(self)

    monkeypatch.setattr(worker.ExtractionWorker, "_claim", faulty_claim)
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("s")
        store.add(SCOPE, messages=[turn("user", "held up")], sync=False)
        expected = "background worker: RuntimeError: database disk image is malformed"
        deadline = time.monotonic() + 30
        while [job.error for job in store.extraction_status()] != [expected] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(job.state, job.error) for job in store.extraction_status()] == [("pending", expected)]
        broken.clear()
        assert store.flush(timeout=30) is True
        assert store.extraction_status() == []
        assert [m.text for m in store.list(SCOPE).items] == ["held up"]

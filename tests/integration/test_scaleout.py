"""The scaled-out deployment: several memory processes on one PostgreSQL database and one Chroma server (both
throwaway, started by the tests), and what each failure does to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from memory_plugin import (
    Embedder,
    MemoryClient,
    MemoryStoreNotFoundError,
    Settings,
    StorageError,
    TurnExtractor,
)
from memory_plugin.models import every_page
from memory_plugin.service import MemoryService
from memory_plugin.storage.base import NewJob
from memory_plugin.storage.chroma_server import APPLIER_LOCK
from memory_plugin.storage.postgres import PostgresJobQueue, PostgresRecord
from memory_plugin.storage.postgres.keys import PostgresKeyStore
from memory_plugin.storage.postgres.schema import SCHEMA_VERSION
from scripts.throwaway import ThrowawayChroma, ThrowawayPostgres
from tests.conftest import INDEX_PATH, KEYWORD_QUERIES, KEYWORD_TEXTS, SCOPE, turn
from tests.integration.crash_child import make_position_embedder
from tests.integration.scaleout_child import LEASE_SECONDS, STORE
from tests.internals import catch_up_index, index_pending, service
from tests.scaleout_harness import servers
from tests.server_harness import FAKE_STORES, RunningServer, ServedProcess, serving_service, start_serve, wait_ready

ROOT = Path(__file__).resolve().parents[2]
TENANT_WIDE = SCOPE.with_(agent_id="*", run_id="*")


@pytest.fixture
def database() -> str:
    postgres, _ = servers()
    return postgres.new_database()


@pytest.fixture
def index() -> str:
    return servers()[1].url


def _client(database: str, index: str, embedder: Embedder, **options: Any) -> MemoryClient:
    return MemoryClient(database=database, index=index, embedder=embedder, **options)


@pytest.fixture
def two_servers(database: str, index: str, fake_embedder: Embedder) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two memory servers on one database and Chroma server, with their access keys in the database."""
    with PostgresKeyStore(database) as keys:
        one = MemoryService.scaled_out(database, index, embedder=fake_embedder)
        two = MemoryService.scaled_out(database, index, embedder=fake_embedder)
        with serving_service(one, keys) as first, serving_service(two, keys) as second:
            yield first, second


def test_what_one_server_acknowledges_the_other_serves_at_once(two_servers: tuple[RunningServer, ...]) -> None:
    first, second = two_servers
    # A key made through one server's key store works on every server: the keys live in the database.
    with first.client() as a, MemoryClient(endpoint=second.url, access_key_id=first.key.key_id,
                                           access_key_secret=first.secret) as b:  # fmt: skip
        a.create_memory_store(STORE)
        on_a, on_b = a.get_memory_store(STORE), b.get_memory_store(STORE)
        written = on_a.add(SCOPE, text="The user drinks coffee every morning").memories[0]
        assert on_b.get(SCOPE, written.id) == written
        assert [h.memory.id for h in on_b.search(TENANT_WIDE, "coffee in the morning", top_k=3)] == [written.id]
        on_b.update(SCOPE, written.id, text="The user drinks tea every morning")
        assert on_a.search(TENANT_WIDE, "tea", top_k=1)[0].memory.text == "The user drinks tea every morning"
        # Background extraction queued through one server is waited for (and its result read) through the other.
        queued = on_a.add(SCOPE, messages=[turn("user", "I keep bees")], sync=False)
        assert queued.pending and on_b.flush(timeout=60)
        assert "I keep bees" in [m.text for m in every_memory(on_b)]
        b.delete_memory_store(STORE)
        with pytest.raises(MemoryStoreNotFoundError):
            a.get_memory_store(STORE)
        with pytest.raises(MemoryStoreNotFoundError):
            on_a.add(SCOPE, text="written to a store deleted through the other server")


def every_memory(store: Any) -> list[Any]:
    pages = every_page(lambda cursor: store.list(TENANT_WIDE, limit=7, cursor=cursor))
    return [item for page in pages for item in page.items]


def test_pages_never_skip_or_repeat_while_two_servers_write(two_servers: tuple[RunningServer, ...]) -> None:
    first, second = two_servers
    with first.client() as a, second.client() as b:
        a.create_memory_store(STORE)
        on_a, on_b = a.get_memory_store(STORE), b.get_memory_store(STORE)
        before = [on_a.add(SCOPE, text=f"early note {i}").memories[0].id for i in range(15)]
        stop = threading.Event()

        def write(store: Any, name: str) -> None:
            number = 0
            while not stop.is_set():
                store.add(SCOPE, text=f"{name} note {number}")
                number += 1

        writers = [threading.Thread(target=write, args=(s, n)) for s, n in ((on_a, "a"), (on_b, "b"))]
        for writer in writers:
            writer.start()
        try:
            seen = [m.id for m in every_memory(on_b)]
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        assert len(seen) == len(set(seen)), "a page repeated a memory"
        assert seen[: len(before)] == before
        final = [m.id for m in every_memory(on_a)]
        assert final[: len(seen)] == seen, "a page skipped a memory that committed before a later one"


def test_keyword_scores_equal_the_embedded_backend(
    tmp_path: Path, database: str, index: str, fake_embedder: Embedder
) -> None:
    """BM25 from the record's own term statistics: the same numbers SQLite FTS5 gives, stems, diacritics and CJK
    bigrams included, so a score means the same on every backend."""
    texts, queries = KEYWORD_TEXTS, KEYWORD_QUERIES
    scored: dict[str, list[dict[str, tuple[float, float]]]] = {}
    held: dict[str, dict[str, int]] = {}
    for name, options in (("embedded", {"path": tmp_path / "data"}), ("postgres", {"database": database,
                                                                                   "index": index})):  # fmt: skip
        with MemoryClient(embedder=fake_embedder, **options) as client:
            store = client.create_memory_store("keywords")
            for text in texts:
                store.add(SCOPE, text=text)
            scored[name] = [
                {
                    hit.memory.text: (hit.score, (hit.signals or {})["lexical"])
                    for hit in store.search(TENANT_WIDE, query, top_k=10, rerank=False, explain=True)
                }
                for query in queries
            ]
            with service(client).folder.record.read() as reader:  # what decides which terms nominate candidates
                held[name] = reader.holding(["coffee", "running", "zurich", "咖啡", "ab\u19b0cd", "absent"])
    assert held["postgres"] == held["embedded"] == {"coffee": 2, "running": 2, "zurich": 1, "咖啡": 1, "absent": 0}
    for query, embedded, postgres in zip(queries, scored["embedded"], scored["postgres"], strict=True):
        assert postgres.keys() == embedded.keys(), query
        for text, (score, lexical) in embedded.items():
            assert postgres[text] == pytest.approx((score, lexical), rel=1e-9, abs=1e-12), (query, text)
    assert any(lexical > 0 for hits in scored["postgres"] for _, lexical in hits.values())


def test_a_wiped_chroma_server_is_rebuilt_from_the_record_and_searches_stay_right(
    database: str, fake_embedder: Embedder
) -> None:
    chroma = ThrowawayChroma()
    try:
        with _client(database, chroma.url, fake_embedder, settings=INDEX_PATH) as client:
            store = client.create_memory_store("rebuilt")
            for number in range(30):
                store.add(SCOPE, text=f"note {number} about topic{number}")
            catch_up_index(client)
            before = [h.memory.text for h in store.search(TENANT_WIDE, "topic7", top_k=3)]
            assert before[0] == "note 7 about topic7"
            chroma.wipe()
            # Meanwhile: the index cannot answer, the record does, exactly.
            assert [h.memory.text for h in store.search(TENANT_WIDE, "topic7", top_k=3)] == before
            store.add(SCOPE, text="note 30 about topic30")
            catch_up_index(client)  # the applier notices the lost collection and builds it again from the record
            import chromadb

            chroma_client = chromadb.HttpClient(host="127.0.0.1", port=chroma.port)
            [collection] = chroma_client.list_collections()
            assert collection.count() == 31
            assert store.search(TENANT_WIDE, "topic30", top_k=1)[0].memory.text == "note 30 about topic30"
    finally:
        chroma.close()


def test_a_write_is_searchable_through_the_index_before_the_index_has_it(database: str, index: str) -> None:
    """Searches merge the index's hits with exact scores of the changes still in the log: while another server
    holds the applier's lock (so nothing is applied), an acknowledged write is found, an update's new vector is what
    ranks, and a deleted memory is gone. The queries share no word with the notes: only vectors find them."""
    with _client(database, index, make_position_embedder(), settings=INDEX_PATH) as client:
        store = client.create_memory_store("fresh")
        old = [store.add(SCOPE, text=f"note {number:04d} about rivers").memories[0] for number in range(10)]
        catch_up_index(client)
        with psycopg.connect(database, autocommit=True) as applier:
            applier.execute("SELECT pg_advisory_lock(%s)", (APPLIER_LOCK,))
            new = store.add(SCOPE, text="note 0042 about rivers").memories[0]  # 42: "code bq"
            store.update(SCOPE, old[1].id, text="note 0043 about rivers")  # 43: "code br"
            store.delete(SCOPE, old[2].id)  # 2: "code c"
            assert index_pending(client) >= 3  # not applied: the answers below come from the merge
            assert store.search(TENANT_WIDE, "code bq", top_k=1)[0].memory.id == new.id
            assert store.search(TENANT_WIDE, "code br", top_k=1)[0].memory.id == old[1].id
            assert old[2].id not in [h.memory.id for h in store.search(TENANT_WIDE, "code c", top_k=10)]


def ready_within(url: str, seconds: float) -> bool:
    """Whether ``/readyz`` answers 200 within ``seconds``, asked once a second."""
    deadline = time.monotonic() + seconds
    while httpx.get(f"{url}/readyz", timeout=30).status_code != 200:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_requests_during_a_postgres_restart_fail_cleanly_and_the_server_reconnects(
    index: str, fake_embedder: Embedder
) -> None:
    postgres = ThrowawayPostgres(fast=True)
    try:
        database = postgres.new_database()
        service = MemoryService.scaled_out(database, index, embedder=fake_embedder)
        with PostgresKeyStore(database) as keys, serving_service(service, keys) as server, server.client() as client:
            store = client.create_memory_store("outage")
            kept = store.add(SCOPE, messages=[turn("user", "before the outage")]).memories[0]
            postgres.stop()
            with pytest.raises(StorageError) as error:
                store.add(SCOPE, messages=[turn("user", "during the outage")])
            assert "unreachable" in str(error.value)
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 503  # the balancer skips it
            postgres.start()
            assert ready_within(server.url, 30)  # as a balancer polls it
            after = store.add(SCOPE, messages=[turn("user", "after the outage")]).memories[0]
            assert [m.id for m in every_memory(store)] == [kept.id, after.id]
            assert [m.content for m in store.messages(SCOPE).items] == ["before the outage", "after the outage"]
    finally:
        postgres.close()


def test_a_job_is_leased_fenced_and_one_runs_per_tenant(database: str) -> None:
    record = PostgresRecord(database)
    queue = PostgresJobQueue(record)
    try:
        with record.write() as tx:
            store = tx.create_store("jobs", "", "fake", 4, None, None)

            def job(tenant: str) -> NewJob:
                return NewJob(SCOPE.with_(tenant_id=tenant), [], "text", {}, datetime.now(timezone.utc), "req_1")

            for tenant in ("user-1", "user-1", "user-2"):
                queue.enqueue(tx, store.id, job(tenant))
        first = queue.claim(None, [], "server-a", 0.5)
        other = queue.claim(None, [], "server-b", 0.5)
        assert first is not None and other is not None
        assert (first.scope.tenant_id, other.scope.tenant_id) == ("user-1", "user-2")
        assert queue.claim(None, [], "server-b", 0.5) is None  # user-1's second job waits for its first
        time.sleep(0.6)  # server-a stops renewing (it died): its lease runs out
        taken = queue.claim(None, [], "server-b", 30)
        assert taken is not None and taken.position == first.position and taken.lease > first.lease
        assert not queue.renew(first, 30)
        with record.write() as tx:
            assert not queue.finish(tx, first)  # server-a comes back: its result is refused
        with record.write() as tx:
            assert queue.finish(tx, taken)
    finally:
        record.close()


def test_a_newer_schema_is_refused_clearly(database: str) -> None:
    record = PostgresRecord(database)
    record.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    record.close()
    with pytest.raises(StorageError, match="schema version") as error:
        PostgresRecord(database)
    assert "upgrade memory-plugin" in str(error.value)


def _child(mode: str, database: str, index: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.scaleout_child", mode, database, index],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


def _acks(child: subprocess.Popen[str], wanted: int) -> list[str]:
    assert child.stdout is not None
    acks = []
    while len(acks) < wanted:
        line = child.stdout.readline()
        assert line, "the child process ended early"
        acks.append(line.split()[1])
    return acks


def test_kill_9_during_writes_loses_nothing_acknowledged(database: str, index: str, fake_embedder: Embedder) -> None:
    child = _child("write", database, index)
    try:
        acknowledged = _acks(child, 25)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    with _client(database, index, fake_embedder) as client:
        store = client.get_memory_store(STORE)
        for memory_id in acknowledged:
            assert store.get(SCOPE, memory_id).id == memory_id
        assert store.search(TENANT_WIDE, "note 3 about rivers", top_k=50)


def test_kill_9_during_extraction_hands_the_job_to_another_process(
    database: str, index: str, fake_embedder: Embedder
) -> None:
    child = _child("extract", database, index)
    try:
        _acks(child, 1)
        with _client(database, index, fake_embedder, extractor=TurnExtractor(),
                     settings=Settings(job_lease_seconds=LEASE_SECONDS)) as client:  # fmt: skip
            store = client.get_memory_store(STORE)
            deadline = time.monotonic() + 60
            while not [job for job in store.extraction_status() if job.state == "running"]:
                assert time.monotonic() < deadline, "the child never started the job"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            assert store.flush(timeout=60), store.extraction_status()
            texts = [m.text for m in every_memory(store)]
            assert sorted(texts) == ["I keep bees", "Lovely"]  # applied once: no duplicate facts
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


# Served processes of the scaled-out deployment: the fake embedder, and a short lease so that a killed server's job
# passes on quickly. On the first server, the store "jobs" extracts with an extractor that never finishes, so its job
# is running when the server is killed.
LEASED = FAKE_STORES + "[engine]\njob_lease_seconds = 3.0\n"
NEVER_FINISHES = (
    LEASED + '[stores.jobs]\nembedder = "tests.conftest:make_fake_embedder"\n'
    'extractor = "tests.integration.crash_child:SlowExtractor"\n'
)


def test_kill_9_of_a_memory_server_process_loses_nothing_and_its_job_finishes_on_another(
    database: str, index: str, tmp_path: Path
) -> None:
    with PostgresKeyStore(database) as keys:
        key, secret = keys.create("app-001", admin=True)
    credentials = {"access_key_id": key.key_id, "access_key_secret": secret.reveal()}
    options = ["--database", database, "--index", index]
    first = start_serve(tmp_path / "first", NEVER_FINISHES, options=options)
    second: ServedProcess | None = None
    acknowledged: list[str] = []
    try:
        wait_ready(first)
        with MemoryClient(endpoint=first.url, **credentials) as client:
            jobs, store = client.create_memory_store("jobs"), client.create_memory_store(STORE)
            jobs.add(SCOPE, messages=[turn("user", "I keep bees"), turn("assistant", "Lovely")], sync=False)
            deadline = time.monotonic() + 60
            while not [job for job in jobs.extraction_status() if job.state == "running"]:
                assert time.monotonic() < deadline, "the first server never started the job"
                time.sleep(0.05)
            stopped_by: list[BaseException] = []

            def write() -> None:  # until the server dies under it
                try:
                    for number in range(100_000):
                        acknowledged.append(store.add(SCOPE, text=f"note {number}").memories[0].id)
                except Exception as e:
                    stopped_by.append(e)

            writer = threading.Thread(target=write)
            writer.start()
            while len(acknowledged) < 20:
                assert writer.is_alive(), f"the writer stopped before the kill: {stopped_by}"
                time.sleep(0.01)
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait()
            writer.join(60)
        second = start_serve(tmp_path / "second", LEASED, options=options)
        wait_ready(second)
        with MemoryClient(endpoint=second.url, **credentials) as client:
            store, jobs = client.get_memory_store(STORE), client.get_memory_store("jobs")
            for memory_id in acknowledged:
                assert store.get(SCOPE, memory_id).id == memory_id
            assert jobs.flush(timeout=60), jobs.extraction_status()
            facts = sorted(m.text for m in every_memory(jobs))
            assert facts == ["I keep bees", "Lovely"]  # the job was applied once, by the second server
    finally:
        for served in (first, second):
            if served is not None and served.process.poll() is None:
                served.process.kill()
                served.process.wait()

"""Concurrency: 8 threads, then 100 asyncio tasks, doing mixed calls on one store for a bounded time while
background extraction runs. No unexpected error, no deadlock, every acknowledged write readable afterwards, and
one audit record per call."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import AsyncMemoryClient, ClientClosedError, MemoryClient
from memory_plugin.storage.chroma import ChromaIndex
from memory_plugin.storage.sqlite.reader import SqliteReader
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder
from tests.internals import service
from tests.reliability.load import Ledger, audited_calls, check_ledger, run_tasks, run_threads


def test_eight_threads_of_mixed_calls(tmp_path: Path) -> None:
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("load")
        ledger = Ledger()
        run_threads(store, threads=8, seconds=3.0, ledger=ledger)
        assert not ledger.errors, ledger.errors[:3]
        assert ledger.calls > 50
        assert audited_calls(store) == ledger.calls
        assert ledger.background, "no background extraction ran"
        assert check_ledger(store, ledger) == 0


def test_hundred_asyncio_tasks_of_mixed_calls(tmp_path: Path) -> None:
    async def main() -> Ledger:
        async with AsyncMemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
            store = await client.create_memory_store("load")
            ledger = Ledger()
            await run_tasks(store, tasks=100, seconds=3.0, ledger=ledger)
            return ledger

    ledger = asyncio.run(main())
    assert not ledger.errors, ledger.errors[:3]
    assert ledger.calls >= 100
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.get_memory_store("load")
        assert audited_calls(store) == ledger.calls
        assert check_ledger(store, ledger) == 0


def test_a_search_in_progress_does_not_hold_up_another_tenants_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search paused in the middle of its reads (as a slow one would be) must not stop another call: the
    other tenant's get() completes while the search is still paused."""
    inside, got = threading.Event(), threading.Event()
    resumed_by_the_get: list[bool] = []
    keyword_search = SqliteReader.keyword

    def paused_keyword_search(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        resumed_by_the_get.append(got.wait(timeout=30))
        return keyword_search(*args, **kwargs)

    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("s")
        mine, other = SCOPE, SCOPE.with_(tenant_id="other-tenant")
        store.add(mine, text="the user drinks coffee")
        memory_id = store.add(other, text="another tenant's memory").memories[0].id
        monkeypatch.setattr(SqliteReader, "keyword", paused_keyword_search)
        search = threading.Thread(target=store.search, args=(mine.with_(run_id="*"), "coffee"))
        search.start()
        assert inside.wait(timeout=30)
        assert store.get(other, memory_id).text == "another tenant's memory"
        got.set()
        search.join(timeout=60)
    assert resumed_by_the_get == [True]


def test_each_read_block_sees_one_snapshot(tmp_path: Path) -> None:
    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("s")
        record = service(client).folder.record
        store.add(SCOPE, text="first")
        with record.read() as reader:
            before = reader.totals()["memories"]
            writer = threading.Thread(target=store.add, args=(SCOPE,), kwargs={"text": "second"})
            writer.start()
            writer.join(timeout=60)  # a write commits while this thread reads: it is not held up by the read
            assert not writer.is_alive()
            assert reader.totals()["memories"] == before == 1
        with record.read() as reader:
            assert reader.totals()["memories"] == 2


def open_files_under(folder: Path) -> list[str]:
    """Files of ``folder`` this process has open (the folder lock, SQLite's files, Chroma's files)."""
    paths = (os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
    return sorted(p for p in paths if p.startswith(str(folder.resolve())))


def test_close_racing_live_searches_closes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads search through the Chroma index while another thread closes the client; one search is paused
    inside its index query when close() begins. Calls either finish or get ClientClosedError, and once close()
    returns no file of the folder is open: nothing re-opened Chroma or the record behind its back."""
    folder = tmp_path / "data"
    client = MemoryClient(path=folder, embedder=make_fake_embedder(), settings=INDEX_PATH)  # searches take the index
    store = client.create_memory_store("s")
    store.add(SCOPE, messages=[{"role": "user", "content": f"note {i} about rivers"} for i in range(30)])
    assert store.search(SCOPE, "rivers")  # Chroma is open
    in_query, closed = threading.Event(), threading.Event()
    index_query = ChromaIndex.query

    def paused_query(self: ChromaIndex, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "paused":
            in_query.set()
            closed.wait(timeout=2)  # (close() waits for this call, so here it times out)
        return index_query(self, *args, **kwargs)

    monkeypatch.setattr(ChromaIndex, "query", paused_query)
    unexpected: list[BaseException] = []

    def search_until_closed() -> None:
        try:
            while True:
                store.search(SCOPE, "rivers")
        except ClientClosedError:
            return
        except BaseException as e:
            unexpected.append(e)

    threads = [threading.Thread(target=search_until_closed) for _ in range(4)]
    threads.append(threading.Thread(target=search_until_closed, name="paused"))
    for thread in threads:
        thread.start()
    assert in_query.wait(timeout=30)
    client.close()
    closed.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert unexpected == []
    assert open_files_under(folder) == []
    with pytest.raises(ClientClosedError):
        store.search(SCOPE, "rivers")

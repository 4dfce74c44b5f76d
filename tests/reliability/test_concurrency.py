"""Concurrency: 8 threads, then 100 asyncio tasks, doing mixed calls on one store for a bounded time while
background extraction runs. No unexpected error, no deadlock, every acknowledged write readable afterwards, and
one audit record per call."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import AsyncMemoryClient, MemoryClient
from memory_plugin import search as search_module
from tests.conftest import SCOPE, make_fake_embedder
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
    keyword_search = search_module._lexical

    def paused_keyword_search(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        resumed_by_the_get.append(got.wait(timeout=30))
        return keyword_search(*args, **kwargs)

    with MemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = client.create_memory_store("s")
        mine, other = SCOPE, SCOPE.with_(tenant_id="other-tenant")
        store.add(mine, text="the user drinks coffee")
        memory_id = store.add(other, text="another tenant's memory").memories[0].id
        monkeypatch.setattr(search_module, "_lexical", paused_keyword_search)
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
        record = client._engine.record
        store.add(SCOPE, text="first")
        with record.reading() as conn:
            before = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
            writer = threading.Thread(target=store.add, args=(SCOPE,), kwargs={"text": "second"})
            writer.start()
            writer.join(timeout=60)  # a write commits while this thread reads: it is not held up by the read
            assert not writer.is_alive()
            assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == before == 1
        with record.reading() as conn:
            assert conn.execute("SELECT count(*) FROM memories").fetchone()[0] == 2

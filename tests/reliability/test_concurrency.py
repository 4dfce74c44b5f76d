"""Concurrency: 8 threads, then 100 asyncio tasks, doing mixed calls on one store for a bounded time while
background extraction runs. No unexpected error, no deadlock, every acknowledged write readable afterwards, and
one audit record per call."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory_plugin import AsyncMemoryClient, MemoryClient
from tests.conftest import make_fake_embedder
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

"""The async remote client across event loops: each ``asyncio.run`` (or a framework's own loop per call, as the
LangChain and LlamaIndex adapters' async paths may use) gets working connections, never another loop's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory_plugin import Scope
from memory_plugin.embedding import Embedder
from tests.server_harness import running_server

SCOPE = Scope("app-001", "user-001", "assistant", "s1")


def test_an_async_client_serves_one_event_loop_after_another(tmp_path: Path, fake_embedder: Embedder) -> None:
    with running_server(tmp_path / "data", fake_embedder) as server:
        client = server.async_client()

        async def write() -> None:
            store = await client.create_memory_store("loops")
            await store.add(SCOPE, text="I keep bees")

        async def read() -> list[str]:
            store = await client.get_memory_store("loops")
            return [m.text for m in (await store.list(SCOPE)).items]

        asyncio.run(write())
        assert asyncio.run(read()) == ["I keep bees"]  # a new loop: its own connections
        assert asyncio.run(read()) == ["I keep bees"]
        asyncio.run(client.close())

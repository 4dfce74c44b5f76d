"""Memory store lifecycle, client options and errors, on real SQLite and Chroma."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from memory_plugin import (
    AsyncMemoryClient,
    ClientClosedError,
    Embedder,
    EmbeddingError,
    EmbeddingMismatchError,
    ExtractionError,
    ExtractionInput,
    InvalidArgumentError,
    MemoryClient,
    MemoryDeletion,
    MemoryStoreExistsError,
    MemoryStoreNotFoundError,
    MemoryUpdate,
    NewMemory,
)
from tests.conftest import SCOPE, make_fake_embedder, turn


def test_create_get_list_delete(client: MemoryClient) -> None:
    store = client.create_memory_store("agent_memory", description="Agent long-term memory")
    client.create_memory_store("other")
    assert store.info.description == "Agent long-term memory"
    assert store.info.embedder == "fake-hash-256" and store.info.dimension == 256
    assert [s.name for s in client.list_memory_stores()] == ["agent_memory", "other"]
    assert client.get_memory_store("agent_memory").name == "agent_memory"
    with pytest.raises(MemoryStoreExistsError, match="already exists"):
        client.create_memory_store("agent_memory")
    store.add(SCOPE, text="to be deleted with the store")
    client.delete_memory_store("agent_memory")
    with pytest.raises(MemoryStoreNotFoundError, match="agent_memory"):
        client.get_memory_store("agent_memory")
    with pytest.raises(MemoryStoreNotFoundError):
        store.search(SCOPE, "deleted")
    with pytest.raises(MemoryStoreNotFoundError):
        client.delete_memory_store("agent_memory")
    fresh = client.create_memory_store("agent_memory")
    assert fresh.list(SCOPE).items == []
    with pytest.raises(InvalidArgumentError, match="name"):
        client.create_memory_store("bad name!")


def test_stores_are_isolated(client: MemoryClient) -> None:
    a, b = client.create_memory_store("a"), client.create_memory_store("b")
    a.add(SCOPE, text="only in a")
    assert b.search(SCOPE, "only in a") == []
    assert [r.operation for r in b.requests(SCOPE).items] == ["SearchMemories"]


def test_data_survives_a_clean_restart(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        memory = client.create_memory_store("s").add(SCOPE, text="persisted").memories[0]
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        assert client.get_memory_store("s").get(SCOPE, memory.id).text == "persisted"


def test_default_home_is_env_or_dot_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: Embedder
) -> None:
    monkeypatch.setenv("MEMORY_PLUGIN_HOME", str(tmp_path / "home"))
    with MemoryClient(embedder=fake_embedder) as client:
        assert client.path == tmp_path / "home"
    monkeypatch.delenv("MEMORY_PLUGIN_HOME")
    monkeypatch.chdir(tmp_path)
    with MemoryClient(embedder=fake_embedder) as client:
        assert client.path == Path(".memory_plugin")
    assert (tmp_path / ".memory_plugin" / "memory.db").exists()


def test_a_store_refuses_another_embedder(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        client.create_memory_store("s")
        other = Embedder(lambda texts: [[1.0, 0.0] for _ in texts], name="other-model")
        with pytest.raises(EmbeddingMismatchError, match="built with embedder 'fake-hash-256'"):
            client.get_memory_store("s", embedder=other)
        same_name_other_size = Embedder(lambda texts: [[1.0, 0.0] for _ in texts], name="fake-hash-256")
        with pytest.raises(EmbeddingMismatchError, match="256-dimensional"):
            client.get_memory_store("s", embedder=same_name_other_size)


def test_closed_client_refuses_calls(tmp_path: Path, fake_embedder: Embedder) -> None:
    client = MemoryClient(path=tmp_path, embedder=fake_embedder)
    store = client.create_memory_store("s")
    client.close()
    client.close()
    with pytest.raises(ClientClosedError):
        store.add(SCOPE, text="late")
    with pytest.raises(ClientClosedError):
        client.list_memory_stores()


def test_failing_embedder_writes_nothing(client: MemoryClient) -> None:
    def broken(texts: list[str]) -> list[list[float]]:
        raise RuntimeError("embedding service down")

    store = client.create_memory_store("s", embedder=Embedder(broken, name="broken", dimension=256))
    with pytest.raises(EmbeddingError, match="embedding service down"):
        store.add(SCOPE, messages=[turn("user", "hello"), turn("assistant", "hi")])
    assert store.messages(SCOPE).items == []
    assert [(r.operation, r.outcome) for r in store.requests(SCOPE).items] == [
        ("ListMessages", "ok"),
        ("AddMemories", "EmbeddingError"),
    ]


class ScriptedExtractor:
    """Stands in for an LLM extractor: returns whatever operations the test scripts."""

    def __init__(self) -> None:
        self.script: list[object] = []
        self.seen: list[ExtractionInput] = []

    def extract(self, request: ExtractionInput) -> list[object]:
        self.seen.append(request)
        result = self.script
        if isinstance(result, Exception):
            raise result
        return result


def test_custom_extractor_can_add_update_and_delete(client: MemoryClient) -> None:
    extractor = ScriptedExtractor()
    store = client.create_memory_store("s", extractor=extractor)  # type: ignore[arg-type]
    extractor.script = [
        NewMemory(text="User lives in Lisbon", memory_type="profile", metadata={"key": "city"}),
        NewMemory(text="User has a cat", memory_type="fact"),
    ]
    lisbon, cat = store.add(SCOPE, messages=[turn("user", "I live in Lisbon and have a cat")]).memories
    extractor.script = [
        MemoryUpdate(memory_id=lisbon.id, text="User lives in Porto"),
        MemoryDeletion(memory_id=cat.id),
        MemoryDeletion(memory_id="mem_unknown"),
    ]
    result = store.add(SCOPE.with_(run_id="session-002"), messages=[turn("user", "I moved to Porto, no cat now")])
    assert [m.text for m in result.memories] == ["User lives in Porto"]
    assert store.get(SCOPE, lisbon.id).text == "User lives in Porto"
    assert [e.event for e in store.history(SCOPE, cat.id)] == ["created", "deleted"]
    request = extractor.seen[-1]
    assert request.scope.run_id == "session-002" and request.messages[0].content.startswith("I moved")
    assert [m.text for m in request.related("where does the user live", 5)][:1] == ["User lives in Porto"]
    extractor.script = RuntimeError("LLM timed out")  # type: ignore[assignment]
    with pytest.raises(ExtractionError, match="LLM timed out"):
        store.add(SCOPE, messages=[turn("user", "this fails")])
    extractor.script = [NewMemory(text="", memory_type="fact")]
    with pytest.raises(ExtractionError, match="invalid operation"):
        store.add(SCOPE, messages=[turn("user", "this fails too")])
    assert len(store.messages(SCOPE).items) == 1


def test_failed_background_jobs_are_retried_then_recorded(
    client: MemoryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory_plugin import worker

    monkeypatch.setattr(worker, "RETRY_DELAY_SECONDS", 0.01)
    extractor = ScriptedExtractor()
    extractor.script = RuntimeError("LLM down")  # type: ignore[assignment]
    store = client.create_memory_store("s", extractor=extractor)  # type: ignore[arg-type]
    store.add(SCOPE, messages=[turn("user", "remember me")], sync=False)
    assert store.flush(timeout=30) is True
    assert len(extractor.seen) == worker.MAX_ATTEMPTS
    assert store.list(SCOPE).items == []
    assert [m.content for m in store.messages(SCOPE).items] == ["remember me"]
    with client._engine.record.reading() as conn:
        state, attempts, error = conn.execute("SELECT state, attempts, error FROM jobs").fetchone()
    assert (state, attempts) == ("failed", worker.MAX_ATTEMPTS) and "LLM down" in error


async def test_async_client_as_context_manager(tmp_path: Path) -> None:
    async with AsyncMemoryClient(path=tmp_path, embedder=make_fake_embedder()) as client:
        store = await client.create_memory_store("agent_memory")
        await store.add(SCOPE, text="async memory")
        results = await asyncio.gather(*(store.search(SCOPE, "async memory") for _ in range(20)))
        assert all(r[0].memory.text == "async memory" for r in results)
        assert [s.name for s in await client.list_memory_stores()] == ["agent_memory"]
        assert (await store.info()).name == "agent_memory"
        assert (await client.get_memory_store("agent_memory")).name == "agent_memory"
        await client.delete_memory_store("agent_memory")


def test_unwritable_folder_is_a_storage_error(tmp_path: Path, fake_embedder: Embedder) -> None:
    from memory_plugin import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create the data folder"):
        MemoryClient(path=blocker / "data", embedder=fake_embedder)


def test_index_path_over_fetches_broad_scopes_and_filters_narrow_ones(
    client: MemoryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memory_plugin import search as search_module

    monkeypatch.setattr(search_module, "EXACT_SCAN_LIMIT", 0)
    store = client.create_memory_store("s")
    big, small = SCOPE, SCOPE.with_(tenant_id="user-small")
    store.add(big, messages=[turn("user", f"hiking trip number {i} in the hills") for i in range(60)])
    store.add(small, messages=[turn("user", f"hiking plan {i} for the small tenant") for i in range(5)])
    broad = store.search(big.with_(run_id="*"), "hiking trip", top_k=10)
    assert len(broad) == 10 and all(h.memory.scope.tenant_id == "user-001" for h in broad)
    narrow = store.search(small.with_(run_id="*"), "hiking plan", top_k=10)
    assert {h.memory.text for h in narrow} == {f"hiking plan {i} for the small tenant" for i in range(5)}


def test_a_record_of_another_schema_version_is_refused(tmp_path: Path, fake_embedder: Embedder) -> None:
    import sqlite3

    from memory_plugin import StorageError

    MemoryClient(path=tmp_path, embedder=fake_embedder).close()
    with sqlite3.connect(tmp_path / "memory.db") as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(StorageError, match="schema version 0"):
        MemoryClient(path=tmp_path, embedder=fake_embedder)
    MemoryClient(path=tmp_path / "fresh", embedder=fake_embedder).close()

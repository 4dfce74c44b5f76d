"""Memory store lifecycle, client options and errors, on real SQLite and Chroma."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Sequence
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
    MemoryOperation,
    MemoryStoreExistsError,
    MemoryStoreNotFoundError,
    MemoryUpdate,
    NewMemory,
    TurnExtractor,
)
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder, turn
from tests.internals import catch_up_index


def test_create_get_list_delete(client: MemoryClient) -> None:
    store = client.create_memory_store("agent_memory", description="Agent long-term memory")
    client.create_memory_store("other")
    assert store.info().description == "Agent long-term memory"
    assert store.info().embedder == "fake-hash-256" and store.info().dimension == 256
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
        store.add(SCOPE, messages=[turn("user", "I like tea"), turn("assistant", "Tea it is")])
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
    from memory_plugin.service import worker

    monkeypatch.setattr(worker, "RETRY_DELAY_SECONDS", 0.01)
    extractor = ScriptedExtractor()
    extractor.script = RuntimeError("LLM down")  # type: ignore[assignment]
    store = client.create_memory_store("s", extractor=extractor)  # type: ignore[arg-type]
    store.add(SCOPE, messages=[turn("user", "remember me")], sync=False)
    assert store.flush(timeout=30) is True
    assert len(extractor.seen) == worker.MAX_ATTEMPTS
    assert store.list(SCOPE).items == []
    assert [m.content for m in store.messages(SCOPE).items] == ["remember me"]
    [job] = store.extraction_status()
    assert (job.state, job.attempts) == ("failed", worker.MAX_ATTEMPTS) and "LLM down" in (job.error or "")


def test_a_retry_is_not_held_by_a_wall_clock_stepped_back(
    client: MemoryClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wall clock steps back an hour right after a failed attempt was recorded: the retry (and flush) must
    not wait for it."""
    from memory_plugin import clock
    from memory_plugin.service import worker

    monkeypatch.setattr(worker, "RETRY_DELAY_SECONDS", 0.05)
    failed, readings_since = threading.Event(), []
    wall_clock = clock.now

    def stepped_clock() -> float:
        if failed.is_set():  # the first reading after the failure records it; later ones are an hour behind
            readings_since.append(1)
        return wall_clock() - (3600 if len(readings_since) > 1 else 0)

    monkeypatch.setattr(clock, "now", stepped_clock)

    class FailsOnce(TurnExtractor):
        def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]:
            if not failed.is_set():
                failed.set()
                raise RuntimeError("LLM timed out")
            return super().extract(request)

    store = client.create_memory_store("s", extractor=FailsOnce())
    store.add(SCOPE, messages=[turn("user", "remember me")], sync=False)
    assert store.flush(timeout=30) is True
    assert [m.text for m in store.list(SCOPE).items] == ["remember me"]


def test_the_default_model_loads_when_a_store_opens_not_in_the_first_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading all-MiniLM-L6-v2 takes seconds: the audit of the first add must not count it as that call's
    latency. A stand-in for the model records when it is loaded."""
    from memory_plugin import embedding

    loads: list[str] = []

    class StandInModel:
        tokenizer = type("Tokenizer", (), {"tokenize": staticmethod(str.split)})()

        def encode(self, texts: list[str], **options: object) -> list[list[float]]:
            return make_fake_embedder().embed_documents(texts)[:, :1].repeat(384, axis=1).tolist()

    def load() -> StandInModel:
        loads.append("loaded")
        return StandInModel()

    monkeypatch.setattr(embedding, "_load_local_model", load)
    monkeypatch.setattr(embedding, "_local", None)
    with MemoryClient(path=tmp_path) as client:  # the default embedder
        client.create_memory_store("s")
        assert loads == ["loaded"]
    monkeypatch.setattr(embedding, "_local", None)  # as in a new process
    with MemoryClient(path=tmp_path) as client:
        store = client.get_memory_store("s")
        assert loads == ["loaded", "loaded"]  # loaded by get_memory_store
        store.add(SCOPE, text="the first add")
        assert loads == ["loaded", "loaded"]  # not by the first add


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


@pytest.mark.parametrize("settings", [INDEX_PATH])  # every search goes through the vector index
def test_index_path_over_fetches_broad_scopes_and_filters_narrow_ones(client: MemoryClient) -> None:
    store = client.create_memory_store("s")
    big, small = SCOPE, SCOPE.with_(tenant_id="user-small")
    store.add(big, messages=[turn("user", f"hiking trip number {i} in the hills") for i in range(60)])
    store.add(small, messages=[turn("user", f"hiking plan {i} for the small tenant") for i in range(5)])
    broad = store.search(big.with_(run_id="*"), "hiking trip", top_k=10)
    assert len(broad) == 10 and all(h.memory.scope.tenant_id == "user-001" for h in broad)
    narrow = store.search(small.with_(run_id="*"), "hiking plan", top_k=10)
    assert {h.memory.text for h in narrow} == {f"hiking plan {i} for the small tenant" for i in range(5)}


def index_rows_mentioning(path: Path, needle: str) -> int:
    """Rows of the Chroma index's own database (any table) that contain ``needle``."""
    found = 0
    for database in path.glob("index-*/chroma.sqlite3"):
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                with contextlib.suppress(sqlite3.Error):  # virtual tables of modules this sqlite3 lacks
                    found += sum(needle in repr(row) for row in conn.execute(f'SELECT * FROM "{table}"'))
    return found


def segment_folders(path: Path) -> int:
    return sum(1 for p in path.glob("index-*/*") if p.is_dir())


def test_a_store_deleted_while_the_index_is_closed_leaves_the_index(
    tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder, settings=INDEX_PATH) as client:
        kept, secret = client.create_memory_store("kept"), client.create_memory_store("secret")
        kept.add(SCOPE, text="a memory that stays")
        secret.add(SCOPE, text="contact details", metadata={"email": "alice@example.com"})
        catch_up_index(client)  # both stores are in the index
    assert index_rows_mentioning(tmp_path, "alice@example.com") > 0 and segment_folders(tmp_path) == 2
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        client.delete_memory_store("secret")  # the index is not open in this client yet
    with MemoryClient(path=tmp_path, embedder=fake_embedder, settings=INDEX_PATH) as client:
        store = client.get_memory_store("kept")
        assert [h.memory.text for h in store.search(SCOPE, "memory that stays")] == ["a memory that stays"]
        catch_up_index(client)
    assert index_rows_mentioning(tmp_path, "alice@example.com") == 0
    assert segment_folders(tmp_path) == 1  # the deleted store's HNSW folder is gone too


@pytest.mark.parametrize("settings", [INDEX_PATH])  # every search goes through Chroma
def test_creating_and_deleting_stores_does_not_leak_index_files(client: MemoryClient) -> None:
    """Chroma keeps a deleted collection's HNSW folder and 4 open files until its client closes."""
    kept = client.create_memory_store("kept")
    kept.add(SCOPE, text="a memory that stays")
    kept.search(SCOPE, "memory")

    def open_index_files() -> int:
        return sum(os.path.realpath(f"/proc/self/fd/{fd}").startswith(str(client.path.resolve())) for fd in
                   os.listdir("/proc/self/fd"))  # fmt: skip

    files_before, folders_before = open_index_files(), segment_folders(client.path)
    for cycle in range(30):
        store = client.create_memory_store(f"cycle-{cycle}")
        store.add(SCOPE, text=f"cycle {cycle} memory", metadata={"email": f"user{cycle}@example.com"})
        assert store.search(SCOPE, "memory")[0].memory.text == f"cycle {cycle} memory"
        client.delete_memory_store(f"cycle-{cycle}")
    assert open_index_files() <= files_before + 4  # at most one cycle's worth, not 30
    assert segment_folders(client.path) <= folders_before + 1
    assert [h.memory.text for h in kept.search(SCOPE, "memory")] == ["a memory that stays"]


class GatedExtractor(TurnExtractor):
    """The default extractor, recording the messages it saw; its first call waits until the test opens the gate."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.busy, self.gate = threading.Event(), threading.Event()

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]:
        self.busy.set()
        self.gate.wait(timeout=30)
        self.seen.extend(m.content for m in request.messages)
        return super().extract(request)


def test_a_store_open_in_a_client_keeps_its_extractor(client: MemoryClient) -> None:
    """Jobs queued through the first handle run with that handle's extractor, whoever opens the store again."""
    mine = GatedExtractor()
    first = client.create_memory_store("s", extractor=mine)  # type: ignore[arg-type]
    first.add(SCOPE, messages=[turn("user", "queued first")], sync=False)
    assert mine.busy.wait(timeout=30)  # the worker runs the first job; the second one waits in the queue
    first.add(SCOPE, messages=[turn("user", "queued second")], sync=False)
    second = client.get_memory_store("s")  # no extractor= : the store as it is open
    mine.gate.set()
    assert second.flush(timeout=30) is True
    assert mine.seen == ["queued first", "queued second"]
    with pytest.raises(InvalidArgumentError, match="extractor.*already open in this client with extractor Gated"):
        client.get_memory_store("s", extractor=TurnExtractor())
    assert client.get_memory_store("s", extractor=mine).name == "s"  # the same extractor again is fine

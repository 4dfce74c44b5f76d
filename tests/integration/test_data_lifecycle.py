"""Data lifecycle through the public API (sync and async): forgetting a user (``delete_all``), retention and
pruning, idempotent retries of ``add``, and the audit's scope encoding."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import (
    AsyncMemoryClient,
    Embedder,
    InvalidArgumentError,
    InvalidScopeError,
    MemoryClient,
    MemoryNotFoundError,
    Scope,
    clock,
)
from memory_plugin.service import operations
from tests.conftest import INDEX_PATH, SCOPE, turn
from tests.internals import catch_up_index, wake_worker

OTHER_TENANT = SCOPE.with_(tenant_id="user-002")
TENANT_WIDE = SCOPE.with_(agent_id="*", run_id="*")
EVERYONE = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")


def test_delete_all_forgets_one_tenant_and_nothing_else(api: Any) -> None:
    kept = api.add(OTHER_TENANT, text="user two likes jazz").memories[0]
    mine = api.add(
        SCOPE, messages=[turn("user", "my secret is the blue door"), turn("assistant", "The blue door, got it")]
    )
    updated = api.update(SCOPE, mine.memories[0].id, text="my secret is the red door")
    api.add(SCOPE.with_(run_id="session-002"), text="another run of mine", sync=True)
    api.add(SCOPE.with_(run_id="session-003"), messages=[turn("user", "queued for later")], sync=False)
    result = api.delete_all(TENANT_WIDE)
    assert result.request_id.startswith("req_")
    # The queued turn is either a memory already or still a job: erased either way.
    assert result.messages == 3 and result.memories + result.jobs == 4 and result.history >= result.memories + 1
    assert api.flush(timeout=30)
    assert api.list(TENANT_WIDE).items == [] and api.search(TENANT_WIDE, "secret door").__len__() == 0
    assert api.messages(SCOPE).items == []
    with pytest.raises(MemoryNotFoundError):
        api.history(SCOPE, updated.id)
    assert [m.id for m in api.list(EVERYONE).items] == [kept.id]
    [record] = api.requests(EVERYONE, operation="DeleteAll").items
    assert api.flush(timeout=30)
    assert record.counts["memories"] == result.memories and record.scope == TENANT_WIDE


def test_delete_all_can_narrow_to_agents_and_runs(api: Any) -> None:
    api.add(SCOPE, text="run one memory")
    other_run = api.add(SCOPE.with_(run_id="session-002"), text="run two memory").memories[0]
    result = api.delete_all(SCOPE.with_(run_id=["session-001", "nothing"]))
    assert result.memories == 1
    assert [m.id for m in api.list(TENANT_WIDE).items] == [other_run.id]


@pytest.mark.parametrize("tenant", ["*", ["user-001", "user-002"]])
def test_delete_all_refuses_more_than_one_tenant(api: Any, tenant: Any) -> None:
    api.add(SCOPE, text="still here")
    with pytest.raises(InvalidScopeError, match="tenant_id"):
        api.delete_all(SCOPE.with_(tenant_id=tenant, agent_id="*", run_id="*"))
    assert len(api.list(TENANT_WIDE).items) == 1


def test_delete_all_leaves_nothing_in_the_data_folder(
    tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "zanzibar-quokka-7731"
    with MemoryClient(path=tmp_path, embedder=fake_embedder, settings=INDEX_PATH) as client:  # the index holds it too
        store = client.create_memory_store("s")
        store.add(SCOPE, messages=[turn("user", f"{secret} is my password")], metadata={"email": f"{secret}@x.org"})
        store.add(OTHER_TENANT, text="someone else")
        assert store.search(TENANT_WIDE, "password")
        store.delete_all(TENANT_WIDE)
        catch_up_index(client)
        assert [h.memory.text for h in store.search(EVERYONE, "someone")] == ["someone else"]
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leftovers == []  # not in free pages, the write-ahead log or the vector index's files


def test_idempotency_key_applies_a_retried_add_once(api: Any) -> None:
    first = api.add(SCOPE, messages=[turn("user", "I like tea")], idempotency_key="turn-1")
    again = api.add(SCOPE, messages=[turn("user", "I like tea")], idempotency_key="turn-1")
    assert again == first
    assert len(api.messages(SCOPE).items) == 1 and len(api.list(SCOPE).items) == 1
    with pytest.raises(InvalidArgumentError, match="idempotency_key.*different"):
        api.add(SCOPE, messages=[turn("user", "I like coffee")], idempotency_key="turn-1")
    # Keys belong to one tenant: another user's identical key is a new request, and reveals nothing.
    theirs = api.add(OTHER_TENANT, messages=[turn("user", "I like coffee")], idempotency_key="turn-1")
    assert theirs.message_ids != first.message_ids
    background = api.add(SCOPE, text="later", sync=False, idempotency_key="bg")
    assert api.add(SCOPE, text="later", sync=False, idempotency_key="bg") == background
    counts = [r.counts.get("replayed", 0) for r in api.requests(EVERYONE, operation="AddMemories").items]
    assert sorted(counts) == [0, 0, 0, 0, 1, 1]
    for bad in ("", "x" * 129, 7, "a\nb"):
        with pytest.raises(InvalidArgumentError, match="idempotency_key"):
            api.add(SCOPE, text="never stored", idempotency_key=bad)
    assert api.flush(timeout=30)
    assert "never stored" not in [m.text for m in api.list(TENANT_WIDE).items]


def test_concurrent_retries_with_one_key_write_once(client: MemoryClient) -> None:
    store = client.create_memory_store("s")
    start = threading.Barrier(6)
    results: list[Any] = []

    def retry() -> None:
        start.wait()
        results.append(store.add(SCOPE, text="exactly once", idempotency_key="k"))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.memories[0].id for r in results}) == 1
    assert [m.text for m in store.list(SCOPE).items] == ["exactly once"]


async def test_cancelled_async_adds_are_applied_exactly_once_when_retried(
    tmp_path: Path, fake_embedder: Embedder
) -> None:
    async with AsyncMemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = await client.create_memory_store("s")

        async def add(i: int) -> Any:
            return await store.add(SCOPE, text=f"memory number {i}", idempotency_key=f"add-{i}")

        tasks = [asyncio.create_task(add(i)) for i in range(60)]
        await asyncio.sleep(0.01)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = [i for i, o in enumerate(outcomes) if isinstance(o, asyncio.CancelledError)]
        assert cancelled  # some calls were cut off (whether their write had started or not)
        for i in range(60):  # the caller retries every call it did not see succeed, with the same key
            if i in cancelled:
                await add(i)
        texts = [m.text for m in (await store.list(SCOPE, limit=100)).items]
        assert sorted(texts) == sorted(f"memory number {i}" for i in range(60))


def test_retention_settings_and_prune(tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("s", audit_retention_days=30)
        assert store.info().audit_retention_days == 30 and store.info().history_retention_days is None
        memory = store.add(SCOPE, text="old fact", idempotency_key="k").memories[0]
        store.update(SCOPE, memory.id, text="newer fact")
        assert store.prune().requests == 0  # nothing is old yet
        later = time.time() + 40 * operations.DAY_SECONDS
        monkeypatch.setattr(operations, "PRUNE_BATCH", 1)  # several short transactions
        monkeypatch.setattr(clock, "now", lambda: later)
        pruned = store.prune()
        assert pruned.requests >= 3 and pruned.history == 0 and pruned.idempotency_keys == 1
        assert [e.event for e in store.history(SCOPE, memory.id)] == ["created", "updated"]  # history kept forever
        info = client.update_memory_store("s", history_retention_days=10, audit_retention_days=None)
        assert (info.audit_retention_days, info.history_retention_days) == (None, 10)
        assert store.prune().history == 2
        for bad in ({"audit_retention_days": 0}, {"history_retention_days": "7"}, {"colour": "red"}):
            with pytest.raises(InvalidArgumentError, match=next(iter(bad))):
                client.update_memory_store("s", **bad)
        with pytest.raises(InvalidArgumentError, match="audit_retention_days"):
            client.create_memory_store("t", audit_retention_days=-1)
        assert [s.name for s in client.list_memory_stores()] == ["s"]
        assert client.get_memory_store("s").info().history_retention_days == 10


def test_the_worker_prunes_by_itself(tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    from memory_plugin.service import worker

    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("s", audit_retention_days=1)
        store.add(SCOPE, text="a fact")
        monkeypatch.setattr(worker, "PRUNE_INTERVAL_SECONDS", 0.0)
        monkeypatch.setattr(clock, "now", lambda: time.time() + 2 * operations.DAY_SECONDS)
        deadline = time.monotonic() + 30
        while not (pruned := store.requests(EVERYONE, operation="PruneStore").items):
            assert time.monotonic() < deadline, "the worker never pruned"
            wake_worker(client)
            time.sleep(0.05)
        assert pruned[-1].counts["requests"] >= 1  # the AddMemories record, and nothing audited empty-handed
        assert all(r.counts["requests"] + r.counts["history"] + r.counts["idempotency_keys"] for r in pruned)


def test_get_or_create_memory_store_is_rerunnable(client: MemoryClient) -> None:
    first = client.get_or_create_memory_store("agent_memory", description="first")
    second = client.get_or_create_memory_store("agent_memory", description="ignored")
    assert first.info() == second.info() and second.info().description == "first"


def test_audit_scope_segments_are_unambiguous(api: Any) -> None:
    lookalike = '["alice","bob"]'
    api.add(SCOPE.with_(tenant_id="alice"), text="alice's memory")
    api.list(SCOPE.with_(tenant_id=["alice", "bob"], agent_id="*", run_id="*"))
    api.list(SCOPE.with_(tenant_id="[abc", agent_id="*", run_id="*"))
    theirs = api.requests(SCOPE.with_(tenant_id=lookalike, agent_id="*", run_id="*")).items
    assert theirs == []  # not the list read over alice and bob
    everyone = api.requests(EVERYONE).items
    scopes = {r.operation + str(r.scope) for r in everyone if r.scope is not None}
    assert "ListMemoriesapp-001/[alice,bob]/*/*" in scopes and "ListMemoriesapp-001/[abc/*/*" in scopes
    listed = next(r for r in everyone if r.operation == "ListMemories" and r.scope.tenant_id == ("alice", "bob"))
    assert listed.scope == SCOPE.with_(tenant_id=["alice", "bob"], agent_id="*", run_id="*")


def test_a_version_1_record_is_migrated(tmp_path: Path, fake_embedder: Embedder) -> None:
    from memory_plugin.storage.sqlite import schema

    with sqlite3.connect(tmp_path / "memory.db") as db:
        for statement in schema._VERSION_1.split(";"):
            db.execute(statement)
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        db.execute(
            "INSERT INTO stores (name, description, embedder, dimension, created_at) VALUES ('s', '', ?, 256, 0)",
            (fake_embedder.name,),
        )
        db.execute(
            "INSERT INTO requests (request_id, store_id, operation, app_id, tenant_id, agent_id, run_id, outcome,"
            " latency_ms, time, counts) VALUES ('req_1', 1, 'ListMemories', 'app', '[\"a\",\"b\"]', '*', '*', 'ok',"
            " 1, 0, '{}')"
        )
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.get_memory_store("s")
        [record] = store.requests(Scope("app", "*", "*", "*"), operation="ListMemories").items
        assert record.scope == Scope("app", ["a", "b"], "*", "*")
        assert store.info().audit_retention_days is None
        store.add(SCOPE, text="written after the migration", idempotency_key="k")
    with sqlite3.connect(tmp_path / "memory.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(
            schema.SCHEMA_VERSION
        )


@pytest.mark.parametrize("version", ["0", "99"])
def test_a_record_of_another_schema_version_is_refused(tmp_path: Path, fake_embedder: Embedder, version: str) -> None:
    from memory_plugin import StorageError

    MemoryClient(path=tmp_path, embedder=fake_embedder).close()
    with sqlite3.connect(tmp_path / "memory.db") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    with pytest.raises(StorageError, match=f"schema version {version},.*open it with a newer memory-plugin"):
        MemoryClient(path=tmp_path, embedder=fake_embedder)
    MemoryClient(path=tmp_path / "fresh", embedder=fake_embedder).close()  # the refusal left nothing in the way

"""Model-based property test: random sequences of calls on a real store (sync and async client) against a small
in-memory reference model. Reads never leave their scope, pages return exactly the model's set, a deleted memory
is not found, history and short-term messages match the model, and the audit records every call."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from memory_plugin import AsyncMemoryClient, MemoryClient, MemoryNotFoundError, Scope
from memory_plugin.models import every_page
from tests.conftest import INDEX_PATH, SCAN_PATH, AsyncAsSync, make_fake_embedder
from tests.internals import use_settings

APPS, TENANTS, AGENTS, RUNS = ["app1", "app2", "app3"], ["t1", "t2", "t3"], ["a1", "a2"], ["r1", "r2"]
WORDS = ["coffee", "tea", "river", "mountain", "berlin", "piano"]

concrete_scopes = st.builds(
    Scope, app_id=st.sampled_from(APPS), tenant_id=st.sampled_from(TENANTS), agent_id=st.sampled_from(AGENTS),
    run_id=st.sampled_from(RUNS),
)  # fmt: skip


def read_segment(ids: list[str]) -> st.SearchStrategy[str | list[str]]:
    return st.one_of(st.just("*"), st.sampled_from(ids), st.lists(st.sampled_from(ids), min_size=1, max_size=3))


read_scopes = st.builds(
    Scope, app_id=st.sampled_from(APPS), tenant_id=read_segment(TENANTS), agent_id=read_segment(AGENTS),
    run_id=read_segment(RUNS),
)  # fmt: skip
texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


def inside(memory_scope: Scope, read: Scope) -> bool:
    for segment, wanted in read.segments().items():
        value = getattr(memory_scope, segment)
        if wanted != "*" and value != wanted and (isinstance(wanted, str) or value not in wanted):
            return False
    return True


@dataclass
class Model:
    memories: dict[str, tuple[Scope, str]] = field(default_factory=dict)
    deleted: dict[str, Scope] = field(default_factory=dict)
    history: dict[str, list[tuple[str, str | None, str | None]]] = field(default_factory=dict)
    messages: dict[Scope, list[str]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)  # audit records expected per app


class Open:
    """A store on a fresh data folder, through the sync client (vector candidates from the in-memory matrix) or the
    async client (without it: from a scan of the record or from the vector index, as each search draws); or on a
    new PostgreSQL database with a Chroma server (the scan or the Chroma server's index)."""

    def __init__(self, mode: str) -> None:
        self._folder = tempfile.TemporaryDirectory()
        path = Path(self._folder.name)
        self._loop: asyncio.AbstractEventLoop | None = None
        if mode == "sync":
            self._client: Any = MemoryClient(path=path, embedder=make_fake_embedder())
        elif mode == "postgres+chroma":  # a new database of the session's throwaway PostgreSQL, a Chroma server
            from tests.scaleout_harness import servers

            postgres, chroma = servers()
            where = {"database": postgres.new_database(), "index": chroma.url}
            self._client = MemoryClient(**where, embedder=make_fake_embedder(), settings=SCAN_PATH)
        else:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
            self._thread.start()
            client = AsyncMemoryClient(path=path, embedder=make_fake_embedder(), settings=SCAN_PATH)
            self._client = AsyncAsSync(client, self._loop)
        self.store = self._client.create_memory_store("model")
        if self._loop is not None:
            self.store = AsyncAsSync(self.store, self._loop)

    def close(self) -> None:
        self._client.close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
        self._folder.cleanup()


class StoreMachine(RuleBasedStateMachine):
    mode = "sync"

    def __init__(self) -> None:
        super().__init__()
        self.opened = Open(self.mode)
        self.store = self.opened.store
        self.model = Model()

    def teardown(self) -> None:
        self.opened.close()

    def _called(self, scope: Scope) -> None:
        self.model.calls[scope.app_id] += 1

    def _remember(self, memory_id: str, scope: Scope, text: str) -> None:
        assert memory_id not in self.model.memories and memory_id not in self.model.deleted
        self.model.memories[memory_id] = (scope, text)
        self.model.history[memory_id] = [("created", None, text)]

    @rule(scope=concrete_scopes, text=texts)
    def add_text(self, scope: Scope, text: str) -> None:
        result = self.store.add(scope, text=text)
        self._called(scope)
        assert [m.text for m in result.memories] == [text]
        self._remember(result.memories[0].id, scope, text)

    @rule(scope=concrete_scopes, turns=st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), texts),
                                                min_size=1, max_size=3))  # fmt: skip
    def add_messages(self, scope: Scope, turns: list[tuple[str, str]]) -> None:
        result = self.store.add(scope, messages=[{"role": role, "content": text} for role, text in turns])
        self._called(scope)
        self.model.messages.setdefault(scope, []).extend(text for _, text in turns)
        expected = [text for role, text in turns if role != "system"]
        assert [m.text for m in result.memories] == expected
        for memory in result.memories:
            assert memory.scope == scope
            self._remember(memory.id, scope, memory.text)

    def _pick(self, data: st.DataObject, pool: dict[str, Any]) -> str:
        return data.draw(st.sampled_from(sorted(pool)))

    @precondition(lambda self: self.model.memories)
    @rule(data=st.data(), text=texts)
    def update(self, data: st.DataObject, text: str) -> None:
        memory_id = self._pick(data, self.model.memories)
        scope, old = self.model.memories[memory_id]
        assert self.store.update(scope, memory_id, text=text).text == text
        self._called(scope)
        self.model.memories[memory_id] = (scope, text)
        self.model.history[memory_id].append(("updated", old, text))

    @precondition(lambda self: self.model.memories)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        memory_id = self._pick(data, self.model.memories)
        scope, old = self.model.memories.pop(memory_id)
        self.store.delete(scope, memory_id)
        self._called(scope)
        self.model.deleted[memory_id] = scope
        self.model.history[memory_id].append(("deleted", old, None))

    @precondition(lambda self: self.model.memories or self.model.deleted)
    @rule(data=st.data(), other=concrete_scopes)
    def get_and_history(self, data: st.DataObject, other: Scope) -> None:
        memory_id = self._pick(data, {**self.model.memories, **self.model.deleted})
        live = memory_id in self.model.memories
        scope = self.model.memories[memory_id][0] if live else self.model.deleted[memory_id]
        if live:
            assert self.store.get(scope, memory_id).text == self.model.memories[memory_id][1]
        else:
            with pytest.raises(MemoryNotFoundError):
                self.store.get(scope, memory_id)
        self._called(scope)
        events = [(e.event, e.old_text, e.new_text) for e in self.store.history(scope, memory_id)]
        self._called(scope)
        assert events == self.model.history[memory_id]
        if other != scope:  # another scope never sees it, not even its history
            with pytest.raises(MemoryNotFoundError):
                self.store.get(other, memory_id)
            self._called(other)
            with pytest.raises(MemoryNotFoundError):
                self.store.history(other, memory_id)
            self._called(other)

    @rule(read=read_scopes, limit=st.integers(1, 7))
    def list_pages(self, read: Scope, limit: int) -> None:
        seen: list[str] = []
        for page in every_page(lambda cursor: self.store.list(read, limit=limit, cursor=cursor)):
            self._called(read)
            assert len(page.items) <= limit
            seen += [m.id for m in page.items]
            for memory in page.items:
                assert inside(memory.scope, read)
        assert len(seen) == len(set(seen))
        assert set(seen) == {i for i, (s, _) in self.model.memories.items() if inside(s, read)}

    @rule(read=read_scopes, words=texts, top_k=st.integers(1, 50), use_index=st.booleans())
    def search(self, read: Scope, words: str, top_k: int, use_index: bool) -> None:
        use_settings(self.store, INDEX_PATH if use_index else SCAN_PATH)  # through Chroma, or the exact scan
        hits = self.store.search(read, words, top_k=top_k)
        self._called(read)
        expected = {i for i, (s, _) in self.model.memories.items() if inside(s, read)}
        found = [h.memory.id for h in hits]
        assert set(found) <= expected and len(found) == len(set(found)) <= top_k
        for hit in hits:
            assert hit.memory.text == self.model.memories[hit.memory.id][1]
            assert 0.0 <= hit.score <= 1.0

    @rule(scope=concrete_scopes, limit=st.integers(1, 5))
    def messages(self, scope: Scope, limit: int) -> None:
        contents: list[str] = []
        for page in every_page(lambda cursor: self.store.messages(scope, limit=limit, cursor=cursor)):
            self._called(scope)
            contents += [m.content for m in page.items]
        assert contents == self.model.messages.get(scope, [])

    @rule(scope=concrete_scopes)
    def clear_messages(self, scope: Scope) -> None:
        assert self.store.clear_messages(scope) == len(self.model.messages.pop(scope, []))
        self._called(scope)

    @rule(app=st.sampled_from(APPS))
    def requests(self, app: Scope) -> None:
        read = Scope(app_id=app, tenant_id="*", agent_id="*", run_id="*")
        expected = self.model.calls[app]
        records = []
        for page in every_page(lambda cursor: self.store.requests(read, limit=100, cursor=cursor)):
            self.model.calls[app] += 1
            records += page.items
        assert len(records) == expected
        assert all(r.scope is not None and r.scope.app_id == app for r in records)

    @invariant()
    def every_memory_has_a_history(self) -> None:
        assert len(self.model.memories) + len(self.model.deleted) == len(self.model.history)


class AsyncStoreMachine(StoreMachine):
    mode = "async"


class ScaledOutStoreMachine(StoreMachine):
    mode = "postgres+chroma"


MACHINE_SETTINGS = settings(
    max_examples=20, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
)


@pytest.mark.parametrize(
    "machine", [StoreMachine, AsyncStoreMachine, ScaledOutStoreMachine], ids=["sync", "async", "postgres+chroma"]
)
def test_store_matches_the_reference_model(machine: type[StoreMachine]) -> None:
    run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)

"""MemoryPluginStore against the behaviour LangGraph's own store tests check (``InMemoryStore`` and the Postgres
store: batches, get/put/delete, search with filters and pagination, namespace listing, namespace validation,
vector search), plus what a persistent store on the engine adds: the namespace -> scope mapping, persistence
across clients, and clear errors for what it cannot hold."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.store.base import GetOp, InvalidNamespaceError, Item, ListNamespacesOp, MatchCondition, PutOp, SearchOp

from langchain_memory_plugin import MemoryPluginStore
from memory_plugin import (
    Embedder,
    ExtractionError,
    InvalidArgumentError,
    MemoryClient,
    MemoryStore,
    NewMemory,
    Scope,
)
from memory_plugin.extraction import ExtractionInput
from tests.adapters.langchain.fakes import ScriptedChatModel

SERVER_APP = "lg-app"  # real_store's server key is of this app


@pytest.fixture
def lg(store: MemoryStore) -> MemoryPluginStore:
    return MemoryPluginStore(store, app_id="lg-app")


@pytest.fixture
def vector_lg(real_store: MemoryStore) -> MemoryPluginStore:
    return MemoryPluginStore(real_store, app_id="lg-app")


def blocking(method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """An async store method called as a plain function (a fresh event loop per call)."""
    return lambda *args, **kwargs: asyncio.run(method(*args, **kwargs))


def put_all(lg: MemoryPluginStore, namespaces: list[tuple[str, ...]]) -> None:
    for i, namespace in enumerate(namespaces):
        lg.put(namespace, f"id_{i}", {"data": f"value_{i:02d}"})


# ---- batches -------------------------------------------------------------------------------------------------


def test_batch_returns_one_result_per_op_in_order(lg: MemoryPluginStore) -> None:
    lg.put(("test", "foo"), "key1", {"data": "value1"})
    lg.put(("test", "bar"), "key2", {"data": "value2"})
    results = lg.batch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test", "bar"), "key2", {"data": "value2"}),
            SearchOp(("test",), filter={"data": "value1"}),
            ListNamespacesOp(limit=10),
            GetOp(("test",), "key3"),
        ]
    )
    assert isinstance(results[0], Item) and results[0].value == {"data": "value1"} and results[0].key == "key1"
    assert results[1] is None
    assert [i.key for i in results[2]] == ["key1"]  # type: ignore[union-attr]
    assert results[3] == [("test", "bar"), ("test", "foo")]
    assert results[4] is None


def test_batch_reads_see_the_store_before_its_writes_and_the_last_write_wins(lg: MemoryPluginStore) -> None:
    lg.put(("docs",), "k", {"v": 1})
    results = lg.batch(
        [
            PutOp(("docs",), "k", {"v": 2}),
            GetOp(("docs",), "k"),
            PutOp(("docs",), "k", {"v": 3}),
            PutOp(("docs",), "x", None),
        ]
    )
    assert results[1].value == {"v": 1}  # type: ignore[union-attr]
    assert lg.get(("docs",), "k").value == {"v": 3}  # type: ignore[union-attr]


def test_batch_puts_and_deletes(lg: MemoryPluginStore) -> None:
    lg.batch(
        [
            PutOp(("test",), "key1", {"data": "value1"}),
            PutOp(("test",), "key2", {"data": "value2"}),
            PutOp(("test",), "key3", None),
        ]
    )
    assert lg.get(("test",), "key1").value == {"data": "value1"}  # type: ignore[union-attr]
    assert lg.get(("test",), "key2").value == {"data": "value2"}  # type: ignore[union-attr]
    assert lg.get(("test",), "key3") is None


def test_batch_searches(lg: MemoryPluginStore) -> None:
    for namespace, key, tag in [
        (("test", "foo"), "key1", "a"),
        (("test", "bar"), "key2", "a"),
        (("test", "baz"), "key3", "b"),
    ]:
        lg.put(namespace, key, {"data": key, "tag": tag})
    tagged, first_two, foo = lg.batch(
        [SearchOp(("test",), filter={"tag": "a"}), SearchOp(("test",), limit=2), SearchOp(("test", "foo"))]
    )
    assert sorted(i.key for i in tagged) == ["key1", "key2"]  # type: ignore[union-attr]
    assert len(first_two) == 2  # type: ignore[arg-type]
    assert [(i.namespace, i.key) for i in foo] == [(("test", "foo"), "key1")]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_basic_operations(lg: MemoryPluginStore, mode: str) -> None:
    if mode == "sync":
        get, put, delete = lg.get, lg.put, lg.delete
    else:
        get, put, delete = blocking(lg.aget), blocking(lg.aput), blocking(lg.adelete)
    namespace = ("test", "documents")
    put(namespace, "doc1", {"title": "Test Document", "content": "Hello, World!"})
    item = get(namespace, "doc1")
    assert item is not None and item.namespace == namespace and item.key == "doc1"
    assert item.value == {"title": "Test Document", "content": "Hello, World!"}
    put(namespace, "doc1", {"title": "Updated Document", "content": "Hello, Updated!"})
    updated = get(namespace, "doc1")
    assert updated is not None and updated.value == {"title": "Updated Document", "content": "Hello, Updated!"}
    assert updated.updated_at > item.updated_at and updated.created_at == item.created_at
    assert get(("test", "other_documents"), "doc1") is None
    delete(namespace, "doc1")
    assert get(namespace, "doc1") is None


def test_concurrent_async_puts_to_one_key_leave_one_item(lg: MemoryPluginStore, store: MemoryStore) -> None:
    async def many() -> None:
        await asyncio.gather(*(lg.aput(("test",), "same", {"value": i}) for i in range(8)))

    asyncio.run(many())
    assert len(lg.search(("test",))) == 1
    assert len(store.list(Scope("lg-app", "*", "*", "*")).items) == 1


# ---- search ----------------------------------------------------------------------------------------------------


def test_search_by_prefix_filter_and_pagination(lg: MemoryPluginStore) -> None:
    lg.put(("test", "docs"), "doc1", {"title": "First Doc", "author": "Alice", "tags": ["important"]})
    lg.put(("test", "docs"), "doc2", {"title": "Second Doc", "author": "Bob", "tags": ["draft"]})
    lg.put(("test", "images"), "img1", {"title": "Image 1", "author": "Alice", "tags": ["final"]})
    assert len(lg.search(("test",))) == 3
    assert {i.namespace for i in lg.search(("test", "docs"))} == {("test", "docs")}
    assert sorted(i.key for i in lg.search(("test",), filter={"author": "Alice"})) == ["doc1", "img1"]
    assert [i.key for i in lg.search(("test",), filter={"tags": ["draft"]})] == ["doc2"]
    assert len(lg.search(("test",), limit=2)) == 2
    assert len(lg.search(("test",), offset=2)) == 1
    assert lg.search(("test",), limit=0) == []
    assert lg.search(("elsewhere",)) == [] and len(lg.search(())) == 3
    assert all(i.score is None for i in lg.search(("test",)))


def test_numeric_comparisons_are_numeric_and_strings_lexicographic(lg: MemoryPluginStore) -> None:
    for key, score in [("a", 2), ("b", 9), ("c", 10), ("d", 11), ("e", 9.5)]:
        lg.put(("scores",), key, {"score": score})
    lg.put(("names",), "a", {"name": "apple"})
    lg.put(("names",), "b", {"name": "banana"})

    def scores(condition: dict[str, Any]) -> list[float]:
        return sorted(i.value["score"] for i in lg.search(("scores",), filter={"score": condition}))

    assert scores({"$gte": 10}) == [10, 11]
    assert scores({"$gt": 9}) == [9.5, 10, 11]
    assert scores({"$lt": 10}) == [2, 9, 9.5]
    assert scores({"$lte": 9}) == [2, 9]
    assert scores({"$ne": 9}) == [2, 9.5, 10, 11]
    assert scores({"$eq": 9}) == [9]
    assert [i.key for i in lg.search(("names",), filter={"name": {"$gt": "apple"}})] == ["b"]
    with pytest.raises(ValueError, match="unsupported filter operator"):
        lg.search(("names",), filter={"name": {"$regex": "a"}})


def test_nested_and_dotted_filter_keys(lg: MemoryPluginStore) -> None:
    lg.put(("docs",), "hyphen", {"user": {"access-level": "nested", "team": {"name": "core"}}})
    lg.put(("docs",), "other", {"user": {"access-level": "public"}})
    assert [i.key for i in lg.search(("docs",), filter={"user.access-level": "nested"})] == ["hyphen"]
    assert [i.key for i in lg.search(("docs",), filter={"user": {"team": {"name": "core"}}})] == ["hyphen"]


# ---- list_namespaces -------------------------------------------------------------------------------------------

NAMESPACES = [
    ("a", "b", "c"),
    ("a", "b", "d", "e"),
    ("a", "b", "d", "i"),
    ("a", "b", "f"),
    ("a", "c", "f"),
    ("b", "a", "f"),
    ("users", "123"),
    ("users", "456", "settings"),
    ("admin", "users", "789"),
]


def test_list_namespaces_prefix_suffix_wildcards_depth_and_pages(lg: MemoryPluginStore) -> None:
    put_all(lg, NAMESPACES)
    ab = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f")]
    assert lg.list_namespaces(prefix=("a", "b")) == ab
    assert lg.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert lg.list_namespaces(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert lg.list_namespaces(prefix=("a", "b"), max_depth=3) == [("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert lg.list_namespaces(prefix=("a", "b"), limit=2) == ab[:2]
    assert lg.list_namespaces(prefix=("a", "b"), offset=2) == ab[2:]
    assert lg.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert lg.list_namespaces(suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert lg.list_namespaces(prefix=("a", "b", "d", "*")) == [("a", "b", "d", "e"), ("a", "b", "d", "i")]
    assert lg.list_namespaces(prefix=("nonexistent",)) == []
    assert lg.list_namespaces(prefix=("users", "123")) == [("users", "123")]
    assert lg.list_namespaces(prefix=("users", "*")) == [("users", "123"), ("users", "456", "settings")]
    assert lg.list_namespaces(prefix=("*", "users"), suffix=("*", "settings")) == []
    assert lg.list_namespaces() == sorted(NAMESPACES)
    assert lg.list_namespaces(max_depth=2) == sorted({n[:2] for n in NAMESPACES})


def test_list_namespaces_pagination_and_empty_store(lg: MemoryPluginStore) -> None:
    assert lg.list_namespaces() == []
    for i in range(20):
        lg.put(("namespace", f"sub_{i:02d}"), f"id_{i:02d}", {"data": i})
    assert lg.list_namespaces(prefix=("namespace",), limit=5) == [("namespace", f"sub_{i:02d}") for i in range(5)]
    assert lg.list_namespaces(prefix=("namespace",), limit=5, offset=15) == [
        ("namespace", f"sub_{i:02d}") for i in range(15, 20)
    ]
    assert lg.batch([ListNamespacesOp(match_conditions=(MatchCondition("suffix", ("sub_03",)),))]) == [
        [("namespace", "sub_03")]
    ]


# ---- namespaces: validation and mapping --------------------------------------------------------------------------


def test_invalid_namespaces_are_rejected_before_anything_is_written(lg: MemoryPluginStore, store: MemoryStore) -> None:
    doc = {"foo": "bar"}
    for namespace in [(), ("the", "thing.about"), ("some", "fun", ""), ("langgraph", "foo")]:
        with pytest.raises(InvalidNamespaceError):
            lg.put(namespace, "foo", doc)
        with pytest.raises(InvalidNamespaceError):
            asyncio.run(lg.aput(namespace, "foo", doc))
    for namespace in [("a*b",), ("x" * 129,), ("ok", "tab\there"), tuple(str(i) for i in range(18))]:
        with pytest.raises(InvalidNamespaceError, match="cannot be stored|at most 17 labels"):
            lg.put(namespace, "foo", doc)
    with pytest.raises(InvalidNamespaceError):
        lg.batch([GetOp(("bad.label",), "k")])
    with pytest.raises(InvalidNamespaceError):
        lg.batch([PutOp((), "k", doc)])
    assert store.list(Scope("lg-app", "*", "*", "*")).items == []
    # "langgraph" is only forbidden as the root of put(); elsewhere, and through batch(), it is an ordinary label.
    lg.put(("foo", "langgraph", "foo"), "bar", doc)
    assert lg.get(("foo", "langgraph", "foo"), "bar").value == doc  # type: ignore[union-attr]
    lg.batch([PutOp(("langgraph", "foo"), "bar", doc)])
    assert lg.search(("langgraph", "foo"))[0].value == doc


def test_namespaces_map_onto_scopes_and_items_onto_memories(lg: MemoryPluginStore, store: MemoryStore) -> None:
    lg.put(("user-1",), "profile", {"name": "Ann"})
    lg.put(("user-1", "memories"), "m1", {"text": "likes tea"})
    lg.put(("user-1", "assistant", "s1"), "m2", {"text": "asked about Lisbon"})
    lg.put(("user-1", "assistant", "s1", "notes", "deep"), "m3", {"text": "deep note"})
    lg.put(("user-2", "memories"), "m1", {"text": "likes coffee"})

    def where(tenant: str = "*", agent: str = "*", run: str = "*") -> set[tuple[str, str]]:
        memories = store.list(Scope("lg-app", tenant, agent, run), limit=100).items
        return {(str(m.metadata["lg_ref"]), m.text) for m in memories}

    assert where("user-1", ".", ".") == {('["user-1","profile"]', '{"name": "Ann"}')}
    assert where("user-1", "memories", ".") == {('["user-1","memories","m1"]', '{"text": "likes tea"}')}
    assert {ref for ref, _ in where("user-1", "assistant", "s1")} == {
        '["user-1","assistant","s1","m2"]',
        '["user-1","assistant","s1","notes","deep","m3"]',
    }
    assert len(where("user-1")) == 4 and len(where("user-2")) == 1
    [deep] = store.list(Scope("lg-app", "user-1", "assistant", "s1"), filters={"lg_ns3": "notes"}).items
    assert deep.metadata["lg_ns4"] == "deep" and deep.metadata["lg_item"] is True
    # Same key, different namespaces: different items.
    assert lg.get(("user-2", "memories"), "m1").value == {"text": "likes coffee"}  # type: ignore[union-attr]
    assert lg.get(("user-1", "assistant"), "m2") is None
    assert lg.get(("user-1", "assistant", "s1", "notes"), "m3") is None


def test_tenant_label_puts_each_langmem_user_in_a_tenant_of_their_own(store: MemoryStore) -> None:
    lg = MemoryPluginStore(store, app_id="lg-app", tenant_label=1)  # langmem's ("memories", "{user_id}")
    lg.put(("memories", "u1"), "a", {"content": "u1 likes tea"})
    lg.put(("memories", "u2"), "a", {"content": "u2 likes coffee"})
    lg.put(("memories", "u1", "work", "deep"), "b", {"content": "u1 works nights"})
    lg.put(("memories",), "shared", {"content": "no user in this namespace"})

    def tenant_items(tenant: str) -> set[str]:
        return {str(m.metadata["lg_ref"]) for m in store.list(Scope("lg-app", tenant, "*", "*"), limit=100).items}

    assert tenant_items("u1") == {'["memories","u1","a"]', '["memories","u1","work","deep","b"]'}
    assert tenant_items("u2") == {'["memories","u2","a"]'}
    assert tenant_items(".") == {'["memories","shared"]'}
    [deep] = store.list(Scope("lg-app", "u1", "memories", "work")).items
    assert deep.metadata["lg_ns3"] == "deep"
    # Each user reads only their own items, by key, prefix, query and namespace listing.
    assert lg.get(("memories", "u1"), "a").value == {"content": "u1 likes tea"}  # type: ignore[union-attr]
    assert lg.get(("memories", "u2"), "b") is None
    assert [i.value["content"] for i in lg.search(("memories", "u2"), query="likes")] == ["u2 likes coffee"]
    assert {i.key for i in lg.search(("memories", "u1"))} == {"a", "b"}
    assert lg.list_namespaces(prefix=("memories", "u2")) == [("memories", "u2")]
    # A prefix that stops before the tenant label reads every tenant, as in LangGraph's own stores.
    assert len(lg.search(("memories",))) == 4 and len(lg.list_namespaces(prefix=("memories", "*"), max_depth=2)) == 2


def test_tenant_label_is_checked_when_the_store_is_built(store: MemoryStore) -> None:
    for bad in (-1, 17, True, "1", 1.0):
        with pytest.raises(InvalidArgumentError, match=r"tenant_label: must be the index .* got"):
            MemoryPluginStore(store, tenant_label=bad)  # type: ignore[arg-type]


def test_langmem_style_memory_tools_keep_users_apart(store: MemoryStore) -> None:
    """What langmem's manage / search memory tools do with ``namespace=("memories", "{user_id}")``: put
    ``{"content": ...}`` under a random key and search the user's namespace, the user id coming from the config."""
    lg = MemoryPluginStore(store, app_id="my-app", tenant_label=1)

    @tool
    def manage_memory(content: str, runtime: ToolRuntime[Any, Any]) -> str:
        """Create a memory."""
        namespace = ("memories", runtime.config["configurable"]["user_id"])
        key = str(uuid.uuid4())
        runtime.store.put(namespace, key, {"content": content})  # type: ignore[union-attr]
        return f"created memory {key}"

    @tool
    def search_memory(query: str, runtime: ToolRuntime[Any, Any]) -> str:
        """Search memories."""
        namespace = ("memories", runtime.config["configurable"]["user_id"])
        return "; ".join(i.value["content"] for i in runtime.store.search(namespace, query=query))  # type: ignore[union-attr]

    def chat(user_id: str, *calls: AIMessage) -> list[str]:
        model = ScriptedChatModel(replies=[*calls, "done"])
        agent = create_agent(model, tools=[manage_memory, search_memory], store=lg)
        result = agent.invoke({"messages": [{"role": "user", "content": "hi"}]}, {"configurable": {"user_id": user_id}})
        return [m.text for m in result["messages"] if m.type == "tool"]

    def call(name: str, **args: str) -> AIMessage:
        return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])

    chat("u1", call("manage_memory", content="u1 is allergic to peanuts"))
    chat("u2", call("manage_memory", content="u2 is allergic to shellfish"))
    assert chat("u2", call("search_memory", query="allergic")) == ["u2 is allergic to shellfish"]
    assert [m.text for m in store.list(Scope("my-app", "u1", "*", "*")).items] == [
        '{"content": "u1 is allergic to peanuts"}'
    ]


def test_other_memories_of_the_same_app_are_not_items(lg: MemoryPluginStore, store: MemoryStore) -> None:
    store.add(Scope("lg-app", "user-1", "assistant", "s1"), text="written by the middleware")
    lg.put(("user-1", "assistant", "s1"), "k", {"text": "item"})
    assert [i.key for i in lg.search(("user-1",))] == ["k"]
    assert [i.key for i in lg.search(("user-1",), query="written by the middleware")] == ["k"]
    assert lg.list_namespaces() == [("user-1", "assistant", "s1")]


def test_items_persist_across_clients(tmp_path: Path, fake_embedder: Embedder) -> None:
    with MemoryClient(path=tmp_path / "p", embedder=fake_embedder) as client:
        lg = MemoryPluginStore(client.create_memory_store("graph"))
        lg.put(("user-1", "prefs"), "drink", {"text": "espresso", "sugar": False, "cups": 2})
    with MemoryClient(path=tmp_path / "p", embedder=fake_embedder) as client:
        lg = MemoryPluginStore(client.get_memory_store("graph"))
        item = lg.get(("user-1", "prefs"), "drink")
        assert item is not None and item.value == {"text": "espresso", "sugar": False, "cups": 2}
        assert lg.list_namespaces() == [("user-1", "prefs")]


def test_what_the_store_cannot_hold_is_a_clear_error(lg: MemoryPluginStore) -> None:
    with pytest.raises(NotImplementedError, match="TTL"):
        lg.put(("docs",), "k", {"a": 1}, ttl=5)
    with pytest.raises(NotImplementedError, match="TTL"):
        lg.batch([PutOp(("docs",), "k", {"a": 1}, ttl=5.0)])
    with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
        lg.put(("docs",), "k", {"when": object()})
    with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
        lg.put(("docs",), "k", {"x": float("nan")})
    with pytest.raises(InvalidArgumentError, match="at most 32000 characters"):
        lg.put(("docs",), "k", {"text": "x" * 32_000})
    with pytest.raises(InvalidArgumentError, match="namespace and key together"):
        lg.put(("docs",), "k" * 2_100, {"a": 1})
    with pytest.raises(ValueError, match="unknown store operation"):
        lg.batch(["not an op"])  # type: ignore[list-item]
    assert lg.search(("docs",)) == []


class SplittingExtractor:
    """An extractor that rewrites text into several memories (as an LLM extractor might)."""

    def extract(self, request: ExtractionInput) -> list[NewMemory]:
        return [NewMemory(text=part, memory_type="fact") for part in (request.text or "").split(",")]


@pytest.fixture
def splitting_store(tmp_path: Path, fake_embedder: Embedder) -> Iterator[MemoryStore]:
    with MemoryClient(path=tmp_path / "split", embedder=fake_embedder) as client:
        yield client.create_memory_store("split", extractor=SplittingExtractor())


def test_a_store_whose_extractor_rewrites_text_is_refused_and_left_clean(splitting_store: MemoryStore) -> None:
    lg = MemoryPluginStore(splitting_store)
    with pytest.raises(ExtractionError, match="needs an extractor that keeps add"):
        lg.put(("docs",), "k", {"a": 1, "b": 2})
    assert splitting_store.list(Scope("langgraph", "*", "*", "*")).items == []


def test_agent_tools_use_it_through_the_runtime_store(lg: MemoryPluginStore) -> None:
    @tool
    def remember(fact: str, runtime: ToolRuntime[Any, Any]) -> str:
        """Remember a fact about the user."""
        assert runtime.store is not None
        runtime.store.put(("user-1", "facts"), "latest", {"text": fact})
        return "ok"

    model = ScriptedChatModel(
        replies=[AIMessage("", tool_calls=[{"name": "remember", "args": {"fact": "likes jazz"}, "id": "c"}]), "done"]
    )
    agent = create_agent(model, tools=[remember], store=lg)
    agent.invoke({"messages": [{"role": "user", "content": "I like jazz"}]})
    assert lg.get(("user-1", "facts"), "latest").value == {"text": "likes jazz"}  # type: ignore[union-attr]


def test_query_pagination_is_consistent_past_the_engine_top_k(lg: MemoryPluginStore) -> None:
    for i in range(54):
        lg.put(("test",), f"doc{i:02d}", {"text": f"test document number {i}"})
    everything = lg.search(("test",), query="test document", limit=100)
    assert len(everything) == 54 and len({r.key for r in everything}) == 54
    pages = [lg.search(("test",), query="test document", limit=18, offset=o) for o in (0, 18, 36)]
    assert [r.key for page in pages for r in page] == [r.key for r in everything]
    assert [r.key for r in lg.search(("test",), query="test document", limit=2, offset=2)] == [
        r.key for r in everything[2:4]
    ]


# ---- vector search (the real model) ------------------------------------------------------------------------------


@pytest.mark.model
def test_query_search_ranks_by_relevance_with_scores(vector_lg: MemoryPluginStore) -> None:
    for key, value in [
        ("doc1", {"text": "short text"}),
        ("doc2", {"text": "longer text document"}),
        ("doc3", {"text": "longest text document here"}),
        ("doc4", {"description": "text in description field"}),
        ("doc5", {"content": "text in content field"}),
        ("doc6", {"body": "text in body field"}),
    ]:
        vector_lg.put(("test",), key, value)
    results = vector_lg.search(("test",), query="long text document")
    assert {"doc2", "doc3"} <= {r.key for r in results[:3]}
    scores = [r.score for r in results]
    assert all(s is not None and 0 <= s <= 1 for s in scores) and scores == sorted(scores, reverse=True)  # type: ignore[type-var]


@pytest.mark.model
def test_update_changes_what_a_query_finds(vector_lg: MemoryPluginStore) -> None:
    vector_lg.put(("test",), "doc1", {"text": "zany zebra Xerxes"})
    vector_lg.put(("test",), "doc2", {"text": "something about dogs"})
    vector_lg.put(("test",), "doc3", {"text": "text about birds"})
    before = vector_lg.search(("test",), query="Zany Xerxes")
    assert before[0].key == "doc1"
    vector_lg.put(("test",), "doc1", {"text": "new text about dogs"})
    after = next(r.score for r in vector_lg.search(("test",), query="Zany Xerxes") if r.key == "doc1")
    assert after < before[0].score  # type: ignore[operator]
    assert vector_lg.search(("test",), query="new text about dogs")[0].key == "doc1"


@pytest.mark.model
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_query_with_filters_ranks_only_matching_items(vector_lg: MemoryPluginStore, mode: str) -> None:
    for key, value in [
        ("doc1", {"text": "red apple", "color": "red", "score": 4.5}),
        ("doc2", {"text": "red car", "color": "red", "score": 3.0}),
        ("doc3", {"text": "green apple", "color": "green", "score": 4.0}),
        ("doc4", {"text": "blue car", "color": "blue", "score": 3.5}),
    ]:
        vector_lg.put(("test",), key, value)

    def search(query: str, condition: dict[str, Any]) -> list[str]:
        if mode == "async":
            return [r.key for r in asyncio.run(vector_lg.asearch(("test",), query=query, filter=condition))]
        return [r.key for r in vector_lg.search(("test",), query=query, filter=condition)]

    assert search("apple", {"color": "red"}) == ["doc1", "doc2"]
    assert search("car", {"color": "red"}) == ["doc2", "doc1"]
    assert search("blue vehicle", {"score": {"$gt": 3.2}})[0] == "doc4"
    assert search("apple", {"score": {"$gte": 4.0}, "color": "green"}) == ["doc3"]


@pytest.mark.model
def test_query_edge_cases_and_non_ascii(vector_lg: MemoryPluginStore) -> None:
    vector_lg.put(("test",), "doc1", {"text": "test document"})
    for query in ["", None, "test " * 100, "test!@#$%^&*()", "x" * 5_000]:
        assert len(vector_lg.search(("test",), query=query)) == 1
    texts = {"1": "这是中文", "2": "これは日本語です", "3": "이건 한국어야", "4": "Это русский", "5": "यह रूसी है"}
    for key, text in texts.items():
        vector_lg.put(("user_123", "memories"), key, {"text": text})
    for key, text in texts.items():
        assert vector_lg.search(("user_123", "memories"), query=text)[0].key == key

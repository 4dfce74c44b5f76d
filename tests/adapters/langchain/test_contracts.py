"""Our adapters next to the reference implementations LangChain and LangGraph ship, on the same operations.

``langchain-tests`` has no standard suite for chat message histories, and LangGraph's store tests are not a
published package; so each test here runs one sequence of operations on the framework's in-memory
implementation and on ours and compares what a user sees (``test_standard_suites.py`` runs the suites that
exist). Where our contract differs on purpose, the test says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.store.base import BaseStore, GetOp, Item, ListNamespacesOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from langchain_memory_plugin import MemoryChatMessageHistory, MemoryPluginStore
from memory_plugin import Embedder, MemoryStore
from memory_plugin.binding import store_views
from tests.adapters.langchain.conftest import scope
from tests.adapters.langchain.test_history import everything_a_message_holds

SERVER_APP = "langgraph"  # MemoryPluginStore's default app: real_store's server key is of it

# ---- chat message history: InMemoryChatMessageHistory ------------------------------------------------------------


def history_session(history: BaseChatMessageHistory) -> list[list[BaseMessage]]:
    """What a user sees after each step of a session that uses every method of the interface (copies: the
    in-memory history returns its own list)."""
    seen = []
    history.add_messages(everything_a_message_holds())
    seen.append(list(history.messages))
    history.add_user_message("plain text")
    history.add_ai_message(
        AIMessage("an answer", id="ai-x", usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2})
    )
    seen.append(list(history.messages))
    history.clear()
    seen.append(list(history.messages))
    history.add_message(SystemMessage("again", id="s"))
    seen.append(list(history.messages))
    return seen


async def async_history_session(history: BaseChatMessageHistory) -> list[list[BaseMessage]]:
    seen = []
    await history.aadd_messages([HumanMessage("hi", id="h"), AIMessage("", id="a")])
    seen.append(list(await history.aget_messages()))
    await history.aadd_messages([ToolMessage("result", tool_call_id="c", id="t")])
    seen.append(list(await history.aget_messages()))
    await history.aclear()
    seen.append(list(await history.aget_messages()))
    return seen


def test_chat_history_matches_langchains_in_memory_history(store: MemoryStore) -> None:
    ours = MemoryChatMessageHistory(store, scope())
    assert history_session(ours) == history_session(InMemoryChatMessageHistory())
    assert str(ours) == str(InMemoryChatMessageHistory(messages=ours.messages))


def test_async_chat_history_matches_langchains_in_memory_history(store: MemoryStore) -> None:
    ours = MemoryChatMessageHistory(store_views(store)[1], scope(run="async"))
    reference = asyncio.run(async_history_session(InMemoryChatMessageHistory()))
    assert asyncio.run(async_history_session(ours)) == reference


# ---- LangGraph store: InMemoryStore ---------------------------------------------------------------------------------

Call = Callable[..., Any]


def caller(store: BaseStore, mode: str) -> Call:
    """``call("put", ...)`` runs ``store.put(...)`` or, in async mode, ``await store.aput(...)``."""
    if mode == "sync":
        return lambda method, *args, **kwargs: getattr(store, method)(*args, **kwargs)
    return lambda method, *args, **kwargs: asyncio.run(getattr(store, "a" + method)(*args, **kwargs))


def seen(result: Any) -> Any:
    """What a user compares: items as (namespace, key, value), without timestamps and scores."""
    if isinstance(result, Item):
        return (result.namespace, result.key, result.value)
    if isinstance(result, list):
        return [seen(x) for x in result]
    return result


def store_session(store: BaseStore, mode: str, user: Callable[[str], tuple[str, ...]]) -> list[tuple[str, Any]]:
    """Every BaseStore operation, with namespaces built by ``user`` (the user id first, or langmem's way)."""
    call = caller(store, mode)
    out: list[tuple[str, Any]] = []
    call("put", user("u1"), "a", {"text": "likes tea", "n": 1})
    call("put", user("u1"), "b", {"text": "likes coffee", "n": 2, "tags": {"x": 1}})
    call("put", user("u2"), "a", {"text": "likes juice", "n": 3})
    call("put", (*user("u1"), "prefs", "deep"), "c", {"text": "deep", "n": 4})
    call("put", ("docs",), "d", {"text": "doc"})
    out.append(("get", call("get", user("u1"), "a")))
    out.append(("get a missing key", call("get", user("u1"), "zzz")))
    out.append(("search everything", call("search", ())))
    out.append(("search one user", call("search", user("u1"))))
    # Not compared: a comparison on a field some items lack (InMemoryStore raises TypeError, we skip those items),
    # and dotted filter keys (InMemoryStore reads "tags.x" as one key; we follow LangGraph's Postgres store).
    out.append(("search with a filter", call("search", user("u1"), filter={"n": {"$gte": 2}, "tags": {"x": 1}})))
    out.append(("search a page", call("search", (), limit=2, offset=1)))
    out.append(("list namespaces", call("list_namespaces")))
    out.append(("list with a prefix", call("list_namespaces", prefix=user("u1"))))
    out.append(("list with a suffix", call("list_namespaces", suffix=("deep",))))
    out.append(("list to a depth", call("list_namespaces", max_depth=2)))
    out.append(("list a page", call("list_namespaces", limit=2, offset=1)))
    call("put", user("u1"), "a", {"text": "now likes green tea", "n": 5})
    out.append(("get after an update", call("get", user("u1"), "a")))
    call("delete", user("u1"), "b")
    call("delete", user("u1"), "never-there")
    out.append(("get after a delete", call("get", user("u1"), "b")))
    out.append(("search after a delete", call("search", user("u1"))))
    batch = [
        GetOp(user("u2"), "a"),
        PutOp(user("u2"), "a", {"text": "x"}),
        SearchOp(user("u2")),
        ListNamespacesOp(limit=2),
        PutOp(user("u2"), "a", None),
        PutOp(user("u2"), "new", {"text": "y"}),
        GetOp(user("u2"), "a"),
    ]
    out.append(("batch: reads before writes", call("batch", batch)))
    out.append(("after the batch", [call("get", user("u2"), "a"), call("get", user("u2"), "new")]))
    out.append(("namespaces at the end", call("list_namespaces")))
    return [(step, seen(result)) for step, result in out]


def by_user_first(user_id: str) -> tuple[str, ...]:
    return (user_id, "memories")


def langmem_style(user_id: str) -> tuple[str, ...]:
    return ("memories", user_id)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("user", "tenant_label"), [(by_user_first, 0), (langmem_style, 1)])
def test_store_matches_langgraphs_in_memory_store(
    store: MemoryStore, mode: str, user: Callable[[str], tuple[str, ...]], tenant_label: int
) -> None:
    ours = store_session(MemoryPluginStore(store, app_id="contract", tenant_label=tenant_label), mode, user)
    reference = store_session(InMemoryStore(), mode, user)
    assert [step for step, _ in ours] == [step for step, _ in reference]
    for (step, got), (_, expected) in zip(ours, reference, strict=True):
        assert got == expected, step


def test_store_timestamps_say_when_an_item_was_first_put_and_last_changed(store: MemoryStore) -> None:
    """Differs on purpose from ``InMemoryStore``, which gives an item a new ``created_at`` on every put; ours keeps
    the first one, as LangGraph's Postgres store does (its upsert changes only ``value`` and ``updated_at``)."""
    lg = MemoryPluginStore(store)
    lg.put(("u1",), "k", {"v": 1})
    first = lg.get(("u1",), "k")
    lg.put(("u1",), "k", {"v": 2})
    second = lg.get(("u1",), "k")
    assert first is not None and second is not None
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert lg.search(("u1",))[0].score is None  # no query, no score, as in InMemoryStore


@pytest.mark.model
def test_query_search_finds_what_langgraphs_vector_search_finds(
    real_store: MemoryStore, real_embedder: Embedder
) -> None:
    """Both stores find the same items for a query and rank the clear best first. Scores differ on purpose: ours
    is the engine's hybrid score in [0, 1], LangGraph's the cosine similarity of its index."""
    index = {"dims": real_embedder.dimension, "embed": real_embedder.embed_documents, "fields": ["$"]}
    reference = InMemoryStore(index=index)  # type: ignore[arg-type]
    ours = MemoryPluginStore(real_store)
    notes = {
        "tea": "The user drinks green tea every morning",
        "cat": "The user has a cat called Miso",
        "job": "The user works as a night nurse",
    }
    for lg in (ours, reference):
        for key, text in notes.items():
            lg.put(("u1", "notes"), key, {"text": text})
    for query, best in [("what does the user drink?", "tea"), ("pets", "cat"), ("where does the user work?", "job")]:
        got, expected = ours.search(("u1",), query=query), reference.search(("u1",), query=query)
        assert {i.key for i in got} == {i.key for i in expected} == set(notes)
        assert got[0].key == expected[0].key == best, query
        assert all(0 <= (i.score or 0) <= 1 for i in got)

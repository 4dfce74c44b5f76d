"""MemoryRetriever: memories as Documents, sync and async, in LCEL chains, on the real engine."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField, RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from langchain_memory_plugin import MemoryRetriever
from memory_plugin import InvalidArgumentError, MemoryStore, Scope
from memory_plugin.binding import store_views
from tests.adapters.langchain.conftest import APP, scope
from tests.adapters.langchain.fakes import ScriptedChatModel

TENANT_WIDE = Scope(app_id=APP, tenant_id="alice", agent_id="*", run_id="*")


@pytest.fixture
def remembered(real_store: MemoryStore) -> MemoryStore:
    real_store.add(scope(run="s1"), text="The user drinks espresso every morning", metadata={"source": "chat"})
    real_store.add(scope(run="s2"), text="The user has a cat called Miso")
    real_store.add(scope(tenant="bob"), text="Bob drinks black coffee")
    return real_store


@pytest.mark.model
def test_documents_carry_the_memory_text_and_its_metadata(remembered: MemoryStore) -> None:
    retriever = MemoryRetriever(store=remembered, scope=TENANT_WIDE, top_k=2, min_score=0.0)  # the loose match too
    docs = retriever.invoke("what coffee does the user drink?")
    assert [d.page_content for d in docs] == [
        "The user drinks espresso every morning",
        "The user has a cat called Miso",
    ]
    first = docs[0].metadata
    memory = remembered.get(scope(run="s1"), first["id"])
    assert docs[0].id == memory.id
    assert first["source"] == "chat" and first["memory_type"] == "fact"
    assert (first["app_id"], first["tenant_id"], first["agent_id"], first["run_id"]) == (
        APP,
        "alice",
        "assistant",
        "s1",
    )
    assert datetime.fromisoformat(first["created_at"]) == memory.created_at
    assert datetime.fromisoformat(first["event_time"]) == memory.event_time and "updated_at" in first
    assert 0 < docs[1].metadata["score"] < first["score"] <= 1


@pytest.mark.model
def test_async_path_and_async_store_give_the_same_documents(remembered: MemoryStore) -> None:
    sync_docs = MemoryRetriever(store=remembered, scope=TENANT_WIDE).invoke("pets")
    async_retriever = MemoryRetriever(store=store_views(remembered)[1], scope=TENANT_WIDE)
    assert asyncio.run(async_retriever.ainvoke("pets")) == sync_docs
    assert async_retriever.invoke("pets") == sync_docs
    assert [d.page_content for d in sync_docs if "Bob" in d.page_content] == []


@pytest.mark.model
def test_usable_in_an_lcel_chain_with_a_per_call_scope(remembered: MemoryStore) -> None:
    retriever = MemoryRetriever(store=remembered, scope=TENANT_WIDE, top_k=1).configurable_fields(
        scope=ConfigurableField(id="memory_scope", name="Memory scope")
    )
    model = ScriptedChatModel()
    prompt = ChatPromptTemplate.from_messages([("system", "Known facts:\n{facts}"), ("human", "{question}")])
    facts = retriever | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs))
    chain = {"facts": facts, "question": RunnablePassthrough()} | prompt | model
    chain.invoke("what does the user drink?")
    bob = {"app_id": APP, "tenant_id": "bob", "agent_id": "*", "run_id": "*"}
    asyncio.run(chain.ainvoke("what does the user drink?", config={"configurable": {"memory_scope": bob}}))
    assert model.system_prompts() == [
        "Known facts:\nThe user drinks espresso every morning",
        "Known facts:\nBob drinks black coffee",
    ]


def test_filters_types_min_score_and_blank_queries(store: MemoryStore) -> None:
    store.add(scope(), text="espresso in the morning", metadata={"source": "chat"})
    store.add(scope(), messages=[{"role": "user", "content": "espresso after lunch"}])

    def texts(**options: object) -> list[str]:
        retriever = MemoryRetriever(store=store, scope=TENANT_WIDE, **options)  # type: ignore[arg-type]
        return sorted(d.page_content for d in retriever.invoke("espresso"))

    assert texts() == ["espresso after lunch", "espresso in the morning"]
    assert texts(memory_types="message") == ["espresso after lunch"]
    assert texts(filters={"source": "chat"}) == ["espresso in the morning"]
    assert texts(min_score=1.0) == []
    assert MemoryRetriever(store=store, scope=TENANT_WIDE).invoke("   ") == []


def test_bad_construction_is_a_clear_error(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="missing segment"):
        MemoryRetriever(store=store, scope={"app_id": APP, "tenant_id": "alice"})
    with pytest.raises(ValidationError, match="app_id"):
        MemoryRetriever(store=store, scope={"app_id": "*", "tenant_id": "*", "agent_id": "*", "run_id": "*"})
    with pytest.raises(ValidationError, match="min_score"):
        MemoryRetriever(store=store, scope=TENANT_WIDE, min_score=-1)
    with pytest.raises(TypeError, match="MemoryStore"):
        MemoryRetriever(store=object(), scope=TENANT_WIDE)
    with pytest.raises(ValueError, match="top_k"):
        MemoryRetriever(store=store, scope=TENANT_WIDE, top_k=500).invoke("x")


def test_the_number_of_results_can_be_set_per_call_as_top_k_or_k(store: MemoryStore) -> None:
    for i in range(4):
        store.add(scope(), text=f"espresso note {i}")
    retriever = MemoryRetriever(store=store, scope=TENANT_WIDE, top_k=3)
    assert len(retriever.invoke("espresso")) == 3
    assert len(retriever.invoke("espresso", top_k=1)) == 1
    assert len(retriever.invoke("espresso", k=2)) == 2
    assert len(asyncio.run(retriever.ainvoke("espresso", k=1))) == 1
    assert len(MemoryRetriever(store=store, scope=TENANT_WIDE, k=2).invoke("espresso")) == 2
    # Other recall options can be changed per call too; the retriever itself is left as it was.
    assert retriever.invoke("espresso", min_score=1.0) == []
    assert len(retriever.invoke("espresso")) == 3


def test_bad_per_call_options_are_clear_errors(store: MemoryStore) -> None:
    store.add(scope(), text="espresso")
    retriever = MemoryRetriever(store=store, scope=TENANT_WIDE)
    with pytest.raises(InvalidArgumentError, match="top_k"):
        retriever.invoke("espresso", top_k=2, k=3)
    with pytest.raises(InvalidArgumentError, match="search_type.*allowed"):
        retriever.invoke("espresso", search_type="mmr")
    with pytest.raises(ValueError, match="top_k"):
        retriever.invoke("espresso", k=0)
    with pytest.raises(ValidationError, match="top_k"):
        MemoryRetriever(store=store, scope=TENANT_WIDE, top_k=2, k=3)

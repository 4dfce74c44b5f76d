"""MemoryChatMessageHistory: short-term messages of one scope, round-tripped, and used by
RunnableWithMessageHistory."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from langchain_memory_plugin import MemoryChatMessageHistory
from memory_plugin import AsyncMemoryStore, InvalidScopeError, MemoryStore, Scope
from tests.adapters.langchain.conftest import APP, scope
from tests.adapters.langchain.fakes import ScriptedChatModel


def test_messages_round_trip_with_their_types_names_and_tool_calls(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store, scope())
    call = {"name": "weather", "args": {"city": "Lisbon"}, "id": "call-1", "type": "tool_call"}
    history.add_messages(
        [
            SystemMessage("Be brief."),
            HumanMessage("Weather in Lisbon?", name="Ann"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("Sunny, 24C", tool_call_id="call-1"),
            AIMessage("It is sunny."),
        ]
    )
    history.add_user_message("Thanks")
    messages = history.messages
    assert [type(m) for m in messages] == [SystemMessage, HumanMessage, AIMessage, ToolMessage, AIMessage, HumanMessage]
    assert messages[1].content == "Weather in Lisbon?" and messages[1].name == "Ann"
    assert isinstance(messages[2], AIMessage) and messages[2].tool_calls == [call]
    assert isinstance(messages[3], ToolMessage) and messages[3].tool_call_id == "call-1"
    assert [m.id for m in messages] == [m.id for m in store.messages(scope()).items]
    assert str(history).endswith("Human: Thanks")
    assert MemoryChatMessageHistory(store, scope(run="other")).messages == []


def test_async_methods_and_async_store(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(AsyncMemoryStore(store), scope())

    async def exchange() -> list[str]:
        await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
        return [m.text for m in await history.aget_messages()]

    assert asyncio.run(exchange()) == ["hi", "hello"]


def test_long_conversations_are_paged_and_chunked(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store, scope())
    history.add_messages([HumanMessage(f"message {i}") for i in range(230)])
    assert [m.text for m in history.messages] == [f"message {i}" for i in range(230)]
    assert len(store.requests(scope(), operation="AddMemories").items) == 3


def test_turns_become_long_term_memories_in_the_background(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store, scope(), metadata={"channel": "web"})
    history.add_messages([HumanMessage("I like espresso"), AIMessage("Noted")])
    store.flush()
    memories = store.list(scope()).items
    assert [(m.text, m.metadata["channel"]) for m in memories] == [("I like espresso", "web"), ("Noted", "web")]


def test_runnable_with_message_history_keeps_each_session(store: MemoryStore) -> None:
    model = ScriptedChatModel(replies=["Hello Ann!", "You are Ann.", "Who are you?"])
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be kind."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: MemoryChatMessageHistory(store, scope(run=session_id)),
        input_messages_key="question",
        history_messages_key="history",
    )
    chain.invoke({"question": "I'm Ann"}, config={"configurable": {"session_id": "s1"}})
    chain.invoke({"question": "Who am I?"}, config={"configurable": {"session_id": "s1"}})
    asyncio.run(chain.ainvoke({"question": "Who am I?"}, config={"configurable": {"session_id": "s2"}}))
    assert [m.text for m in model.prompts[1]] == ["Be kind.", "I'm Ann", "Hello Ann!", "Who am I?"]
    assert [m.text for m in model.prompts[2]] == ["Be kind.", "Who am I?"]
    assert [m.content for m in store.messages(scope(run="s1")).items] == [
        "I'm Ann",
        "Hello Ann!",
        "Who am I?",
        "You are Ann.",
    ]


def test_bad_scopes_are_clear_errors(store: MemoryStore) -> None:
    with pytest.raises(InvalidScopeError, match="MemoryChatMessageHistory needs a concrete id"):
        MemoryChatMessageHistory(store, Scope(app_id=APP, tenant_id="alice", agent_id="a", run_id="*"))
    with pytest.raises(InvalidScopeError, match="missing segment"):
        MemoryChatMessageHistory(store, {"app_id": APP, "tenant_id": "alice"})


def test_clear_empties_the_history_of_this_scope_only(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store, scope())
    other = MemoryChatMessageHistory(store, scope(run="other-run"))
    history.add_messages([HumanMessage("I like tea"), AIMessage("Noted")])
    other.add_messages([HumanMessage("Kept elsewhere")])
    store.flush()  # turns are extracted in the background; clearing first would leave nothing to extract
    history.clear()
    assert history.messages == []
    assert [m.content for m in other.messages] == ["Kept elsewhere"]
    history.add_messages([HumanMessage("Fresh start")])
    asyncio.run(history.aclear())
    assert history.messages == []
    assert any(h.memory.text == "I like tea" for h in store.search(scope(run="*"), "tea"))

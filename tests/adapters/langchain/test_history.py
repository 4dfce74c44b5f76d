"""MemoryChatMessageHistory: short-term messages of one scope, round-tripped, and used by
RunnableWithMessageHistory."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from langchain_memory_plugin import MemoryChatMessageHistory, MemoryRetriever
from langchain_memory_plugin._messages import to_engine_messages
from memory_plugin import InvalidArgumentError, InvalidScopeError, MemoryStore, Scope
from memory_plugin.binding import store_views
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
    assert [m.id for m in messages] == [None] * 6  # their own ids: they were added without one
    assert str(history).endswith("Human: Thanks")
    assert MemoryChatMessageHistory(store, scope(run="other")).messages == []


def test_async_methods_and_async_store(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store_views(store)[1], scope())

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
    assert [(m.text, m.metadata["channel"]) for m in memories] == [("I like espresso", "web")]  # "Noted": nothing


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
    with pytest.raises(InvalidArgumentError, match=r"metadata: keys starting with 'lc_' are the adapter's own"):
        MemoryChatMessageHistory(store, scope(), metadata={"lc_message": "mine"})
    with pytest.raises(InvalidArgumentError, match="metadata"):
        MemoryChatMessageHistory(store, scope(), metadata={"nested": {"no": 1}})


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


def everything_a_message_holds() -> list[BaseMessage]:
    """Messages using every field LangChain gives them, as chat models and agents produce them."""
    call = {"name": "weather", "args": {"city": "Lisbon"}, "id": "call-1", "type": "tool_call"}
    usage = {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    return [
        SystemMessage("Be brief.", id="sys-1"),
        HumanMessage("Weather in Lisbon?", id="u-1", name="Ann"),
        AIMessage(
            "",
            id="ai-1",
            tool_calls=[call],
            response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
            usage_metadata=usage,  # type: ignore[arg-type]
            additional_kwargs={"refusal": None, "reasoning": {"summary": ["look it up"]}},
        ),
        ToolMessage("Sunny, 24C", tool_call_id="call-1", id="t-1", status="success", artifact={"raw": [24, "C"]}),
        AIMessage("", id="ai-2", response_metadata={"finish_reason": "stop"}),  # an empty answer
        AIMessage("It is sunny.", id="ai-3", usage_metadata=usage, name="a display name that is not an id * ok"),  # type: ignore[arg-type]
        HumanMessage(
            content=[
                {"type": "text", "text": "And this photo is from Lisbon."},
                {"type": "image", "url": "https://x/y.png"},
            ]
        ),
        HumanMessage("   "),
        ChatMessage("Looks right.", role="critic"),
        HumanMessage("no id at all"),
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_what_you_add_is_what_you_get_back(store: MemoryStore, mode: str) -> None:
    added = everything_a_message_holds()
    history = MemoryChatMessageHistory(store if mode == "sync" else store_views(store)[1], scope())
    if mode == "sync":
        history.add_messages(added)
        back = history.messages
    else:
        asyncio.run(history.aadd_messages(added))
        back = asyncio.run(history.aget_messages())
    assert back == added
    assert [m.id for m in back] == ["sys-1", "u-1", "ai-1", "t-1", "ai-2", "ai-3", None, None, None, None]
    # The engine's own view: readable text for every message, stand-ins flagged.
    stored = store.messages(scope()).items
    assert [m.content for m in stored][2:5] == [
        '[tool call] weather({"city": "Lisbon"})',
        "Sunny, 24C",
        "[ai message without text]",
    ]
    assert [m.role for m in stored][-2:] == ["system", "user"]
    assert stored[6].content == "And this photo is from Lisbon." and stored[1].name == "Ann"


def test_stand_in_texts_are_never_recalled(store: MemoryStore) -> None:
    MemoryChatMessageHistory(store, scope(), sync=True).add_messages(everything_a_message_holds())
    retriever = MemoryRetriever(store=store, scope=scope(run="*"), top_k=50, min_score=0.0)  # every memory
    texts = [d.page_content for d in retriever.invoke("message without text tool call weather")]
    assert {"It is sunny.", "And this photo is from Lisbon."} <= set(texts) and not any(
        t.startswith("[") for t in texts
    )


def test_large_fields_are_chunked_and_too_large_ones_are_refused_with_nothing_written(store: MemoryStore) -> None:
    history = MemoryChatMessageHistory(store, scope())
    big = AIMessage("ok", id="big", response_metadata={"logprobs": ["x" * 9] * 2_000})  # ~24,000 characters of JSON
    history.add_messages([big])
    assert history.messages == [big]
    assert len([k for k in store.messages(scope()).items[0].metadata if k.startswith("lc_message")]) == 13

    too_big = AIMessage("ok", response_metadata={"logprobs": ["x" * 9] * 3_000})
    with pytest.raises(InvalidArgumentError, match=r"messages\[1\]: is too large to keep exactly: .* at most 32,000"):
        history.add_messages([HumanMessage("kept?"), too_big])
    with pytest.raises(InvalidArgumentError, match=r"messages\[0\]: is too large .*content and fields"):
        history.add_messages([HumanMessage("y" * 40_000)])
    # History metadata takes metadata values too: 15 keys leave one value of 2,000 characters.
    crowded = MemoryChatMessageHistory(store, scope(), metadata={f"k{i}": i for i in range(15)})
    with pytest.raises(InvalidArgumentError, match=r"at most 2,000 fit \(the history's metadata leaves 1 of"):
        crowded.add_messages([big])
    with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
        history.add_messages([AIMessage("ok", additional_kwargs={"raw": object()})])
    with pytest.raises(InvalidArgumentError, match="does not come back equal"):
        history.add_messages([AIMessage("ok", additional_kwargs={"pair": (1, 2)})])
    assert history.messages == [big]


def test_messages_written_by_other_adapters_keep_their_langchain_ids(store: MemoryStore) -> None:
    store.add(scope(), messages=to_engine_messages([HumanMessage("from the middleware", id="lc-1")]))
    store.add(scope(), messages=[{"role": "assistant", "content": "from store.add"}])
    first, second = MemoryChatMessageHistory(store, scope()).messages
    assert (first.id, first.text) == ("lc-1", "from the middleware")
    assert second.id == store.messages(scope()).items[1].id and isinstance(second, AIMessage)


def test_an_unreadable_serialized_message_falls_back_to_its_text(store: MemoryStore) -> None:
    store.add(scope(), messages=[{"role": "user", "content": "hello", "metadata": {"lc_message": "{not json"}}])
    [message] = MemoryChatMessageHistory(store, scope()).messages
    assert isinstance(message, HumanMessage) and message.text == "hello"

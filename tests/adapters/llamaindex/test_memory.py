"""``MemoryPluginMemory`` against the real engine (SQLite + Chroma in a temp folder, fake embedder): what it writes,
what ``get`` returns, ``set`` / ``reset`` semantics, bad input, and that it never changes what it is given. Every
behaviour runs through the sync and the async methods."""

from __future__ import annotations

import asyncio
import copy
import inspect
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.memory import BaseMemory

from llama_index_memory_plugin import MemoryPluginMemory
from memory_plugin import InvalidArgumentError, InvalidScopeError, MemoryClient, MemoryStore
from memory_plugin.binding import store_views
from tests.adapters.llamaindex.conftest import RecordingLLM, in_mode
from tests.conftest import SCOPE

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
EARLIER = SCOPE.with_(run_id="session-000")
OTHER_TENANT = SCOPE.with_(tenant_id="user-002", run_id="session-900")


def user(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.USER, content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=text)


def texts(messages: list[ChatMessage]) -> list[tuple[str, str | None]]:
    return [(m.role.value, m.content) for m in messages]


def remember(store: MemoryStore, scope: Any, *said: str) -> None:
    """An earlier run in which the user said ``said``, extracted before returning."""
    store.add(scope, messages=[{"role": "user", "content": text} for text in said])


def all_memories(store: MemoryStore) -> list[str]:
    everyone = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")
    return sorted(m.text for m in store.list(everyone, limit=100).items)


@MODES
def test_each_turn_is_written_as_it_happens(store: MemoryStore, mode: str) -> None:
    memory = MemoryPluginMemory(store, SCOPE, metadata={"channel": "web"})
    in_mode(mode, memory, "put", user("I like coffee"))
    assert texts(in_mode(mode, memory, "get_all")) == [("user", "I like coffee")]
    in_mode(mode, memory, "put_messages", [assistant("Noted"), user("And tea")])
    stored = store.messages(SCOPE).items
    assert [(m.role, m.content) for m in stored] == [
        ("user", "I like coffee"),
        ("assistant", "Noted"),
        ("user", "And tea"),
    ]
    assert all(m.metadata["channel"] == "web" for m in stored)
    # Extraction runs in the background by default; flush waits for it.
    assert store.flush(timeout=30)
    assert all_memories(store) == ["And tea", "I like coffee"]  # "Noted" states nothing


@MODES
def test_get_puts_recalled_memories_before_the_runs_messages(store: MemoryStore, mode: str) -> None:
    remember(store, EARLIER, "I drink coffee every morning", "My dog is called Rex")
    remember(store, OTHER_TENANT, "I drink coffee with oat milk")
    memory = MemoryPluginMemory(store, SCOPE, recall_top_k=1)
    in_mode(mode, memory, "put_messages", [user("Hello"), assistant("Hi!"), user("What do I drink in the morning?")])
    recalled, *history = in_mode(mode, memory, "get")
    assert recalled.role == MessageRole.SYSTEM
    assert "I drink coffee every morning" in recalled.content and "Rex" not in recalled.content
    assert "oat milk" not in recalled.content  # another tenant
    assert texts(history) == [("user", "Hello"), ("assistant", "Hi!"), ("user", "What do I drink in the morning?")]
    # input= decides what is recalled (chat engines pass the new message before it is put).
    recalled = in_mode(mode, memory, "get", input="what is my dog called?")[0]
    assert "Rex" in recalled.content


@MODES
def test_token_limit_drops_the_oldest_turns_first(store: MemoryStore, mode: str) -> None:
    memory = MemoryPluginMemory(store, SCOPE, recall_top_k=0, token_limit=70)
    turns = [user("alpha " * 10), assistant("bravo " * 10), user("charlie " * 10), assistant("delta " * 10)]
    in_mode(mode, memory, "put_messages", turns)  # 11 + 21 + 21 + 11 tokens
    assert texts(in_mode(mode, memory, "get")) == texts(turns)
    # What the caller already spends (SimpleChatEngine passes its system prompt's tokens) comes off the limit.
    assert texts(in_mode(mode, memory, "get", initial_token_count=10)) == texts(turns[2:])
    assert texts(in_mode(mode, memory, "get_all")) == texts(turns)


@MODES
def test_the_newest_turn_is_always_kept_and_the_window_starts_with_the_user(store: MemoryStore, mode: str) -> None:
    """Issue 11: with ``token_limit=100`` and ``recall_top_k=0``, ``[user "x " * 100, assistant "ok"]`` came back
    as ``[assistant "ok"]``; a newest tool result whose call did not fit came back as nothing."""
    memory = MemoryPluginMemory(store, SCOPE, recall_top_k=0, token_limit=100)
    in_mode(mode, memory, "put_messages", [user("x " * 100), assistant("ok")])
    assert texts(in_mode(mode, memory, "get")) == [("user", "x " * 100), ("assistant", "ok")]
    call = ChatMessage(
        role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="search", tool_kwargs={"q": "y " * 60})]
    )
    result = ChatMessage(role="tool", content="found " * 60, additional_kwargs={"tool_call_id": "c1"})
    in_mode(mode, memory, "put_messages", [user("look it up"), call, result])
    assert in_mode(mode, memory, "get") == [user("look it up"), call, result]


@MODES
def test_recall_has_its_own_token_budget_within_the_limit(store: MemoryStore, mode: str) -> None:
    remember(store, EARLIER, *[f"coffee fact number {i} " + "with many words " * 8 for i in range(5)])
    roomy = MemoryPluginMemory(store, SCOPE, recall_top_k=5, recall_token_limit=1000)
    in_mode(mode, roomy, "put", user("coffee?"))
    assert in_mode(mode, roomy, "get")[0].content.count("coffee fact") == 5
    tight = MemoryPluginMemory(store, SCOPE, recall_top_k=5, recall_token_limit=80)
    recalled, question = in_mode(mode, tight, "get")
    assert 1 <= recalled.content.count("coffee fact") < 5 and question.content == "coffee?"
    off = MemoryPluginMemory(store, SCOPE, recall_top_k=0)
    assert texts(in_mode(mode, off, "get")) == [("user", "coffee?")]


@MODES
def test_memories_already_in_the_window_are_not_repeated(store: MemoryStore, mode: str) -> None:
    memory = MemoryPluginMemory(store, SCOPE, sync=True)
    in_mode(mode, memory, "put_messages", [user("I like green tea"), assistant("Green tea, noted")])
    messages = in_mode(mode, memory, "get", input="green tea")
    assert texts(messages) == [("user", "I like green tea"), ("assistant", "Green tea, noted")]
    # Once a turn has left the window, it can come back as a memory.
    small = MemoryPluginMemory(store, SCOPE, token_limit=120, recall_token_limit=60)
    in_mode(mode, small, "put_messages", [user("unrelated " * 100), user("What do I like to drink? green tea?")])
    recalled, *window = in_mode(mode, small, "get")
    assert recalled.role == MessageRole.SYSTEM and "I like green tea" in recalled.content
    assert "I like green tea" not in [m.content for m in window]


@MODES
def test_set_extends_or_restarts_the_history_and_reset_empties_it(store: MemoryStore, mode: str) -> None:
    memory = MemoryPluginMemory(store, SCOPE, sync=True)
    first = [user("I like coffee"), assistant("Noted")]
    in_mode(mode, memory, "set", first)
    in_mode(mode, memory, "set", [*first, user("And tea")])  # a longer history: only the new turn is written
    assert len(store.messages(SCOPE).items) == 3
    assert texts(in_mode(mode, memory, "get_all")) == texts([*first, user("And tea")])
    in_mode(mode, memory, "set", [user("Start over")])  # a different history replaces the old one
    assert texts(in_mode(mode, memory, "get_all")) == [("user", "Start over")]
    in_mode(mode, memory, "reset")
    assert in_mode(mode, memory, "get_all") == []
    [recalled] = in_mode(mode, memory, "get", input="coffee")  # no history, but long-term memory remains
    assert recalled.role == MessageRole.SYSTEM and "I like coffee" in recalled.content
    # The run's raw messages are gone; every long-term memory stays.
    assert store.messages(SCOPE).items == []
    assert all_memories(store) == ["And tea", "I like coffee", "Start over"]


@MODES
def test_after_set_the_window_is_not_repeated_as_recalled_memories(store: MemoryStore, mode: str) -> None:
    """Issue 11: ``set()`` rewrites the run's messages (new message ids) while the long-term memories made from
    the old copies stay, so recall by message id alone showed the window's own messages again."""
    memory = MemoryPluginMemory(store, SCOPE, sync=True, min_score=0.0)  # every memory that may come back
    in_mode(mode, memory, "put_messages", [user("I like green tea"), assistant("Green tea it is")])
    in_mode(mode, memory, "set", [user("I like green tea"), assistant("Green tea, noted")])
    recalled, *window = in_mode(mode, memory, "get", input="green tea")
    assert texts(window) == [("user", "I like green tea"), ("assistant", "Green tea, noted")]
    # Only what left the window comes back as a memory: the old reply, not the user's words said again.
    assert recalled.role == MessageRole.SYSTEM
    assert [line.split("] ", 1)[1] for line in recalled.content.splitlines()[1:]] == ["Green tea it is"]


@MODES
def test_reset_never_touches_other_runs(store: MemoryStore, mode: str) -> None:
    remember(store, EARLIER, "I live in Lisbon")
    earlier = MemoryPluginMemory(store, EARLIER)
    memory = MemoryPluginMemory(store, SCOPE, sync=True)
    in_mode(mode, memory, "put", user("I work as a nurse"))
    before = all_memories(store)
    in_mode(mode, memory, "reset")
    in_mode(mode, memory, "reset")  # resetting an empty history writes nothing
    assert all_memories(store) == before == ["I live in Lisbon", "I work as a nurse"]
    assert texts(earlier.get_all()) == [("user", "I live in Lisbon")]
    assert "I work as a nurse" in in_mode(mode, memory, "get", input="what is my job?")[0].content


def test_a_new_memory_on_the_same_run_continues_it(store: MemoryStore) -> None:
    MemoryPluginMemory(store, SCOPE).put_messages([user("Remember the milk"), assistant("Will do")])
    resumed = MemoryPluginMemory(store, SCOPE)  # e.g. after a restart
    assert texts(resumed.get_all()) == [("user", "Remember the milk"), ("assistant", "Will do")]


@MODES
def test_tool_exchanges_come_back_whole(store: MemoryStore, mode: str) -> None:
    call = ChatMessage(
        role="assistant",
        blocks=[ToolCallBlock(tool_call_id="call-1", tool_name="weather", tool_kwargs={"city": "Lisbon"})],
    )
    result = ChatMessage(role="tool", content="22 C, sunny", additional_kwargs={"tool_call_id": "call-1"})
    turns = [user("Weather in Lisbon?"), call, result, assistant("22 C and sunny.")]
    memory = MemoryPluginMemory(store, SCOPE, recall_top_k=0)
    in_mode(mode, memory, "put_messages", turns)
    assert in_mode(mode, memory, "get_all") == turns
    assert in_mode(mode, memory, "get") == turns


@MODES
def test_the_callers_messages_are_never_changed(store: MemoryStore, mode: str) -> None:
    remember(store, EARLIER, "I drink coffee")
    memory = MemoryPluginMemory(store, SCOPE)
    tagged = ChatMessage(role="user", content="coffee?", additional_kwargs={"session_id": "li-session"})
    batch = [tagged, assistant("Sure")]
    snapshot = [m.model_dump() for m in batch]
    in_mode(mode, memory, "put", tagged)
    in_mode(mode, memory, "put_messages", batch)
    in_mode(mode, memory, "set", batch)
    assert [m.model_dump() for m in batch] == snapshot and len(batch) == 2
    # What get returns is the caller's to change (FunctionAgent rewrites the last message's text in place).
    returned = in_mode(mode, memory, "get")
    returned[-1].blocks[0] = TextBlock(text="changed by the caller")
    returned.clear()
    assert in_mode(mode, memory, "get")[-1].content == "Sure"


@MODES
def test_filters_given_once_apply_unchanged_to_every_call(store: MemoryStore, mode: str) -> None:
    store.add(EARLIER, text="coffee from the chat", metadata={"source": "chat"})
    store.add(EARLIER, text="coffee from an email", metadata={"source": "email"})
    filters = {"source": ["chat"]}
    memory = MemoryPluginMemory(store, SCOPE, filters=filters, memory_types=["fact"])
    for _ in range(3):
        recalled = in_mode(mode, memory, "get", input="coffee")[0].content
        assert "coffee from the chat" in recalled and "email" not in recalled
    assert filters == {"source": ["chat"]}
    filters["source"].append("email")  # the caller's later changes do not reach the memory
    assert "email" not in in_mode(mode, memory, "get", input="coffee")[0].content


def test_async_methods_are_native() -> None:
    """LlamaIndex's defaults run the sync method on a thread; every async method here is our own coroutine."""
    for name in ("aget", "aget_all", "aput", "aput_messages", "aset", "areset"):
        method = getattr(MemoryPluginMemory, name)
        assert method is not getattr(BaseMemory, name) and inspect.iscoroutinefunction(method), name


def test_works_with_the_async_store_too(store: MemoryStore) -> None:
    memory = MemoryPluginMemory(store_views(store)[1], SCOPE, sync=True)

    async def chat() -> list[ChatMessage]:
        await memory.aput(user("I like coffee"))
        return await memory.aget_all()

    assert texts(asyncio.run(chat())) == [("user", "I like coffee")]
    assert texts(memory.get_all()) == [("user", "I like coffee")]  # the sync methods still work
    assert memory.store == store and memory.scope == SCOPE and memory.recall_scope == SCOPE.with_(run_id="*")


def test_copies_share_the_store_and_the_run(store: MemoryStore) -> None:
    memory = MemoryPluginMemory(store, SCOPE, token_limit=500)
    clone = copy.deepcopy(memory)  # workflows copy what their context holds
    clone.put(user("Written through the copy"))
    assert clone.store is store and clone.scope == SCOPE and clone.token_limit == 500
    assert texts(memory.get_all()) == [("user", "Written through the copy")]


# ---- bad input ---------------------------------------------------------------------------------------------------


def test_the_write_scope_must_be_concrete_and_complete(store: MemoryStore) -> None:
    with pytest.raises(InvalidScopeError, match=r"scope\.run_id: .*concrete id.*recall_scope="):
        MemoryPluginMemory(store, SCOPE.with_(run_id="*"))
    with pytest.raises(InvalidScopeError, match=r"scope\.tenant_id"):
        MemoryPluginMemory(store, SCOPE.with_(tenant_id=("user-001", "user-002")))
    with pytest.raises(InvalidScopeError, match=r"missing segment\(s\) \['agent_id', 'run_id'\]"):
        MemoryPluginMemory(store, {"app_id": "app-001", "tenant_id": "user-001"})
    with pytest.raises(InvalidScopeError, match="tenant_id: must not be empty"):
        MemoryPluginMemory(store, {"app_id": "app-001", "tenant_id": " ", "agent_id": "a", "run_id": "r"})
    with pytest.raises(InvalidScopeError, match="must be a Scope"):
        MemoryPluginMemory(store, None)


def test_a_mapping_scope_in_camel_case_works(store: MemoryStore) -> None:
    memory = MemoryPluginMemory(store, {"appId": "app-001", "tenantId": "user-001", "agentId": "a", "runId": "r"})
    assert str(memory.scope) == "app-001/user-001/a/r"


def test_bad_options_fail_when_the_memory_is_built(store: MemoryStore, client: MemoryClient) -> None:
    with pytest.raises(TypeError, match=r"client\.get_memory_store"):
        MemoryPluginMemory(client, SCOPE)
    with pytest.raises(InvalidArgumentError, match="recall_top_k"):
        MemoryPluginMemory(store, SCOPE, recall_top_k=51)
    with pytest.raises(InvalidArgumentError, match="reserved"):
        MemoryPluginMemory(store, SCOPE, metadata={"run_id": "other"})
    with pytest.raises(InvalidArgumentError, match="adapter's own"):
        MemoryPluginMemory(store, SCOPE, metadata={"llama_index_role": "user"})
    with pytest.raises(InvalidArgumentError, match="at most 13 keys"):
        MemoryPluginMemory(store, SCOPE, metadata={f"k{i}": i for i in range(14)})
    with pytest.raises(InvalidScopeError, match="recall_scope"):
        MemoryPluginMemory(store, SCOPE, recall_scope="app-001/user-001/*")
    with pytest.raises(ValueError, match="token_limit"):
        MemoryPluginMemory(store, SCOPE, token_limit=0)
    with pytest.raises(ValueError, match=r"\{memories\}"):
        MemoryPluginMemory(store, SCOPE, recall_template="no placeholder")


def test_from_defaults_needs_a_store_and_a_scope(store: MemoryStore) -> None:
    llm = RecordingLLM()
    with pytest.raises(TypeError, match=r"store=.*scope="):
        SimpleChatEngine.from_defaults(llm=llm, memory_cls=MemoryPluginMemory)
    memory = MemoryPluginMemory.from_defaults(store=store, scope=SCOPE, llm=llm, chat_history=[user("hi")])
    assert memory.token_limit == 6144 and texts(memory.get_all()) == [("user", "hi")]

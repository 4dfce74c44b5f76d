"""``MemoryPluginMemory`` next to LlamaIndex's own memories, ``ChatMemoryBuffer`` and ``Memory``, on the
``BaseMemory`` contract: one session of get / get_all / put / put_messages / set / reset runs on each, sync and
async, and what a user sees must be the same. Recall (our addition) is off here; where our window differs on
purpose (a tight token budget), the test says how and checks ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.memory import BaseMemory, ChatMemoryBuffer, Memory

from llama_index_memory_plugin import MemoryPluginMemory
from memory_plugin import MemoryStore
from tests.conftest import SCOPE

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
TOKEN_LIMIT = 1000


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


CALL = ChatMessage(
    role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"city": "Lisbon"})]
)
RESULT = ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"})
CONVERSATION = [assistant("hi there"), user("weather?"), CALL, RESULT, assistant("It is sunny.")]


def caller(memory: BaseMemory, mode: str) -> Callable[..., Any]:
    """``call("put", ...)`` runs ``memory.put(...)`` or, in async mode, ``await memory.aput(...)``."""
    if mode == "sync":
        return lambda method, *args, **kwargs: getattr(memory, method)(*args, **kwargs)
    return lambda method, *args, **kwargs: asyncio.run(getattr(memory, "a" + method)(*args, **kwargs))


def session(memory: BaseMemory, mode: str) -> dict[str, list[ChatMessage]]:
    """What a user sees after each step of a session using every ``BaseMemory`` method."""
    call = caller(memory, mode)
    seen: dict[str, list[ChatMessage]] = {"get when empty": call("get"), "get_all when empty": call("get_all")}
    call("put", user("hello"))
    call("put_messages", CONVERSATION)
    seen["get_all"] = call("get_all")
    seen["get"] = call("get")
    seen["get with input"] = call("get", input="what is the weather?")
    seen["get within a tight budget"] = call("get", initial_token_count=TOKEN_LIMIT - 5)
    call("set", [user("start over"), assistant("ok")])
    seen["get_all after set"] = call("get_all")
    call("set", [user("start over"), assistant("ok"), user("more")])
    seen["get_all after a longer set"] = call("get_all")
    call("reset")
    seen["get_all after reset"] = call("get_all")
    seen["get after reset"] = call("get")
    return seen


def references(mode: str) -> dict[str, BaseMemory]:
    return {
        "ChatMemoryBuffer": ChatMemoryBuffer.from_defaults(token_limit=TOKEN_LIMIT),
        "Memory": Memory.from_defaults(
            session_id=f"contract-{mode}", token_limit=TOKEN_LIMIT, chat_history_token_ratio=1
        ),
    }


@MODES
def test_base_memory_contract_matches_llama_indexs_memories(store: MemoryStore, mode: str) -> None:
    ours = session(MemoryPluginMemory(store, SCOPE.with_(run_id=mode), recall_top_k=0, token_limit=TOKEN_LIMIT), mode)
    assert ours["get_all"] == ours["get"] == [user("hello"), *CONVERSATION]
    for name, memory in references(mode).items():
        theirs = session(memory, mode)
        for step in theirs:
            if step != "get within a tight budget":
                assert ours[step] == theirs[step], f"{name}: {step}"


@MODES
def test_a_tight_budget_keeps_the_newest_turn_whole(store: MemoryStore, mode: str) -> None:
    """Differs on purpose. With 5 tokens left, ``ChatMemoryBuffer`` returns the last message alone (an assistant
    reply without its question) and ``Memory`` ignores ``initial_token_count``; ours keeps the newest turn whole,
    from the user's question to the answer, tool call and result included, as its docstring promises."""
    memory = MemoryPluginMemory(store, SCOPE.with_(run_id=mode), recall_top_k=0, token_limit=TOKEN_LIMIT)
    ours = session(memory, mode)["get within a tight budget"]
    assert ours == CONVERSATION[1:]
    buffer = session(ChatMemoryBuffer.from_defaults(token_limit=TOKEN_LIMIT), mode)["get within a tight budget"]
    assert buffer == CONVERSATION[-1:]

"""Our adapters next to the reference implementations LangChain and LangGraph ship, on the same operations.

``langchain-tests`` has no standard suite for chat message histories, and LangGraph's store tests are not a
published package; so each test here runs one sequence of operations on the framework's in-memory
implementation and on ours and compares what a user sees (``test_standard_suites.py`` runs the suites that
exist). Where our contract differs on purpose, the test says so.
"""

from __future__ import annotations

import asyncio

from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from langchain_memory_plugin import MemoryChatMessageHistory
from memory_plugin import AsyncMemoryStore, MemoryStore
from tests.adapters.langchain.conftest import scope
from tests.adapters.langchain.test_history import everything_a_message_holds

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
    ours = MemoryChatMessageHistory(AsyncMemoryStore(store), scope(run="async"))
    reference = asyncio.run(async_history_session(InMemoryChatMessageHistory()))
    assert asyncio.run(async_history_session(ours)) == reference

"""LangChain messages to engine message dicts and back, as the agent adapters write turns to memory.

A LangChain message becomes ``{"role", "content", "name"?, "metadata"}``. Its text content is kept (non-text
blocks such as images are dropped; a message with no text is skipped), and what the engine has no field for is
kept in flat metadata: the LangChain message id (``lc_message_id``), a tool message's ``tool_call_id``, and an AI
message's tool calls as JSON (``lc_tool_calls``), so that :func:`from_engine_message` can rebuild it. This is
enough to recall what was said; :mod:`._stored_messages` keeps messages exactly, for the chat history.

A stand-in text (an AI message that only calls tools) is flagged ``lc_placeholder=True``: recall never shows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)

from memory_plugin import InvalidArgumentError, Message
from memory_plugin.scope import check_id
from memory_plugin.validation import MAX_MESSAGES, MAX_METADATA_STRING, MAX_TEXT_LENGTH

ADAPTER_KEY_PREFIX = "lc_"  # metadata keys of the adapter's own bookkeeping
MESSAGE_ID_KEY = "lc_message_id"
TOOL_CALL_ID_KEY = "tool_call_id"
TOOL_CALLS_KEY = "lc_tool_calls"
PLACEHOLDER_KEY = "lc_placeholder"
TRUNCATED = "\n[... truncated to fit the memory store's limit]"
_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
}

EngineMessage = dict[str, Any]


def role_of(message: BaseMessage) -> str | None:
    """The engine role of a LangChain message (``None`` for kinds the engine does not keep)."""
    raw = message.role if isinstance(message, ChatMessage) else message.type
    return _ROLES.get(str(raw).lower())


def is_tool_traffic(message: BaseMessage) -> bool:
    """True for tool results and for AI messages that call tools (the steps of a tool loop)."""
    return role_of(message) == "tool" or (isinstance(message, AIMessage) and bool(message.tool_calls))


def message_key(message: BaseMessage) -> str:
    """A stable identity: the message id, or a digest of its kind and text when it has none."""
    if message.id:
        return str(message.id)
    digest = hashlib.sha1(f"{message.type}\x00{message.text}".encode()).hexdigest()
    return f"text:{digest}"


def latest_user_text(messages: Iterable[BaseMessage]) -> str | None:
    """The text of the last user message, or ``None`` if there is none with text."""
    for message in reversed(list(messages)):
        if role_of(message) == "user" and message.text.strip():
            return message.text
    return None


def _fit(text: str) -> str:
    # A tool result or pasted document can exceed the engine's limit; keep the start rather than fail the turn.
    if len(text) <= MAX_TEXT_LENGTH:
        return text
    return text[: MAX_TEXT_LENGTH - len(TRUNCATED)] + TRUNCATED


def tool_call_text(tool_calls: Iterable[ToolCall]) -> str:
    """A readable stand-in for an AI message that only calls tools: ``[tool call] name({"arg": ...})`` per call."""
    return "\n".join(f"[tool call] {c['name']}({json.dumps(c['args'], ensure_ascii=False)})" for c in tool_calls)


def display_name(message: BaseMessage) -> str | None:
    """The message's name as the engine's ``name`` (the speaker), or ``None`` when it has none the engine can hold
    (a display name is not worth failing a write for)."""
    if not message.name:
        return None
    with contextlib.suppress(InvalidArgumentError):
        return check_id("name", message.name)
    return None


def to_engine_message(message: BaseMessage) -> EngineMessage | None:
    """One LangChain message as an engine message dict, or ``None`` if it has no role or no text to keep."""
    role = role_of(message)
    if role is None:
        return None
    text = str(message.text)
    metadata: dict[str, str | bool] = {}
    if message.id:
        metadata[MESSAGE_ID_KEY] = str(message.id)[:MAX_METADATA_STRING]
    if isinstance(message, AIMessage) and message.tool_calls:
        calls = [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls]
        if not text.strip():
            text = tool_call_text(message.tool_calls)
            metadata[PLACEHOLDER_KEY] = True
        encoded = json.dumps(calls, ensure_ascii=False)
        if len(encoded) <= MAX_METADATA_STRING:
            metadata[TOOL_CALLS_KEY] = encoded
    if isinstance(message, ToolMessage) and message.tool_call_id:
        metadata[TOOL_CALL_ID_KEY] = str(message.tool_call_id)[:MAX_METADATA_STRING]
    if not text.strip():
        return None
    result: EngineMessage = {"role": role, "content": _fit(text), "metadata": metadata}
    name = display_name(message)
    if name is not None:
        result["name"] = name
    return result


def to_engine_messages(
    messages: Iterable[BaseMessage], *, include_tool_messages: bool = True, include_system: bool = True
) -> list[EngineMessage]:
    """The messages worth writing, converted, in order (see :func:`to_engine_message`)."""
    result = []
    for message in messages:
        if not include_tool_messages and is_tool_traffic(message):
            continue
        if not include_system and role_of(message) == "system":
            continue
        converted = to_engine_message(message)
        if converted is not None:
            result.append(converted)
    return result


def in_batches(messages: list[EngineMessage]) -> list[list[EngineMessage]]:
    """Messages split into the largest batches one ``add`` call takes (each batch is one transaction)."""
    return [messages[i : i + MAX_MESSAGES] for i in range(0, len(messages), MAX_MESSAGES)]


def from_engine_message(message: Message) -> BaseMessage:
    """A stored short-term message as the LangChain message it came from (id = the engine's message id)."""
    common: dict[str, Any] = {"content": message.content, "id": message.id, "name": message.name}
    if message.role == "user":
        return HumanMessage(**common)
    if message.role == "system":
        return SystemMessage(**common)
    if message.role == "tool":
        return ToolMessage(tool_call_id=str(message.metadata.get(TOOL_CALL_ID_KEY, "")), **common)
    tool_calls: list[dict[str, Any]] = []
    encoded = message.metadata.get(TOOL_CALLS_KEY)
    if isinstance(encoded, str):
        tool_calls = [
            {"name": c["name"], "args": c["args"], "id": c.get("id"), "type": "tool_call"} for c in json.loads(encoded)
        ]
    return AIMessage(tool_calls=tool_calls, **common)

"""LlamaIndex ``ChatMessage`` <-> the engine's messages, both ways, without touching the caller's objects.

The engine keeps plain ``{"role", "content", "metadata"}`` turns. What a ``ChatMessage`` holds beyond text (tool
calls, ``additional_kwargs`` such as ``tool_call_id``, images, the exact LlamaIndex role) is kept as JSON in one
metadata value when it fits the engine's 2,000-character limit for metadata strings, so a run read back from the
store is the run that was written. Adapter bookkeeping uses metadata keys starting with ``llama_index_``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, ContentBlock, MessageRole, TextBlock, ToolCallBlock
from pydantic import ValidationError

from memory_plugin import Message
from memory_plugin.models import Metadata
from memory_plugin.validation import MAX_METADATA_STRING, MAX_TEXT_LENGTH

logger = logging.getLogger(__name__)

KEY_PREFIX = "llama_index_"
ROLE_KEY = "llama_index_role"  # the LlamaIndex role ("chatbot", "developer", ...), also shown when recalling
EXTRAS_KEY = "llama_index_extras"  # JSON: non-text blocks and additional_kwargs
PLACEHOLDER_KEY = "llama_index_placeholder"  # content is a stand-in text: the message had no text of its own
ADAPTER_KEYS = (ROLE_KEY, EXTRAS_KEY, PLACEHOLDER_KEY)

# LlamaIndex roles -> the engine's four roles.
ENGINE_ROLES: Mapping[str, str] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}
# additional_kwargs LlamaIndex adds for its own bookkeeping (BaseMemoryBlock.aput tags messages with session_id).
TRANSIENT_KWARGS = frozenset({"session_id"})
TRUNCATED = " [... truncated]"


def text_of(message: ChatMessage) -> str:
    """The text of a message: its text blocks joined by newlines ("" when it has none)."""
    return "\n".join(block.text for block in message.blocks if isinstance(block, TextBlock))


def role_of(message: ChatMessage) -> str:
    return message.role.value if isinstance(message.role, MessageRole) else str(message.role)


def to_engine(message: ChatMessage) -> dict[str, Any] | None:
    """The engine form of ``message``: a new ``{"role", "content", "metadata"}`` dict, or ``None`` when the message
    holds nothing to keep (no text, no blocks, no kwargs). ``message`` is not modified.

    A message without text (e.g. an assistant turn that only calls tools) gets a short stand-in text such as
    ``[tool call get_weather({"city": "Paris"})]``, flagged so it is neither read back as text nor recalled.
    """
    role = role_of(message)
    text = text_of(message)
    others = [block for block in message.blocks if not isinstance(block, TextBlock)]
    kwargs = {k: v for k, v in message.additional_kwargs.items() if k not in TRANSIENT_KWARGS}
    placeholder = not text.strip()
    content = _describe(others, kwargs) if placeholder else text
    if not content:
        return None
    metadata: Metadata = {ROLE_KEY: role}
    if placeholder:
        metadata[PLACEHOLDER_KEY] = True
    extras = _extras(message, others, kwargs)
    if extras:
        metadata[EXTRAS_KEY] = extras
    return {"role": ENGINE_ROLES.get(role, "user"), "content": _fit(content), "metadata": metadata}


def from_engine(message: Message) -> ChatMessage:
    """A new ``ChatMessage`` from a stored message, with the blocks and kwargs :func:`to_engine` kept."""
    role = message.metadata.get(ROLE_KEY, message.role)
    if role not in ENGINE_ROLES:
        role = message.role
    extras = _load(message.metadata.get(EXTRAS_KEY))
    blocks: list[Any] = list(extras.get("blocks", []))
    if not message.metadata.get(PLACEHOLDER_KEY) or not blocks:
        blocks.insert(0, {"block_type": "text", "text": message.content})
    try:
        return ChatMessage.model_validate(
            {"role": role, "blocks": blocks, "additional_kwargs": dict(extras.get("kwargs", {}))}
        )
    except ValidationError:
        logger.warning("stored message %s has extras this LlamaIndex cannot read; using its text only", message.id)
        return ChatMessage(role=role, content=message.content)


def fingerprint(role: str, content: str, metadata: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two turns the same for :meth:`set`: engine role, text and the kept LlamaIndex extras."""
    return role, content, metadata.get(ROLE_KEY), metadata.get(EXTRAS_KEY)


def to_engine_all(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """:func:`to_engine` for each message, leaving out the empty ones."""
    return [entry for entry in map(to_engine, messages) if entry is not None]


def _describe(blocks: Sequence[ContentBlock], kwargs: Mapping[str, Any]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, ToolCallBlock):
            arguments = block.tool_kwargs if isinstance(block.tool_kwargs, str) else _json(block.tool_kwargs)
            parts.append(f"[tool call {block.tool_name}({arguments[:200]})]")
        else:
            parts.append(f"[{block.block_type}]")
    if kwargs.get("tool_calls"):
        parts.append("[tool calls]")
    return " ".join(parts)


def _extras(message: ChatMessage, others: Sequence[ContentBlock], kwargs: Mapping[str, Any]) -> str | None:
    """JSON of the non-text blocks and kwargs, or of the kwargs alone, whichever first fits in a metadata value."""
    try:
        blocks = [block.model_dump(mode="json") for block in others]
        dumped = message.model_dump(mode="json", include={"additional_kwargs"})["additional_kwargs"]
    except (ValueError, TypeError) as e:  # kwargs holding objects pydantic cannot serialise
        logger.warning("cannot keep the extras of a %s message (%s); keeping its text", role_of(message), e)
        return None
    kept = {k: v for k, v in dumped.items() if k in kwargs}
    full = {k: v for k, v in (("blocks", blocks), ("kwargs", kept)) if v}
    if not full:
        return None
    encoded = _json(full)
    if len(encoded) <= MAX_METADATA_STRING:
        return encoded
    if kept and len(slim := _json({"kwargs": kept})) <= MAX_METADATA_STRING:
        logger.warning("the blocks of a %s message are too large to keep; keeping its text", role_of(message))
        return slim
    logger.warning("the extras of a %s message are too large to keep; keeping its text", role_of(message))
    return None


def _load(encoded: object) -> dict[str, Any]:
    if not isinstance(encoded, str):
        return {}
    try:
        value = json.loads(encoded)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _fit(content: str) -> str:
    if len(content) <= MAX_TEXT_LENGTH:
        return content
    logger.warning("a message of %d characters was truncated to the store's limit of %d", len(content), MAX_TEXT_LENGTH)
    return content[: MAX_TEXT_LENGTH - len(TRUNCATED)] + TRUNCATED

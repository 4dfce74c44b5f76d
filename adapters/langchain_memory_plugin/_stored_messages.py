"""How :class:`MemoryChatMessageHistory` keeps LangChain messages exactly: what is added is what comes back.

The engine keeps a message as ``role``, non-blank ``content`` (at most 32,000 characters), an optional ``name`` and
flat metadata (at most 16 keys, strings up to 2,000 characters). A LangChain message holds more: its own ``id``,
``additional_kwargs``, ``response_metadata``, ``usage_metadata``, tool calls, any name, list content, or no text
at all. So each message is stored as:

- ``content``: its text (for list content, the text of its text blocks; NUL characters dropped, as the engine
  refuses them); a message without text gets a stand-in (``[tool call] f({...})`` or
  ``[ai message without text]``) flagged ``lc_placeholder=True``, which recall never shows;
- ``name``: its name when it is a valid engine id (the extractor uses it as the speaker);
- metadata ``lc_message``: the rest of the message as LangChain's own serialization (``message_to_dict``) in JSON,
  without the content when ``content`` above is exactly it, and without empty fields. A JSON text over 2,000 characters
  is cut into chunks in ``lc_message``, ``lc_message_1``, ``lc_message_2``, ... as many as the metadata keys
  left beside the history's own metadata allow.

Every message is rebuilt from its stored form before anything is written; a message that would not come back
equal (too large for the keys left, or holding values JSON cannot carry) is refused with an
:class:`~memory_plugin.InvalidArgumentError` naming it, and nothing of the call is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, messages_from_dict

from memory_plugin import InvalidArgumentError, Message
from memory_plugin.models import Metadata
from memory_plugin.validation import MAX_METADATA_KEYS, MAX_METADATA_STRING, MAX_TEXT_LENGTH

from ._messages import (
    MESSAGE_ID_KEY,
    PLACEHOLDER_KEY,
    EngineMessage,
    display_name,
    from_engine_message,
    role_of,
    tool_call_text,
)

logger = logging.getLogger(__name__)

SERIALIZED_KEY = "lc_message"
_EMPTY: tuple[object, ...] = (None, {}, [])


def chunk_key(index: int) -> str:
    """The metadata key of chunk ``index`` of a serialized message: ``lc_message``, ``lc_message_1``, ..."""
    return SERIALIZED_KEY if index == 0 else f"{SERIALIZED_KEY}_{index}"


def _engine_content(message: BaseMessage) -> tuple[str, bool]:
    """The content the engine stores for ``message``, and whether it is a stand-in (the message has no text)."""
    text = message.text.replace("\x00", "")[:MAX_TEXT_LENGTH]
    if text.strip():
        return text, False
    if isinstance(message, AIMessage) and message.tool_calls:
        return tool_call_text(message.tool_calls)[:MAX_TEXT_LENGTH], True
    return f"[{message.type} message without text]", True


def _kept(key: str, value: object, content_stored: bool) -> bool:
    """Whether a field of ``message_to_dict``'s data goes into the JSON: not the type (stored beside it), not the
    content when the engine's content is it, and no empty field (LangChain fills those in again)."""
    if key == "content":
        return not content_stored
    return key != "type" and not any(value == empty for empty in _EMPTY)


def _serialized(message: BaseMessage, position: int, content_stored: bool) -> str:
    data = {key: value for key, value in message.model_dump().items() if _kept(key, value, content_stored)}
    try:
        return json.dumps({"type": message.type, "data": data}, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"messages[{position}]", f"cannot be kept exactly: its fields must be JSON-serializable ({e})"
        ) from None


def _chunks(encoded: str, position: int, room: int, content_in_json: bool) -> Metadata:
    capacity = room * MAX_METADATA_STRING
    if len(encoded) > capacity:
        what = "its content and fields" if content_in_json else "its fields other than content"
        raise InvalidArgumentError(
            f"messages[{position}]",
            f"is too large to keep exactly: {what} take {len(encoded):,} characters as JSON and at most "
            f"{capacity:,} fit (the history's metadata leaves {room} of a message's {MAX_METADATA_KEYS} metadata "
            f"values of {MAX_METADATA_STRING:,} characters); shorten additional_kwargs / response_metadata, or pass "
            "less history metadata",
        )
    size = MAX_METADATA_STRING
    return {chunk_key(i): encoded[start : start + size] for i, start in enumerate(range(0, len(encoded), size))}


def rebuild(content: str, metadata: Mapping[str, Any]) -> BaseMessage | None:
    """The LangChain message stored as ``content`` + ``metadata`` by :func:`to_stored`, or ``None`` when the
    metadata holds no serialized message (messages written some other way)."""
    parts: list[str] = []
    while isinstance(part := metadata.get(chunk_key(len(parts))), str):
        parts.append(part)
    if not parts:
        return None
    serialized = json.loads("".join(parts))
    data = dict(serialized["data"])
    data.setdefault("content", content)
    return messages_from_dict([{"type": serialized["type"], "data": data}])[0]


def to_stored(message: BaseMessage, position: int, call_metadata: Mapping[str, Any]) -> EngineMessage:
    """The engine message that keeps ``message`` exactly (see the module docstring).

    Args:
        message: any LangChain message.
        position: its index in the call, named in errors.
        call_metadata: the metadata written with every message (it takes metadata keys too).

    Raises:
        InvalidArgumentError: the message cannot be kept exactly (too large, or not JSON-serializable).
    """
    content, stand_in = _engine_content(message)
    content_stored = content == message.content
    metadata: Metadata = {PLACEHOLDER_KEY: True} if stand_in else {}
    room = MAX_METADATA_KEYS - len(set(call_metadata) | set(metadata))
    metadata.update(_chunks(_serialized(message, position, content_stored), position, room, not content_stored))
    try:
        rebuilt = rebuild(content, metadata)
    except (TypeError, ValueError):  # a pydantic ValidationError is a ValueError
        rebuilt = None
    if rebuilt != message:
        raise InvalidArgumentError(
            f"messages[{position}]",
            f"cannot be kept exactly: a {message.type} message does not come back equal from LangChain's own "
            "serialization (message_to_dict); use JSON values (no tuples, sets, bytes or objects) in its fields",
        )
    entry: EngineMessage = {"role": role_of(message) or "system", "content": content, "metadata": metadata}
    name = display_name(message)
    if name is not None:
        entry["name"] = name
    return entry


def to_stored_all(messages: Sequence[BaseMessage], call_metadata: Mapping[str, Any]) -> list[EngineMessage]:
    """:func:`to_stored` for each message, all checked before any is written."""
    return [to_stored(message, i, call_metadata) for i, message in enumerate(messages)]


def from_stored(message: Message) -> BaseMessage:
    """The LangChain message a stored message holds: exactly the one added through the chat history; for a
    message written another way (``store.add``, the middleware), the closest LangChain message, whose id is the
    LangChain id it was written with, else the engine's message id."""
    try:
        rebuilt = rebuild(message.content, message.metadata)
    except (KeyError, TypeError, ValueError):  # metadata someone else wrote under our key: read it as text
        logger.warning("stored message %s has an unreadable %s; using its text only", message.id, SERIALIZED_KEY)
        rebuilt = None
    if rebuilt is not None:
        return rebuilt
    legacy = from_engine_message(message)
    own_id = message.metadata.get(MESSAGE_ID_KEY)
    return legacy.model_copy(update={"id": own_id}) if isinstance(own_id, str) else legacy

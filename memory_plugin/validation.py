"""Validation of every public argument. Pure functions: each returns the normalised value or raises
:class:`InvalidArgumentError` naming the field and what is allowed. Nothing here touches storage."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import InvalidArgumentError
from .models import ROLES, Metadata, MetadataValue
from .scope import SEGMENTS, check_id, check_string

MAX_TEXT_LENGTH = 32_000
MAX_MESSAGES = 100
MAX_QUERY_LENGTH = 4_000
MAX_TOP_K = 50
MAX_LIMIT = 100
MAX_METADATA_KEYS = 16
MAX_METADATA_STRING = 2_000
MAX_DESCRIPTION_LENGTH = 1_000
MAX_FILTER_VALUES = 100

# Keys metadata may never use: scope segments and fields the engine owns. Metadata can never change a scope.
RESERVED_KEYS = frozenset(SEGMENTS) | {
    "id",
    "memory_id",
    "message_id",
    "request_id",
    "scope",
    "store",
    "text",
    "memory_type",
    "created_at",
    "updated_at",
    "event_time",
    "source_message_ids",
    "role",
    "content",
    "name",
    "timestamp",
    "score",
}
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MEMORY_TYPE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")
# LangChain message types -> our roles (duck-typed; the core imports no framework).
_MESSAGE_TYPES = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "user": "user",
    "assistant": "assistant",
}
_INT64 = 2**63


@dataclass(frozen=True)
class MessageInput:
    """A validated incoming message, before it is stored."""

    role: str
    content: str
    name: str | None = None
    timestamp: datetime | None = None
    metadata: Metadata = field(default_factory=dict)


def check_store_name(name: object, field_name: str = "name") -> str:
    if not isinstance(name, str) or not _STORE_NAME.fullmatch(name):
        raise InvalidArgumentError(
            field_name,
            f"must be 1-64 characters of letters, digits, '_.-', starting with a letter or digit; got {name!r:.80}",
        )
    return name


def check_description(description: object) -> str:
    if not isinstance(description, str):
        raise InvalidArgumentError("description", f"must be a string, got {type(description).__name__}")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidArgumentError("description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    if "\x00" in description:
        raise InvalidArgumentError("description", "must not contain NUL characters")
    return description


def check_text(field_name: str, text: object) -> str:
    """A memory text or message content: a non-blank string of at most 32,000 characters, no NUL."""
    text = check_string(field_name, text, MAX_TEXT_LENGTH)
    if "\x00" in text:
        raise InvalidArgumentError(field_name, "must not contain NUL characters")
    return text


def check_key(field_name: str, key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise InvalidArgumentError(field_name, f"keys must be identifiers of at most 64 characters, got {key!r:.80}")
    if key in RESERVED_KEYS:
        raise InvalidArgumentError(
            field_name, f"key {key!r} is reserved (scope and system fields cannot be set or filtered through metadata)"
        )
    return key


def _check_scalar(field_name: str, value: object) -> MetadataValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise InvalidArgumentError(field_name, "integers must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgumentError(field_name, "floats must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_METADATA_STRING:
            raise InvalidArgumentError(field_name, f"strings must be at most {MAX_METADATA_STRING} characters")
        if "\x00" in value:
            raise InvalidArgumentError(field_name, "strings must not contain NUL characters")
        return value
    raise InvalidArgumentError(
        field_name, f"values must be flat scalars (str, int, float, bool), got {type(value).__name__}"
    )


def check_metadata(metadata: object, field_name: str = "metadata") -> Metadata:
    """Flat metadata: at most 16 identifier keys (not reserved) mapping to str/int/float/bool."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError(field_name, f"must be a dict of flat scalars, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidArgumentError(field_name, f"may have at most {MAX_METADATA_KEYS} keys, got {len(metadata)}")
    return {check_key(field_name, key): _check_scalar(f"{field_name}.{key}", value) for key, value in metadata.items()}


def check_filters(filters: object) -> dict[str, tuple[MetadataValue, ...]]:
    """Metadata filters: ``{key: value}`` (equal) or ``{key: [v1, v2]}`` (any of). All keys must match."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidArgumentError(
            "filters", f"must be a dict of metadata key to value(s), got {type(filters).__name__}"
        )
    if len(filters) > MAX_METADATA_KEYS:
        raise InvalidArgumentError("filters", f"may have at most {MAX_METADATA_KEYS} keys")
    result: dict[str, tuple[MetadataValue, ...]] = {}
    for key, value in filters.items():
        check_key("filters", key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or len(values) > MAX_FILTER_VALUES:
            raise InvalidArgumentError(f"filters.{key}", f"a value list must hold 1-{MAX_FILTER_VALUES} values")
        result[key] = tuple(_check_scalar(f"filters.{key}", v) for v in values)
    return result


def check_memory_types(memory_types: object) -> tuple[str, ...]:
    """One memory type name or a list of them; empty tuple means any type."""
    if memory_types is None:
        return ()
    values = [memory_types] if isinstance(memory_types, str) else memory_types
    if not isinstance(values, (list, tuple, set, frozenset)) or not values:
        raise InvalidArgumentError("memory_types", "must be a type name or a non-empty list of type names")
    for value in values:
        check_memory_type(value, "memory_types")
    return tuple(dict.fromkeys(sorted(values)))


def check_memory_type(value: object, field_name: str = "memory_type") -> str:
    if not isinstance(value, str) or not _MEMORY_TYPE.fullmatch(value):
        raise InvalidArgumentError(
            field_name, f"type names are 1-64 characters of letters, digits, '_', '.', ':', '-', got {value!r:.80}"
        )
    return value


def check_time(field_name: str, value: object) -> datetime:
    """A point in time: an aware or naive (taken as UTC) datetime, an ISO 8601 string, or Unix seconds."""
    if isinstance(value, datetime):
        result = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgumentError(field_name, f"must be an ISO 8601 date/time, got {value!r:.80}") from None
        result = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            result = datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise InvalidArgumentError(
                field_name, "Unix seconds out of range (milliseconds are not accepted)"
            ) from None
    else:
        raise InvalidArgumentError(
            field_name, f"must be a datetime, an ISO 8601 string or Unix seconds, got {type(value).__name__}"
        )
    return result.astimezone(timezone.utc)


def check_optional_time(field_name: str, value: object) -> datetime | None:
    return None if value is None else check_time(field_name, value)


def check_time_range(start: object, end: object) -> tuple[datetime | None, datetime | None]:
    start_time = check_optional_time("start_time", start)
    end_time = check_optional_time("end_time", end)
    if start_time and end_time and start_time > end_time:
        raise InvalidArgumentError("start_time", "must not be later than end_time")
    return start_time, end_time


def check_int(field_name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgumentError(field_name, f"must be an integer from {low} to {high}, got {value!r:.40}")
    return value


def check_top_k(value: object) -> int:
    return check_int("top_k", value, 1, MAX_TOP_K)


def check_limit(value: object) -> int:
    return check_int("limit", value, 1, MAX_LIMIT)


def check_bool(field_name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(field_name, f"must be True or False, got {value!r:.40}")
    return value


def check_query(query: object) -> str:
    return check_string("query", query, MAX_QUERY_LENGTH)


def check_memory_id(value: object) -> str:
    try:
        return check_id("memory_id", value)
    except InvalidArgumentError as e:
        raise InvalidArgumentError("memory_id", e.problem) from None


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"p1:{position}".encode()).decode().rstrip("=")


def check_cursor(cursor: object) -> int | None:
    """Decode a cursor from a previous page; ``None`` means the first page. Any other value, however it is
    malformed or forged, is an :class:`InvalidArgumentError` naming ``cursor``."""
    if cursor is None:
        return None
    if isinstance(cursor, str) and 0 < len(cursor) <= 64:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raw = ""
        digits = raw[3:]
        if raw.startswith("p1:") and digits.isascii() and digits.isdigit() and int(digits) < _INT64:
            return int(digits)
    raise InvalidArgumentError("cursor", "must be the next_cursor of a previous page, or None")


def encode_text_cursor(value: str) -> str:
    """A cursor standing for a position that is an id (a page of ids in order)."""
    return base64.urlsafe_b64encode(f"t1:{value}".encode()).decode().rstrip("=")


def check_text_cursor(cursor: object) -> str | None:
    """Decode a cursor of :func:`encode_text_cursor`; ``None`` means the first page."""
    if cursor is None:
        return None
    if isinstance(cursor, str) and 0 < len(cursor) <= 256:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raw = ""
        if raw.startswith("t1:") and len(raw) > 3:
            return raw[3:]
    raise InvalidArgumentError("cursor", "must be the next_cursor of a previous page, or None")


def check_idempotency_key(key: object) -> str | None:
    """An optional idempotency key: 1-128 characters, no control characters (like an id)."""
    if key is None:
        return None
    try:
        return check_id("idempotency_key", key)
    except InvalidArgumentError as e:
        raise InvalidArgumentError("idempotency_key", e.problem) from None


MAX_RETENTION_DAYS = 36_500


def check_retention_days(field_name: str, days: object) -> int | None:
    """A retention period in whole days (1-36,500), or ``None`` to keep forever."""
    if days is None:
        return None
    return check_int(field_name, days, 1, MAX_RETENTION_DAYS)


def _message_field(message: object, name: str) -> Any:
    if isinstance(message, Mapping):
        return message.get(name)
    return getattr(message, name, None)


def _content_text(content: object) -> object:
    """LangChain content may be a list of blocks; keep the text blocks."""
    if isinstance(content, list):
        parts = [b if isinstance(b, str) else b.get("text", "") for b in content if isinstance(b, (str, dict))]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return content


def _message_role(message: object, field_name: str) -> str:
    raw = _message_field(message, "role")
    if raw is None and not isinstance(message, Mapping):
        raw = _message_field(message, "type")  # LangChain BaseMessage.type
    raw = getattr(raw, "value", raw)  # enums such as LlamaIndex MessageRole
    role = _MESSAGE_TYPES.get(raw) if isinstance(raw, str) else None
    if role is None:
        raise InvalidArgumentError(f"{field_name}.role", f"must be one of {list(ROLES)}, got {raw!r:.40}")
    return role


def check_message(message: object, field_name: str) -> MessageInput:
    """One message: a ``{"role", "content"}`` dict or a message object (LangChain / LlamaIndex style)."""
    if message is None or isinstance(message, (str, bytes)):
        raise InvalidArgumentError(field_name, "must be a {'role', 'content'} dict or a message object")
    role = _message_role(message, field_name)
    content = check_text(f"{field_name}.content", _content_text(_message_field(message, "content")))
    name = _message_field(message, "name")
    if name is not None:
        try:
            name = check_id(f"{field_name}.name", name)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{field_name}.name", e.problem) from None
    timestamp = check_optional_time(f"{field_name}.timestamp", _message_field(message, "timestamp"))
    metadata = check_metadata(_message_field(message, "metadata"), f"{field_name}.metadata")
    return MessageInput(role=role, content=content, name=name, timestamp=timestamp, metadata=metadata)


def message_json(message: object) -> Any:
    """A message as plain data, to be sent elsewhere and validated there: a mapping as given, a message object
    (LangChain, LlamaIndex, :class:`MessageInput`) by its role, content, name, timestamp and metadata."""
    if isinstance(message, Mapping) or message is None or isinstance(message, (str, bytes)):
        return message
    if isinstance(message, MessageInput):
        role: object = message.role
    else:
        role = _message_field(message, "role")
        role = _message_field(message, "type") if role is None else role
        role = getattr(role, "value", role)
    timestamp = _message_field(message, "timestamp")
    return {
        "role": role,
        "content": _content_text(_message_field(message, "content")),
        "name": _message_field(message, "name"),
        "timestamp": timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp,
        "metadata": _message_field(message, "metadata"),
    }


def check_messages(messages: object) -> list[MessageInput]:
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidArgumentError("messages", "must be a list of messages")
    if not messages:
        raise InvalidArgumentError("messages", "must not be empty")
    if len(messages) > MAX_MESSAGES:
        raise InvalidArgumentError("messages", f"may hold at most {MAX_MESSAGES} messages, got {len(messages)}")
    return [check_message(m, f"messages[{i}]") for i, m in enumerate(messages)]

"""Pure mapping between LangGraph store items and engine memories, used by :class:`MemoryPluginStore`.

- The label at index ``tenant_label`` (default 0) is the scope's ``tenant_id``; the other labels, in order, are
  its ``agent_id`` and ``run_id`` (``app_id`` is the store's). A shorter namespace fills the missing segments
  with ``"."``, which LangGraph forbids in labels, so it never collides with a real label.
- The labels left after that are metadata ``lg_ns<index>`` (``lg_ns3``, ``lg_ns4``, ... with the default
  ``tenant_label``), so that prefix searches can filter on them.
- ``lg_ref`` holds the item's exact identity (its namespace and key as JSON) and ``lg_item`` marks the memory as a
  LangGraph item; the memory text is the item's value as JSON.

Also here: LangGraph's namespace match conditions and value filters (``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``,
``$lte``, nested dicts and dotted keys), evaluated the way ``InMemoryStore`` evaluates them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langgraph.store.base import InvalidNamespaceError, MatchCondition

from memory_plugin import InvalidArgumentError, Memory, Scope
from memory_plugin.models import Metadata
from memory_plugin.scope import WILDCARD, check_id
from memory_plugin.validation import MAX_METADATA_KEYS, MAX_METADATA_STRING, MAX_TEXT_LENGTH

MARKER_KEY = "lg_item"
REF_KEY = "lg_ref"
LEVEL_KEY = "lg_ns{}"
ABSENT = "."
SCOPED_LEVELS = 3
MAX_DEPTH = SCOPED_LEVELS + MAX_METADATA_KEYS - 2
_SEGMENTS = ("tenant_id", "agent_id", "run_id")

Namespace = tuple[str, ...]
ReadTarget = tuple[Scope, dict[str, Any]]


def check_label(index: int, label: str) -> str:
    """A namespace label the engine can hold: 1-128 characters, no control characters, no ``*``."""
    try:
        return check_id(f"namespace[{index}]", label)
    except InvalidArgumentError as e:
        raise InvalidNamespaceError(f"namespace label {label!r:.80} cannot be stored: {e.problem}") from None


def check_tenant_label(tenant_label: object) -> int:
    """Which namespace label is the tenant: an index from 0 to ``MAX_DEPTH - 1``.

    Raises:
        InvalidArgumentError: not an int in that range.
    """
    if isinstance(tenant_label, bool) or not isinstance(tenant_label, int) or not 0 <= tenant_label < MAX_DEPTH:
        raise InvalidArgumentError(
            "tenant_label",
            f"must be the index of the namespace label that names the tenant, an int from 0 to {MAX_DEPTH - 1} "
            f"(e.g. 1 for langmem's ('memories', '{{user_id}}')), got {tenant_label!r:.40}",
        )
    return tenant_label


def place(index: int, tenant_label: int = 0) -> str:
    """Where namespace label ``index`` is kept: a scope segment (``"tenant_id"``, ...) or a metadata key."""
    if index == tenant_label:
        return "tenant_id"
    rank = index if index < tenant_label else index - 1
    return _SEGMENTS[rank + 1] if rank + 1 < SCOPED_LEVELS else LEVEL_KEY.format(index)


def ref_of(namespace: Namespace, key: str) -> str:
    return json.dumps([*namespace, key], ensure_ascii=False, separators=(",", ":"))


def write_target(app_id: str, namespace: Namespace, key: str, tenant_label: int = 0) -> tuple[Scope, Metadata]:
    """The concrete scope and metadata of the memory that holds item ``namespace`` / ``key``.

    Raises:
        InvalidNamespaceError: empty, deeper than :data:`MAX_DEPTH`, or a label the engine cannot hold.
        InvalidArgumentError: namespace and key together exceed the metadata string limit.
    """
    if not namespace:
        raise InvalidNamespaceError("Namespace cannot be empty.")
    if len(namespace) > MAX_DEPTH:
        raise InvalidNamespaceError(f"namespaces may have at most {MAX_DEPTH} labels, got {len(namespace)}")
    labels = [check_label(i, label) for i, label in enumerate(namespace)]
    ref = ref_of(namespace, key)
    if len(ref) > MAX_METADATA_STRING:
        raise InvalidArgumentError(
            "key",
            f"namespace and key together must be at most {MAX_METADATA_STRING} characters as JSON, got {len(ref)}",
        )
    segments = dict.fromkeys(_SEGMENTS, ABSENT)
    metadata: Metadata = {MARKER_KEY: True, REF_KEY: ref}
    for i, label in enumerate(labels):
        where = place(i, tenant_label)
        if where in segments:
            segments[where] = label
        else:
            metadata[where] = label
    return Scope(app_id=app_id, **segments), metadata


def read_target(app_id: str, path: Sequence[str], exact: bool = False, tenant_label: int = 0) -> ReadTarget | None:
    """The read scope and metadata filters for every item under ``path`` (``"*"`` labels match anything).

    With ``exact`` the path is one item's full namespace (the caller adds the ``lg_ref`` filter). ``None`` when no
    stored item can match (a label the engine could never hold).
    """
    # An exact namespace has no labels beyond ``path``: the segments none of its labels fill are absent.
    segments: dict[str, Any] = dict.fromkeys(_SEGMENTS, ABSENT if exact else WILDCARD)
    filters: dict[str, Any] = {MARKER_KEY: True}
    for i, label in enumerate(path):
        where = place(i, tenant_label)
        if label == WILDCARD:
            if where in segments:
                segments[where] = WILDCARD
            continue
        try:
            check_id("label", label)
        except InvalidArgumentError:
            return None
        if where in segments:
            segments[where] = label
        else:
            filters[where] = label
    return Scope(app_id=app_id, **segments), filters


def encode_value(value: Mapping[str, Any]) -> str:
    """An item's value as the memory text (JSON).

    Raises:
        InvalidArgumentError: not a JSON object, or longer than the engine's text limit.
    """
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("value", f"must be a dict, got {type(value).__name__}")
    try:
        text = json.dumps(dict(value), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError("value", f"must be JSON-serializable ({e})") from None
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidArgumentError("value", f"must be at most {MAX_TEXT_LENGTH} characters as JSON, got {len(text)}")
    return text


def decode_item(memory: Memory) -> tuple[Namespace, str, dict[str, Any]]:
    """Namespace, key and value of the item a memory holds. A text that is not a JSON object (e.g. rewritten by
    another adapter) is returned as ``{"text": ...}``."""
    *labels, key = json.loads(str(memory.metadata[REF_KEY]))
    try:
        value = json.loads(memory.text)
    except ValueError:
        value = None
    return tuple(labels), key, value if isinstance(value, dict) else {"text": memory.text}


def matches_condition(condition: MatchCondition, namespace: Namespace) -> bool:
    """LangGraph's prefix / suffix namespace match, ``"*"`` matching any one label."""
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise ValueError(f"unsupported match type {condition.match_type!r}; use 'prefix' or 'suffix'")
    return all(wanted in (WILDCARD, label) for label, wanted in pairs)


_MISSING = object()


def _field(value: Mapping[str, Any], key: str) -> Any:
    if key in value:
        return value[key]
    current: Any = value
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    if operator == "$eq":
        return bool(actual == expected)
    if operator == "$ne":
        return bool(actual != expected)
    if operator not in ("$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"unsupported filter operator {operator!r}; use $eq, $ne, $gt, $gte, $lt, $lte")
    if actual is _MISSING or actual is None or isinstance(actual, bool):
        return False
    numbers = isinstance(actual, (int, float)) and isinstance(expected, (int, float))
    if not numbers and not (isinstance(actual, str) and isinstance(expected, str)):
        return False
    if operator == "$gt":
        return bool(actual > expected)
    if operator == "$gte":
        return bool(actual >= expected)
    if operator == "$lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(str(k).startswith("$") for k in expected):
            return all(_compare(actual, op, operand) for op, operand in expected.items())
        return isinstance(actual, Mapping) and all(_matches(_field(actual, k), v) for k, v in expected.items())
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(_matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual is not _MISSING and bool(actual == expected)


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item's value passes a LangGraph search filter (every key must match)."""
    return not filter or all(_matches(_field(value, key), expected) for key, expected in filter.items())

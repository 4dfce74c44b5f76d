"""VikingDB's memory search (``POST /api/memory/search``) in our terms: the request becomes a search on a memory
store, our results become its response. Pure functions; the route calls them around ``store.search``.

How VikingDB's fields map onto ours:

- ``collection_name`` is the memory store's name. It is required here (VikingDB also accepts ``resource_id``,
  which names nothing here: refused with a clear error); ``project_name`` is accepted and ignored (one server is
  one project).
- The scope: ``app_id`` is the app of the access key that made the request (VikingDB has no app);
  ``filter.user_id`` is ``tenant_id``, ``filter.assistant_id`` is ``agent_id`` and ``filter.session_id`` is
  ``run_id``, each one id or a list of ids; a missing one is ``"*"`` (then narrowed to the key's tenants by
  :func:`memory_plugin.server.authorization.authorize`).
- ``filter.group_id`` (one id or a list) filters on the metadata key ``group_id``: write memories with
  ``metadata={"group_id": ...}`` to use it. ``filter.primary_key`` (``"kb_id=1"`` or a list of such) filters on
  metadata too: expressions on the same key are alternatives, on different keys all must hold; a value that reads
  as a number or ``true``/``false`` also matches that number or boolean.
- ``filter.memory_type`` (required, one name or a list) names our memory types; VikingDB's system types are
  aliases: ``sys_event_v1`` is ``event`` and ``message`` (conversation turns), ``sys_profile_v1`` is ``profile``
  and ``fact``. A result's ``memory_type`` is the name the request used.
- ``filter.start_time`` / ``filter.end_time`` (milliseconds since the epoch) bound each memory's ``event_time``;
  a result's ``time`` is that same ``event_time``, in milliseconds.
- ``query`` is required here: a search without one (VikingDB's "latest memories" listing) is our ``list``.
- ``limit`` (1-5000, default 10): a search here returns at most 50 results (a search has no next page), so a
  larger limit is served as 50, and the response's ``message`` says so.

The response: ``{"code": 0, "message", "data": {"collection_name", "count", "result_list", "token_usage"},
"request_id"}``, each result ``{"id", "score", "memory_type", "user_id": [..], "assistant_id": [..],
"session_id", "group_id", "time", "status", "labels", "memory_info": {"text", "metadata"}}`` (``status`` and
``labels`` are reserved in VikingDB and always ``null`` here; ``token_usage`` counts the query's tokens).
Validation errors name the field as VikingDB spells it (``filter.user_id[1]``, ``limit``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..compat.fields import read_request, seed_field_names
from ..errors import InvalidArgumentError
from ..models import Memory, MetadataValue, SearchHit, SearchResults
from ..scope import WILDCARD, Scope, check_id
from ..validation import (
    MAX_TOP_K,
    check_filters,
    check_int,
    check_key,
    check_memory_type,
    check_query,
    check_store_name,
)

ROUTE = "/api/memory/search"
MAX_LIMIT = 5000  # VikingDB's range; served as at most MAX_TOP_K
DEFAULT_LIMIT = 10
TYPE_ALIASES: dict[str, tuple[str, ...]] = {
    "sys_event_v1": ("event", "message"),
    "sys_profile_v1": ("profile", "fact"),
}
GROUP_KEY = "group_id"
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}\.[0-9]{1,18}")
_FILTER_FIELDS = ("user_id", "assistant_id", "session_id", "group_id", "primary_key", "start_time", "end_time")
# VikingDB's filter fields -> our scope's segments.
_SEGMENTS = {"user_id": "tenant_id", "assistant_id": "agent_id", "session_id": "run_id"}


@dataclass(frozen=True)
class VikingSearch:
    """A VikingDB search request in our terms. Run it as
    ``store(collection_name).search(scope, query, **search_kwargs())``, after authorising (and perhaps
    narrowing) ``scope`` with ``dataclasses.replace(search, scope=...)``."""

    collection_name: str
    scope: Scope
    query: str
    limit: int  # as asked
    memory_types: tuple[str, ...]  # ours, aliases expanded
    type_names: dict[str, str]  # our type -> the name the request used for it
    filters: dict[str, tuple[MetadataValue, ...]] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None

    @property
    def top_k(self) -> int:
        """How many results are served: ``limit``, at most 50."""
        return min(self.limit, MAX_TOP_K)

    def search_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``MemoryStore.search`` after the scope and the query."""
        return {
            "top_k": self.top_k,
            "memory_types": list(self.memory_types),
            "filters": dict(self.filters) or None,
            "start_time": self.start_time,
            "end_time": self.end_time,
        }


def _millis(name: str, value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(name, f"must be a timestamp in milliseconds (an integer >= 0), got {value!r:.40}")
    try:
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidArgumentError(name, "is out of range (milliseconds since 1970-01-01)") from None


def _memory_types(value: object) -> tuple[tuple[str, ...], dict[str, str]]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise InvalidArgumentError("filter.memory_type", "must be a memory type name or a non-empty list of them")
    ours: dict[str, str] = {}
    for i, name in enumerate(names):
        check_memory_type(name, f"filter.memory_type[{i}]" if isinstance(value, list) else "filter.memory_type")
        for our_type in TYPE_ALIASES.get(name, (name,)):
            ours.setdefault(our_type, name)
    return tuple(sorted(ours)), ours


def _scalar_forms(text: str) -> tuple[MetadataValue, ...]:
    """``text`` and the number or boolean it reads as: ``"1"`` matches metadata ``"1"`` and ``1``."""
    if text in ("true", "false"):
        return text, text == "true"
    if _INTEGER.fullmatch(text):
        return text, int(text)
    if _DECIMAL.fullmatch(text):
        return text, float(text)
    return (text,)


def _metadata_filters(group: object, primary_key: object) -> dict[str, list[MetadataValue]]:
    filters: dict[str, list[MetadataValue]] = {}
    if group is not None:
        groups = [group] if isinstance(group, str) else group
        if not isinstance(groups, list) or not groups:
            raise InvalidArgumentError("filter.group_id", "must be an id or a non-empty list of ids")
        filters[GROUP_KEY] = [check_id(f"filter.group_id[{i}]", g) for i, g in enumerate(groups)]
    if primary_key is not None:
        expressions = [primary_key] if isinstance(primary_key, str) else primary_key
        if not isinstance(expressions, list) or not expressions:
            raise InvalidArgumentError("filter.primary_key", 'must be "key=value" or a non-empty list of them')
        by_key: dict[str, list[MetadataValue]] = {}
        for i, expression in enumerate(expressions):
            name = f"filter.primary_key[{i}]"
            key, sep, value = expression.partition("=") if isinstance(expression, str) else ("", "", "")
            if not sep:
                raise InvalidArgumentError(name, f'must be "key=value", e.g. "kb_id=1", got {expression!r:.80}')
            key = check_key(name, key.strip())
            if key in filters:
                raise InvalidArgumentError(name, f"{key} is already filtered by filter.{key}")
            by_key.setdefault(key, []).extend(_scalar_forms(value.strip()))
        filters.update(by_key)
    return filters


def parse_search(body: object, app_id: str) -> VikingSearch:
    """Translate a VikingDB search request body (parsed JSON) made with a key of ``app_id``.

    Raises:
        InvalidArgumentError / InvalidScopeError: naming the field as VikingDB spells it; nothing is searched.
    """
    request = read_request(
        body, ROUTE, ("filter",), ("collection_name", "project_name", "resource_id", "query", "limit")
    )
    if "collection_name" not in request:
        if "resource_id" in request:
            raise InvalidArgumentError("resource_id", "memory stores are named here: give collection_name instead")
        raise InvalidArgumentError("collection_name", "is required: the name of the memory store to search")
    if "resource_id" in request:
        raise InvalidArgumentError("resource_id", "give collection_name only; resource ids name nothing here")
    with seed_field_names({"name": "collection_name"}):
        store = check_store_name(request["collection_name"])
    if not isinstance(request.get("project_name", ""), str):
        raise InvalidArgumentError("project_name", "must be a string")
    if "query" not in request:
        raise InvalidArgumentError("query", "is required here; to list memories without a query use ListMemories")
    query = check_query(request["query"])
    limit = check_int("limit", request.get("limit", DEFAULT_LIMIT), 1, MAX_LIMIT)
    filter_ = read_request(request["filter"], ROUTE, ("memory_type",), _FILTER_FIELDS, prefix="filter.")
    with seed_field_names({ours: f"filter.{viking}" for viking, ours in _SEGMENTS.items()}):
        scope = Scope(
            app_id=app_id,
            tenant_id=filter_.get("user_id", WILDCARD),
            agent_id=filter_.get("assistant_id", WILDCARD),
            run_id=filter_.get("session_id", WILDCARD),
        )
    memory_types, type_names = _memory_types(filter_["memory_type"])
    start = _millis("filter.start_time", filter_["start_time"]) if "start_time" in filter_ else None
    end = _millis("filter.end_time", filter_["end_time"]) if "end_time" in filter_ else None
    if start and end and start > end:
        raise InvalidArgumentError("filter.start_time", "must not be later than filter.end_time")
    metadata = _metadata_filters(filter_.get("group_id"), filter_.get("primary_key"))
    with seed_field_names({"filters.group_id": "filter.group_id", "filters": "filter.primary_key"}):
        filters = check_filters(metadata)
    return VikingSearch(store, scope, query, limit, memory_types, type_names, filters, start, end)


# ---------------------------------------------------------------- our results -> VikingDB's response


def _millis_of(time: datetime) -> int:
    return int(time.timestamp() * 1000)


def result_item(hit: SearchHit, type_names: dict[str, str]) -> dict[str, Any]:
    """One entry of ``data.result_list``."""
    memory: Memory = hit.memory
    group = memory.metadata.get(GROUP_KEY)
    return {
        "id": memory.id,
        "score": hit.score,
        "memory_type": type_names.get(memory.memory_type, memory.memory_type),
        "user_id": [memory.scope.tenant_id],
        "assistant_id": [memory.scope.agent_id],
        "session_id": memory.scope.run_id,
        "group_id": None if group is None else str(group),
        "time": _millis_of(memory.event_time),
        "status": None,
        "labels": None,
        "memory_info": {"text": memory.text, "metadata": dict(memory.metadata)},
    }


def search_response(search: VikingSearch, results: SearchResults) -> dict[str, Any]:
    """The VikingDB response to ``search``, answered by ``results`` (what ``store.search`` returned)."""
    message = "success"
    if search.limit > search.top_k:
        message += f"; limit {search.limit} is served as {search.top_k}: a search returns at most {MAX_TOP_K} results"
    return {
        "code": 0,
        "message": message,
        "data": {
            "collection_name": search.collection_name,
            "count": len(results),
            "result_list": [result_item(hit, search.type_names) for hit in results],
            "token_usage": results.usage.query_tokens,
        },
        "request_id": results.request_id,
    }


def error_response(code: int, message: str, request_id: str | None, field: str | None = None) -> dict[str, Any]:
    """A VikingDB-shaped error: ``code`` is the HTTP status (never 0), ``field`` the offending field, if any.

    Example:
        >>> error_response(400, "must be an integer from 1 to 5000, got 0", "req_1", "limit")["code"]
        400
    """
    return {"code": code, "message": message, "field": field, "data": None, "request_id": request_id}

"""JSON Schemas of each operation's request body and result, for the server's OpenAPI document.

Request schemas are derived from the operation's fields (the service validates every request anyway, with errors
that name the field); result schemas come from the result models themselves.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Union, get_args, get_origin

from pydantic import TypeAdapter

from ..models import ROLES, SearchHit, Usage
from ..ops import OPERATION_NAMES, STORE_SETTINGS, Operation, Search
from ..ops.http import route_of
from ..scope import MAX_ID_LENGTH, MAX_IDS_PER_SEGMENT, Scope
from ..validation import (
    KEY_PATTERN,
    MAX_DESCRIPTION_LENGTH,
    MAX_FILTER_VALUES,
    MAX_LIMIT,
    MAX_MESSAGES,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING,
    MAX_QUERY_LENGTH,
    MAX_RETENTION_DAYS,
    MAX_TEXT_LENGTH,
    MAX_TOP_K,
    MEMORY_TYPE_PATTERN,
    STORE_NAME_PATTERN,
    MessageInput,
)

_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}
STORE_NAME_SCHEMA = {"type": "string", "pattern": STORE_NAME_PATTERN}  # also every route's {name} or {store}
_SCALAR: dict[str, Any] = {
    "oneOf": [{"type": "string", "maxLength": MAX_METADATA_STRING}, {"type": "integer"}, {"type": "number"},
              {"type": "boolean"}]
}  # fmt: skip
_SEGMENT = {"oneOf": [_ID, {"type": "array", "items": _ID, "minItems": 1, "maxItems": MAX_IDS_PER_SEGMENT}]}
_SCOPE = {
    "oneOf": [
        {"type": "string", "description": "app/tenant/agent/run; '*' and [a,b] allowed in reads"},
        {
            "type": "object",
            "properties": {"app_id": _ID, **{s: _SEGMENT for s in ("tenant_id", "agent_id", "run_id")}},
            "required": ["app_id", "tenant_id", "agent_id", "run_id"],
        },
    ]
}
_TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}
_METADATA = {
    "type": "object",
    "maxProperties": MAX_METADATA_KEYS,
    "propertyNames": {"pattern": KEY_PATTERN},
    "additionalProperties": _SCALAR,
}
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_LENGTH}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": list(ROLES)},
        "content": _TEXT,
        "name": {"oneOf": [_ID, {"type": "null"}]},
        "timestamp": {"oneOf": [_TIME, {"type": "null"}]},
        "metadata": {"oneOf": [_METADATA, {"type": "null"}]},
    },
    "required": ["role", "content"],
}
_MEMORY_TYPE = {"type": "string", "pattern": MEMORY_TYPE_PATTERN}
_RETENTION = {"type": "integer", "minimum": 1, "maximum": MAX_RETENTION_DAYS}
# What the service accepts in each named field, where that is narrower than the field's Python type (the service
# checks every request anyway; these make the document say so, and keep generated clients and fuzzers honest).
FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": STORE_NAME_SCHEMA,
    "description": {"type": "string", "maxLength": MAX_DESCRIPTION_LENGTH},
    "audit_retention_days": _RETENTION,
    "history_retention_days": _RETENTION,
    "scope": _SCOPE,
    "memory_id": _ID,
    "idempotency_key": _ID,
    "text": _TEXT,
    "query": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
    "messages": {"type": "array", "items": _MESSAGE, "minItems": 1, "maxItems": MAX_MESSAGES},
    "metadata": _METADATA,
    "filters": {
        "type": "object",
        "maxProperties": MAX_METADATA_KEYS,
        "propertyNames": {"pattern": KEY_PATTERN},
        "additionalProperties": {
            "oneOf": [_SCALAR, {"type": "array", "items": _SCALAR, "minItems": 1, "maxItems": MAX_FILTER_VALUES}]
        },
    },
    "memory_types": {"oneOf": [_MEMORY_TYPE, {"type": "array", "items": _MEMORY_TYPE, "minItems": 1}]},
    "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    "operation": {"type": "string", "enum": list(OPERATION_NAMES)},
    "timeout": {"type": "number", "minimum": 0},
    "cursor": {"type": "string", "description": "the next_cursor of the previous page"},
}
REQUIRED_WITH_DEFAULT = frozenset({"query"})  # a dataclass default only for field ordering: the service needs it
NULLABLE = frozenset(
    {"audit_retention_days", "history_retention_days", "idempotency_key", "text", "messages", "metadata", "filters",
     "memory_types", "operation", "timeout", "cursor"}
)  # fmt: skip
STORE_CHANGES = {
    "type": "object",
    "properties": {name: {"oneOf": [FIELD_SCHEMAS[name], {"type": "null"}]} for name in STORE_SETTINGS},
    "additionalProperties": False,
}


def _schema(kind: Any) -> dict[str, Any]:
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        options = [_schema(a) for a in args if a is not type(None)]
        if type(None) in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"oneOf": options}
    if kind is str:
        return {"type": "string"}
    if kind is bool:
        return {"type": "boolean"}
    if kind is int:
        return {"type": "integer"}
    if kind is float:
        return {"type": "number"}
    if kind is datetime:
        return _TIME
    if kind is Scope:
        return _SCOPE
    if origin is tuple and args and args[0] is MessageInput:
        return {"type": "array", "items": _MESSAGE}
    if origin is tuple:
        return {"oneOf": [{"type": "string"}, {"type": "array", "items": _schema(args[0])}]}
    if origin in (dict, Mapping, typing.Mapping):
        value = args[1] if len(args) == 2 else Any
        if get_origin(value) is tuple:  # metadata filters: one value or a list of them
            return {"type": "object", "additionalProperties": {"oneOf": [_SCALAR, {"type": "array", "items": _SCALAR}]}}
        return {"type": "object", "additionalProperties": _SCALAR if value is not Any else {}}
    return {}


def request_schema(op: type[Operation[Any]]) -> dict[str, Any]:
    """The JSON body ``op`` takes over HTTP (its fields, less the one the path carries)."""
    route = route_of(op)
    hints = typing.get_type_hints(op)
    if route.body_argument is not None:
        return STORE_CHANGES
    properties, required = {}, []
    for field in dataclasses.fields(op):
        if field.name == route.parameter:
            continue
        hint = hints[field.name]
        schema = FIELD_SCHEMAS.get(field.name) or _schema(hint)
        if field.name in NULLABLE:
            schema = {"oneOf": [schema, {"type": "null"}]}
        properties[field.name] = schema
        if field.name in REQUIRED_WITH_DEFAULT or (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        ):
            required.append(field.name)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema with its ``$defs`` references replaced by the definitions (the OpenAPI document has no
    ``$defs`` at its root for them to point to; the result models are not recursive)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def result_schema(op: type[Operation[Any]]) -> dict[str, Any]:
    """The JSON result of ``op``."""
    if op is Search:
        return {
            "type": "object",
            "properties": {
                "hits": _inlined(TypeAdapter(list[SearchHit]).json_schema()),
                "request_id": {"type": "string"},
                "usage": _inlined(TypeAdapter(Usage).json_schema()),
            },
        }
    return _inlined(op.RESULT.json_schema())


# ---------------------------------------------------------------- errors, authentication, the VikingDB route

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "the error class, e.g. InvalidArgumentError"},
        "message": {"type": "string"},
        "field": {"type": ["string", "null"], "description": "the offending field of the request, if one"},
        "request_id": {"type": "string", "description": "also the X-Request-Id header and the audit record's id"},
    },
    "required": ["code", "message", "field", "request_id"],
}
# Every status an operation may answer with besides 200 (see memory_plugin.errors for which class is which).
ERROR_STATUSES = {
    "400": "bad input (the field is named)",
    "401": "not authenticated: missing, unknown, revoked or wrong credentials, a stale date or a replay",
    "403": "the access key may not do this (another app or tenant, read-only, not an admin key)",
    "404": "no such memory store or memory",
    "409": "the store exists already, or was built with another embedder",
    "413": "the request body is over the server's cap",
    "429": "the access key is over its request rate: retry after the Retry-After header's seconds",
    "503": "the server could not finish in time or its storage, embedder or extractor failed: retry later",
}
SECURITY_SCHEMES: dict[str, Any] = {
    "signed": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "HMAC-SHA256 Credential=<key id>, SignedHeaders=..., Signature=... with X-MP-Date and "
        "X-MP-Nonce headers; the algorithm is in memory_plugin/signing.py",
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "Bearer <key id>.<secret> (use it over TLS)"},
}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def error_responses(schema: dict[str, Any] = ERROR_SCHEMA) -> dict[str, Any]:
    """The documented error answers, each with ``schema``."""
    responses: dict[str, Any] = {
        status: {"description": text, "content": _json_content(schema)} for status, text in ERROR_STATUSES.items()
    }
    responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return responses


def operation_responses(op: type[Operation[Any]]) -> dict[str, Any]:
    """What ``op``'s route answers: its result, or one of the errors."""
    return {"200": {"description": "the result", "content": _json_content(result_schema(op))}, **error_responses()}


_EXPRESSION = {"type": "string", "pattern": "=", "description": "key=value on metadata, e.g. kb_id=1"}
VIKING_REQUEST: dict[str, Any] = {
    "type": "object",
    "description": "VikingDB's memory search request (the seed's fields; collection_name and query are required here)",
    "properties": {
        "collection_name": FIELD_SCHEMAS["name"],
        "project_name": {"type": "string"},
        "query": FIELD_SCHEMAS["query"],
        "limit": {"type": "integer", "minimum": 1, "maximum": 5000},
        "filter": {
            "type": "object",
            "properties": {
                **{name: _SEGMENT for name in ("user_id", "assistant_id", "session_id", "group_id")},
                "primary_key": {"oneOf": [_EXPRESSION, {"type": "array", "items": _EXPRESSION, "minItems": 1}]},
                "memory_type": FIELD_SCHEMAS["memory_types"],
                "start_time": {"type": "integer", "minimum": 0},
                "end_time": {"type": "integer", "minimum": 0},
            },
            "required": ["memory_type"],
            "additionalProperties": False,
        },
    },
    "required": ["collection_name", "query", "filter"],
    "additionalProperties": False,
}
_VIKING_RESULT = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "score": {"type": "number"},
        "memory_type": {"type": "string"},
        "user_id": {"type": "array", "items": {"type": "string"}},
        "assistant_id": {"type": "array", "items": {"type": "string"}},
        "session_id": {"type": "string"},
        "group_id": {"type": ["string", "null"]},
        "time": {"type": "integer"},
        "status": {"type": "null"},
        "labels": {"type": "null"},
        "memory_info": {"type": "object"},
    },
    "required": ["id", "score", "memory_type", "user_id", "assistant_id", "session_id", "time", "memory_info"],
}
VIKING_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "const": 0},
        "message": {"type": "string"},
        "data": {
            "type": "object",
            "properties": {
                "collection_name": {"type": "string"},
                "count": {"type": "integer"},
                "result_list": {"type": "array", "items": _VIKING_RESULT},
                "token_usage": {"type": "integer"},
            },
            "required": ["collection_name", "count", "result_list", "token_usage"],
        },
        "request_id": {"type": "string"},
    },
    "required": ["code", "message", "data", "request_id"],
}
VIKING_ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "the HTTP status (VikingDB: 0 is success)"},
        "message": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "data": {"type": "null"},
        "request_id": {"type": ["string", "null"]},
    },
    "required": ["code", "message", "field", "request_id"],
}


def viking_openapi() -> dict[str, Any]:
    """The OpenAPI parts of ``POST /api/memory/search``: VikingDB's request, response and error shapes."""
    return {
        "requestBody": {"required": True, "content": _json_content(VIKING_REQUEST)},
        "responses": {
            "200": {"description": "VikingDB's response", "content": _json_content(VIKING_RESPONSE)},
            **error_responses(VIKING_ERROR),
        },
    }

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

from ..models import SearchHit, Usage
from ..ops import Operation, Search
from ..ops.http import route_of
from ..scope import Scope
from ..validation import MessageInput

_SCALAR: dict[str, Any] = {"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}]}
_SEGMENT = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_SCOPE = {
    "oneOf": [
        {"type": "string", "description": "app/tenant/agent/run; '*' and [a,b] allowed in reads"},
        {
            "type": "object",
            "properties": {"app_id": {"type": "string"}, **{s: _SEGMENT for s in ("tenant_id", "agent_id", "run_id")}},
            "required": ["app_id", "tenant_id", "agent_id", "run_id"],
        },
    ]
}
_TIME = {"oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}
_MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["user", "assistant", "system", "tool"]},
        "content": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "timestamp": {"oneOf": [_TIME, {"type": "null"}]},
        "metadata": {"oneOf": [{"type": "object", "additionalProperties": _SCALAR}, {"type": "null"}]},
    },
    "required": ["role", "content"],
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
        return _schema(hints[route.body_argument])
    properties, required = {}, []
    for field in dataclasses.fields(op):
        if field.name == route.parameter:
            continue
        properties[field.name] = _schema(hints[field.name])
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
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

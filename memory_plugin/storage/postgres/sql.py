"""Read filters as PostgreSQL ``WHERE`` clauses (``%s`` parameters)."""

from __future__ import annotations

import json
from typing import Any

from ...filters import ReadFilter
from ...scope import SEGMENTS, WILDCARD, Scope


def _in(column: str, values: tuple[Any, ...] | list[Any], params: list[Any]) -> str:
    if len(values) == 1:
        params.append(values[0])
        return f"{column} = %s"
    params.append(list(values))
    return f"{column} = ANY(%s)"


def scope_sql(scope: Scope, alias: str, params: list[Any]) -> list[str]:
    """Clauses restricting rows of ``alias`` to ``scope`` (``"*"`` adds none); their parameters go to ``params``."""
    clauses = []
    for segment in SEGMENTS:
        value = getattr(scope, segment)
        if value != WILDCARD:
            clauses.append(_in(f"{alias}.{segment}", [value] if isinstance(value, str) else list(value), params))
    return clauses


def memory_sql(read: ReadFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """A ``WHERE`` body and its parameters selecting the memories ``read`` allows. Metadata values compare as
    JSON: ``true`` is not ``1``, ``1`` is ``1.0``, as in the SQLite record."""
    params: list[Any] = [read.store_id]
    clauses = [f"{alias}.store_id = %s", *scope_sql(read.scope, alias, params)]
    if read.memory_types:
        clauses.append(_in(f"{alias}.memory_type", read.memory_types, params))
    for key, values in read.metadata.items():
        params.append(key)
        params.append([json.dumps(v) for v in values])
        clauses.append(f"{alias}.metadata -> %s::text = ANY(%s::jsonb[])")
    if read.start_time is not None:
        clauses.append(f"{alias}.event_time >= %s")
        params.append(read.start_time.timestamp())
    if read.end_time is not None:
        clauses.append(f"{alias}.event_time <= %s")
        params.append(read.end_time.timestamp())
    return " AND ".join(clauses), params

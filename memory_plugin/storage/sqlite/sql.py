"""Read filters as SQL for the record, and the full-text tokens that restrict keyword search to a scope."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from ...filters import ReadFilter
from ...models import MetadataValue
from ...scope import SEGMENTS, WILDCARD, Scope

# Values bound in one statement at most (``IN (...)`` lists), well under SQLite's limit on bound parameters.
CHUNK = 500
_T = TypeVar("_T")


def chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """``items`` in consecutive slices of at most :data:`CHUNK`."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _in(column: str, values: tuple[Any, ...] | list[Any]) -> str:
    return f"{column} = ?" if len(values) == 1 else f"{column} IN ({', '.join('?' * len(values))})"


def scope_sql(scope: Scope, alias: str) -> tuple[list[str], list[Any]]:
    """SQL clauses and parameters restricting rows of ``alias`` to ``scope`` (``"*"`` adds no clause)."""
    clauses: list[str] = []
    params: list[Any] = []
    for segment in SEGMENTS:
        value = getattr(scope, segment)
        if value == WILDCARD:
            continue
        values = [value] if isinstance(value, str) else list(value)
        clauses.append(_in(f"{alias}.{segment}", values))
        params.extend(values)
    return clauses, params


def _metadata_sql(alias: str, key: str, values: tuple[MetadataValue, ...]) -> tuple[str, list[Any]]:
    # JSON true/false come back from json_extract as 1/0; json_type keeps booleans apart from the numbers 1 and 0.
    path = f"'$.{key}'"  # key is a validated identifier
    parts: list[str] = []
    params: list[Any] = []
    for value in values:
        if isinstance(value, bool):
            parts.append(f"json_type({alias}.metadata, {path}) = ?")
            params.append("true" if value else "false")
        else:
            parts.append(
                f"(json_extract({alias}.metadata, {path}) = ?"
                f" AND json_type({alias}.metadata, {path}) NOT IN ('true', 'false'))"
            )
            params.append(value)
    return "(" + " OR ".join(parts) + ")", params


def memory_sql(read: ReadFilter, alias: str = "m") -> tuple[str, list[Any]]:
    """A ``WHERE`` body and its parameters selecting the memories ``read`` allows."""
    clauses: list[str] = [f"{alias}.store_id = ?"]
    params: list[Any] = [read.store_id]
    scope_clauses, scope_params = scope_sql(read.scope, alias)
    clauses += scope_clauses
    params += scope_params
    if read.memory_types:
        clauses.append(_in(f"{alias}.memory_type", read.memory_types))
        params.extend(read.memory_types)
    for key, values in read.metadata.items():
        clause, clause_params = _metadata_sql(alias, key, values)
        clauses.append(clause)
        params.extend(clause_params)
    if read.start_time is not None:
        clauses.append(f"{alias}.event_time >= ?")
        params.append(read.start_time.timestamp())
    if read.end_time is not None:
        clauses.append(f"{alias}.event_time <= ?")
        params.append(read.end_time.timestamp())
    return " AND ".join(clauses), params


def _scope_token(store_id: int, segment: str, app_id: str, value: str) -> str:
    """An alphanumeric full-text token standing for one scope segment value of one store and app (ids may hold
    any characters)."""
    key = f"{store_id}\x1f{segment}\x1f{app_id}\x1f{value}"
    return segment[0] + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


_RESTRICTING = ("tenant_id", "agent_id", "run_id")


def scope_tokens(store_id: int, scope: Scope) -> str:
    """What the full-text index stores for a memory's scope, so that keyword search over a narrow scope is
    restricted by the index itself instead of ranking the whole store and filtering afterwards."""
    return " ".join(_scope_token(store_id, seg, scope.app_id, str(getattr(scope, seg))) for seg in _RESTRICTING)


def scope_match(read: ReadFilter) -> str | None:
    """The full-text expression restricting the ``scope`` column to ``read.scope``, or ``None`` when tenant,
    agent and run are all ``"*"``: a token matching the whole store would only make the index read every entry
    (the SQL filter on store and app applies in any case)."""
    parts = []
    for segment in _RESTRICTING:
        value = getattr(read.scope, segment)
        if value == WILDCARD:
            continue
        values = [value] if isinstance(value, str) else list(value)
        tokens = " OR ".join(f'"{_scope_token(read.store_id, segment, read.scope.app_id, v)}"' for v in values)
        parts.append(f"scope : ({tokens})")
    return " AND ".join(parts) or None

"""How the record forgets: everything of one user on request (``delete_all``), and old audit records, history events
and idempotency keys by age (retention). Each function runs inside the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .errors import InvalidScopeError
from .filters import scope_sql
from .scope import WILDCARD, Scope

DAY_SECONDS = 86_400
# Idempotency keys of add() are remembered this long: a retry within a week is never applied twice.
IDEMPOTENCY_KEY_DAYS = 7
# Rows deleted per statement when pruning, so one prune never holds the write lock for long.
PRUNE_BATCH = 5_000
_CHUNK = 500


def require_one_tenant(scope: Scope) -> Scope:
    """The scope of ``delete_all``: one concrete tenant (``agent_id`` / ``run_id`` may be ``*`` or id lists), so one
    call can never erase several users."""
    if not isinstance(scope.tenant_id, str) or scope.tenant_id == WILDCARD:
        raise InvalidScopeError(
            "scope.tenant_id", "delete_all needs one concrete tenant id; '*' and id lists are refused there"
        )
    return scope


def _where(table: str, store_id: int, scope: Scope) -> tuple[str, list[Any]]:
    clauses, params = scope_sql(scope, table)
    return " AND ".join([f"{table}.store_id = ?", *clauses]), [store_id, *params]


def forget_scope(conn: sqlite3.Connection, store_id: int, scope: Scope) -> dict[str, int]:
    """Erase every memory (with its full-text entry, history and vector-index entry), raw message, extraction job
    and idempotency key of ``scope`` in one store. Returns how many memories, history events, messages and jobs."""
    where, params = _where("memories", store_id, scope)
    doomed = conn.execute(f"SELECT seq, id FROM memories WHERE {where}", params).fetchall()
    for start in range(0, len(doomed), _CHUNK):
        chunk = doomed[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        conn.execute(f"DELETE FROM memories_fts WHERE rowid IN ({marks})", [row[0] for row in chunk])
        conn.execute(f"DELETE FROM memories WHERE seq IN ({marks})", [row[0] for row in chunk])
    # The vector index learns of the deletions through its change log, in this same transaction.
    conn.executemany("INSERT INTO index_log (store_id, memory_id) VALUES (?, ?)", [(store_id, r[1]) for r in doomed])
    counts = {"memories": len(doomed)}
    for table, name in (("history", "history"), ("messages", "messages"), ("jobs", "jobs"), ("idempotency", None)):
        where, params = _where(table, store_id, scope)
        deleted = conn.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount
        if name is not None:
            counts[name] = deleted
    return counts


def prune_expired(
    conn: sqlite3.Connection, store_id: int, audit_days: int | None, history_days: int | None, now: float
) -> dict[str, int]:
    """Delete up to :data:`PRUNE_BATCH` rows of each kind that are past their retention; call again until nothing
    is deleted. Returns how many audit records, history events and idempotency keys went."""
    rules = (
        ("requests", "requests", "time", audit_days),
        ("history", "history", "time", history_days),
        ("idempotency_keys", "idempotency", "created_at", IDEMPOTENCY_KEY_DAYS),
    )
    counts: dict[str, int] = {}
    for name, table, column, days in rules:
        if days is None:
            counts[name] = 0
            continue
        counts[name] = conn.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE store_id = ? AND {column} < ?"
            " LIMIT ?)",
            (store_id, now - days * DAY_SECONDS, PRUNE_BATCH),
        ).rowcount
    return counts

"""Row-level changes to memories, each with its full-text entry, its history event and its vector-index log entry.

Called inside one record transaction; nothing here commits.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime

import numpy as np

from .filters import scope_tokens
from .models import Memory, Metadata
from .retrieval import index_text
from .scope import Scope
from .storage.record import dumps, embedding_blob, now, row_memory


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _log_change(conn: sqlite3.Connection, store_id: int, memory_id: str) -> None:
    conn.execute("INSERT INTO index_log (store_id, memory_id) VALUES (?, ?)", (store_id, memory_id))


def _history(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    event: str,
    request_id: str,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
    source_message_ids: list[str] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO history (store_id, memory_id, app_id, tenant_id, agent_id, run_id, event, old_text, new_text,"
        " old_metadata, new_metadata, time, request_id, source_message_ids)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row["store_id"],
            row["id"],
            row["app_id"],
            row["tenant_id"],
            row["agent_id"],
            row["run_id"],
            event,
            old[0],
            new[0],
            old[1],
            new[1],
            now(),
            request_id,
            dumps(source_message_ids or []),
        ),
    )


def _fetch(conn: sqlite3.Connection, seq: int) -> sqlite3.Row:
    row: sqlite3.Row = conn.execute("SELECT * FROM memories WHERE seq = ?", (seq,)).fetchone()
    return row


def insert_memory(
    conn: sqlite3.Connection,
    store_id: int,
    scope: Scope,
    *,
    text: str,
    memory_type: str,
    metadata: Metadata,
    event_time: datetime,
    source_message_ids: list[str],
    embedding: np.ndarray,
    request_id: str,
    speaker: str | None = None,
    context: str = "",
) -> Memory:
    """Store a new memory; returns it as read back. ``embedding`` is of :func:`embedding_text`."""
    stamp = now()
    cursor = conn.execute(
        "INSERT INTO memories (id, store_id, app_id, tenant_id, agent_id, run_id, memory_type, text, speaker,"
        " context, metadata, source_message_ids, event_time, created_at, updated_at, embedding)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id("mem"),
            store_id,
            scope.app_id,
            scope.tenant_id,
            scope.agent_id,
            scope.run_id,
            memory_type,
            text,
            speaker,
            context,
            dumps(metadata),
            dumps(source_message_ids),
            event_time.timestamp(),
            stamp,
            stamp,
            embedding_blob(embedding),
        ),
    )
    seq = int(cursor.lastrowid or 0)
    conn.execute(
        "INSERT INTO memories_fts (rowid, terms, scope) VALUES (?, ?, ?)",
        (seq, index_text(text, speaker, context), scope_tokens(store_id, scope)),
    )
    row = _fetch(conn, seq)
    _log_change(conn, store_id, row["id"])
    _history(conn, row, "created", request_id, (None, None), (text, row["metadata"]), source_message_ids)
    return row_memory(row)


def update_memory(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    *,
    text: str | None,
    metadata: Metadata | None,
    event_time: datetime | None,
    embedding: np.ndarray | None,
    request_id: str,
    source_message_ids: list[str] | None = None,
) -> Memory:
    """Change a memory in place (same id). ``None`` keeps a field; new text comes with its new embedding (of
    :func:`embedding_text` with the memory's speaker)."""
    new_text = row["text"] if text is None else text
    new_metadata = row["metadata"] if metadata is None else dumps(metadata)
    conn.execute(
        "UPDATE memories SET text = ?, metadata = ?, event_time = ?, updated_at = ?, embedding = ? WHERE seq = ?",
        (
            new_text,
            new_metadata,
            row["event_time"] if event_time is None else event_time.timestamp(),
            now(),
            row["embedding"] if embedding is None else embedding_blob(embedding),
            row["seq"],
        ),
    )
    if text is not None:
        terms = index_text(new_text, row["speaker"], row["context"])
        conn.execute("UPDATE memories_fts SET terms = ? WHERE rowid = ?", (terms, row["seq"]))
    _log_change(conn, row["store_id"], row["id"])
    _history(
        conn, row, "updated", request_id, (row["text"], row["metadata"]), (new_text, new_metadata), source_message_ids
    )
    return row_memory(_fetch(conn, row["seq"]))


def note_unchanged(
    conn: sqlite3.Connection, row: sqlite3.Row, request_id: str, source_message_ids: list[str] | None = None
) -> None:
    """Record in a memory's history that new messages were judged to add nothing to it (a NOOP decision)."""
    kept = (row["text"], row["metadata"])
    _history(conn, row, "unchanged", request_id, kept, kept, source_message_ids)


def delete_memory(
    conn: sqlite3.Connection, row: sqlite3.Row, request_id: str, source_message_ids: list[str] | None = None
) -> None:
    """Remove a memory; its history stays."""
    conn.execute("DELETE FROM memories WHERE seq = ?", (row["seq"],))
    conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (row["seq"],))
    _log_change(conn, row["store_id"], row["id"])
    _history(conn, row, "deleted", request_id, (row["text"], row["metadata"]), (None, None), source_message_ids)

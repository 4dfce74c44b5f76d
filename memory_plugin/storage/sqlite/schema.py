"""The record's schema and its migrations.

A new record is created at version 1 and migrated step by step, exactly as an old record is, so a fresh folder and
an upgraded one always have the same schema. A record written by a newer memory-plugin is refused with a clear
error instead of being misread. Each migration runs in one transaction with its version bump.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ...errors import StorageError
from . import keywords

# How an audit record stores a read-scope segment that is a list of ids: this mark (a control character, which no
# id may contain) and the ids as a JSON list. A concrete id or ``*`` is stored as is, so no id can be mistaken for
# a list.
LIST_MARK = "\x1e"

_VERSION_1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stores (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL,
    embedder TEXT NOT NULL, dimension INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id INTEGER NOT NULL,
    app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,
    memory_type TEXT NOT NULL, text TEXT NOT NULL, speaker TEXT, context TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL, source_message_ids TEXT NOT NULL,
    event_time REAL NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS memories_scope ON memories (store_id, app_id, tenant_id, agent_id, run_id);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    terms, scope, tokenize = 'porter unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id INTEGER NOT NULL,
    app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, name TEXT, timestamp REAL NOT NULL, metadata TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_scope ON messages (store_id, app_id, tenant_id, agent_id, run_id, seq);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, store_id INTEGER NOT NULL, memory_id TEXT NOT NULL,
    app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL, event TEXT NOT NULL,
    old_text TEXT, new_text TEXT, old_metadata TEXT, new_metadata TEXT, time REAL NOT NULL, request_id TEXT NOT NULL,
    source_message_ids TEXT NOT NULL DEFAULT '[]');
CREATE INDEX IF NOT EXISTS history_memory ON history (memory_id, seq);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, store_id INTEGER NOT NULL,
    operation TEXT NOT NULL, app_id TEXT, tenant_id TEXT, agent_id TEXT, run_id TEXT, outcome TEXT NOT NULL,
    error TEXT, latency_ms REAL NOT NULL, time REAL NOT NULL, counts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS requests_store ON requests (store_id, app_id, seq);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, store_id INTEGER NOT NULL, app_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL, payload TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before REAL NOT NULL DEFAULT 0, error TEXT,
    request_id TEXT NOT NULL, created_at REAL NOT NULL, raw_output TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, store_id, seq);
CREATE TABLE IF NOT EXISTS index_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, store_id INTEGER NOT NULL, memory_id TEXT NOT NULL);
"""


def _to_version_2(conn: sqlite3.Connection) -> None:
    """Unambiguous audit scopes, idempotency keys of ``add``, retention settings and the indexes pruning uses."""
    for segment in ("tenant_id", "agent_id", "run_id"):
        # Version 1 stored an id list as bare JSON text, which a tenant named '["a","b"]' could not be told from.
        conn.execute(
            f"UPDATE requests SET {segment} = ? || {segment} WHERE {segment} LIKE '[%'"
            f" AND json_valid({segment}) AND json_type({segment}) = 'array'",
            (LIST_MARK,),
        )
    _run(
        conn,
        """
        ALTER TABLE stores ADD COLUMN audit_retention_days INTEGER;
        ALTER TABLE stores ADD COLUMN history_retention_days INTEGER;
        CREATE TABLE idempotency (
            store_id INTEGER NOT NULL, app_id TEXT NOT NULL, tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL,
            run_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, result TEXT NOT NULL,
            created_at REAL NOT NULL, PRIMARY KEY (store_id, app_id, tenant_id, key));
        CREATE INDEX idempotency_time ON idempotency (store_id, created_at);
        CREATE INDEX requests_time ON requests (store_id, time);
        CREATE INDEX history_time ON history (store_id, time);
        CREATE INDEX history_scope ON history (store_id, app_id, tenant_id, agent_id, run_id);
        CREATE INDEX jobs_scope ON jobs (store_id, app_id, tenant_id, agent_id, run_id);
        """,
    )


def _to_version_3(conn: sqlite3.Connection) -> None:
    """The audit records which access key made each call through a memory server."""
    _run(conn, "ALTER TABLE requests ADD COLUMN key_id TEXT")


def _to_version_4(conn: sqlite3.Connection) -> None:
    """What the record keeps beside the full-text index so that a search neither counts terms nor tokenizes its
    candidates (see ``keywords``), computed once here from every entry of the index."""
    _run(
        conn,
        """
        CREATE TABLE keyword_terms (term TEXT PRIMARY KEY, documents INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE keyword_rows (seq INTEGER PRIMARY KEY, terms TEXT NOT NULL, length INTEGER NOT NULL);
        """,
    )
    entries = conn.execute("SELECT id, c0, c1 FROM memories_fts_content ORDER BY id")
    while batch := entries.fetchmany(500):
        keywords.keep(conn, [(int(position), str(terms), str(scope)) for position, terms, scope in batch])


# MIGRATIONS[n] takes a record from version n + 1 to version n + 2.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_to_version_2, _to_version_3, _to_version_4)
SCHEMA_VERSION = len(MIGRATIONS) + 1


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Run DDL statement by statement: ``executescript`` would commit the migration's open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _version(conn: sqlite3.Connection) -> int | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError):
        return 0


def prepare_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema of a new record, or migrate an older one to :data:`SCHEMA_VERSION`.

    Raises:
        StorageError: the record was written by a newer memory-plugin, or is not one of ours.
    """
    version = _version(conn)
    if version is None:
        _in_transaction(conn, lambda: _create(conn))
        version = 1
    if not 1 <= version <= SCHEMA_VERSION:
        raise StorageError(
            f"the record {path} has schema version {version}, this memory-plugin reads versions up to "
            f"{SCHEMA_VERSION}; open it with a newer memory-plugin, or use a new data folder"
        )
    for step in range(version, SCHEMA_VERSION):
        _in_transaction(conn, partial(_migrate, conn, step))


def _create(conn: sqlite3.Connection) -> None:
    _run(conn, _VERSION_1)
    conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    MIGRATIONS[version - 1](conn)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))


def _in_transaction(conn: sqlite3.Connection, work: Callable[[], None]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise

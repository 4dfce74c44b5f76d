"""The PostgreSQL record's schema and its migrations (the same scheme as the SQLite record's).

A new database is created at version 1 and migrated step by step, so a fresh database and an upgraded one always
have the same schema. Every memory server on the database runs :func:`prepare_schema` when it starts: the first
takes an advisory lock and migrates, the others wait for it and find the work done. A database written by a newer
memory-plugin is refused with a clear error instead of being misread.

Times are Unix seconds (``float8``) as in the SQLite record; metadata is ``jsonb``; embeddings are the float32
bytes of the vector (``bytea``), so the vector index can always be rebuilt from the record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from ...errors import StorageError

MIGRATION_LOCK = 0x4D50_0000  # pg_advisory_xact_lock key: one migrating process at a time

_VERSION_1 = """
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE stores (
    id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, description text NOT NULL, embedder text NOT NULL,
    dimension integer NOT NULL, created_at float8 NOT NULL, audit_retention_days integer,
    history_retention_days integer, index_generation bigint NOT NULL DEFAULT 0);
CREATE TABLE memories (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, store_id bigint NOT NULL REFERENCES stores (id),
    app_id text NOT NULL, tenant_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,
    memory_type text NOT NULL, text text NOT NULL, speaker text, context text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL, source_message_ids jsonb NOT NULL, event_time float8 NOT NULL,
    created_at float8 NOT NULL, updated_at float8 NOT NULL, embedding bytea NOT NULL,
    terms text[] NOT NULL, term_counts integer[] NOT NULL, length integer NOT NULL);
CREATE INDEX memories_scope ON memories (store_id, app_id, tenant_id, agent_id, run_id, seq);
CREATE INDEX memories_terms ON memories USING gin (terms);
CREATE TABLE keyword_totals (shard integer PRIMARY KEY, documents bigint NOT NULL, tokens bigint NOT NULL);
CREATE TABLE keyword_terms (
    term text NOT NULL, shard integer NOT NULL, documents bigint NOT NULL, PRIMARY KEY (term, shard));
CREATE TABLE messages (
    seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, store_id bigint NOT NULL REFERENCES stores (id),
    app_id text NOT NULL, tenant_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,
    role text NOT NULL, content text NOT NULL, name text, timestamp float8 NOT NULL, metadata jsonb NOT NULL);
CREATE INDEX messages_scope ON messages (store_id, app_id, tenant_id, agent_id, run_id, seq);
CREATE TABLE history (
    seq bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES stores (id), memory_id text NOT NULL,
    app_id text NOT NULL, tenant_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,
    event text NOT NULL, old_text text, new_text text, old_metadata jsonb, new_metadata jsonb,
    time float8 NOT NULL, request_id text NOT NULL, source_message_ids jsonb NOT NULL DEFAULT '[]');
CREATE INDEX history_memory ON history (memory_id, seq);
CREATE INDEX history_time ON history (store_id, time);
CREATE INDEX history_scope ON history (store_id, app_id, tenant_id, agent_id, run_id);
CREATE TABLE requests (
    seq bigserial PRIMARY KEY, request_id text NOT NULL, store_id bigint NOT NULL REFERENCES stores (id),
    operation text NOT NULL, app_id text, tenant_id text, agent_id text, run_id text, outcome text NOT NULL,
    error text, latency_ms float8 NOT NULL, time float8 NOT NULL, counts jsonb NOT NULL, key_id text);
CREATE INDEX requests_store ON requests (store_id, app_id, seq);
CREATE INDEX requests_time ON requests (store_id, time);
CREATE TABLE jobs (
    seq bigserial PRIMARY KEY, store_id bigint NOT NULL REFERENCES stores (id), app_id text NOT NULL,
    tenant_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL, payload jsonb NOT NULL,
    state text NOT NULL, attempts integer NOT NULL DEFAULT 0, not_before float8 NOT NULL DEFAULT 0, error text,
    request_id text NOT NULL, created_at float8 NOT NULL, raw_output text,
    lease bigint NOT NULL DEFAULT 0, lease_owner text, lease_until float8);
CREATE INDEX jobs_state ON jobs (state, store_id, seq);
CREATE INDEX jobs_scope ON jobs (store_id, app_id, tenant_id, agent_id, run_id);
CREATE UNIQUE INDEX jobs_one_running ON jobs (store_id, app_id, tenant_id) WHERE state = 'running';
CREATE TABLE idempotency (
    store_id bigint NOT NULL REFERENCES stores (id), app_id text NOT NULL, tenant_id text NOT NULL,
    agent_id text NOT NULL, run_id text NOT NULL, key text NOT NULL, fingerprint text NOT NULL,
    result text NOT NULL, created_at float8 NOT NULL, PRIMARY KEY (store_id, app_id, tenant_id, key));
CREATE INDEX idempotency_time ON idempotency (store_id, created_at);
CREATE TABLE index_log (id bigserial PRIMARY KEY, store_id bigint NOT NULL, memory_id text NOT NULL);
CREATE INDEX index_log_store ON index_log (store_id, id);
CREATE TABLE index_dropped (store_id bigint PRIMARY KEY, generation bigint NOT NULL);
CREATE TABLE access_keys (
    key_id text PRIMARY KEY, secret text NOT NULL, app_id text NOT NULL, tenant_ids text, read_only boolean NOT NULL,
    admin boolean NOT NULL, created_at float8 NOT NULL, revoked_at float8);
"""

# MIGRATIONS[n] takes a database from version n + 1 to version n + 2.
MIGRATIONS: tuple[Callable[[psycopg.Connection[dict[str, Any]]], None], ...] = ()
SCHEMA_VERSION = len(MIGRATIONS) + 1


def _exists(conn: psycopg.Connection[dict[str, Any]], table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (table,)).fetchone()
    return bool(row and row["found"])


def _version(conn: psycopg.Connection[dict[str, Any]]) -> int | None:
    if not _exists(conn, "meta"):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row["value"]) if row else 0
    except ValueError:
        return 0


def prepare_schema(conn: psycopg.Connection[dict[str, Any]], where: str) -> None:
    """Create the schema in a new database, or migrate an older one to :data:`SCHEMA_VERSION` (``conn`` is in
    autocommit mode; each step is one transaction).

    Raises:
        StorageError: the database was written by a newer memory-plugin, or holds tables that are not ours.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        version = _version(conn)
        if version is None:
            if _exists(conn, "memories"):
                raise StorageError(f"the database {where} holds a 'memories' table that is not memory-plugin's")
            conn.execute(_VERSION_1)  # a constant: without parameters psycopg runs the statements in turn
            conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
            version = 1
        if not 1 <= version <= SCHEMA_VERSION:
            raise StorageError(
                f"the database {where} has schema version {version}, this memory-plugin reads versions up to "
                f"{SCHEMA_VERSION}; upgrade memory-plugin on every server, or use a new database"
            )
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step - 1](conn)
            conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", (str(step + 1),))

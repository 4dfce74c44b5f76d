"""The system of record: one SQLite database (WAL, full sync) holding stores, memories with their embeddings,
the full-text index, raw messages, history, the request audit, background jobs and the vector-index change log.

Every operation runs in one transaction (:meth:`Record.transaction`): an error leaves nothing half-written, and a
committed transaction survives a crash of the process or the machine.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClientClosedError, StorageError
from ..models import ExtractionJob, HistoryEvent, Memory, MemoryStoreInfo, Message, Metadata, RequestRecord
from ..scope import Scope

SCHEMA_VERSION = 1

_SCHEMA = """
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


def now() -> float:
    return datetime.now(timezone.utc).timestamp()


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def segment_text(value: str | tuple[str, ...]) -> str:
    """How an audit record stores a read-scope segment: the id, ``*``, or a JSON list of ids."""
    return value if isinstance(value, str) else dumps(list(value))


def _segment_value(text: str) -> str | list[str]:
    return json.loads(text) if text.startswith("[") else text


class Record:
    """The SQLite database of one data folder. Thread-safe.

    Writes go through one connection under one lock (:meth:`transaction`). Reads (:meth:`reading`) use a connection
    of their own thread, so that under WAL they run beside the writer and beside each other: a long search never
    holds up another tenant's call. Each ``reading()`` block is one read transaction: it sees one snapshot.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._conn = self._connect()
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._create_or_check_schema(path)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open the record {path}: {e}") from e
        self.lock = threading.RLock()
        self._depth = 0
        self._writer: int | None = None  # the thread inside the write transaction
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=5.0)
        conn.row_factory = sqlite3.Row
        return conn

    def _create_or_check_schema(self, path: Path) -> None:
        exists = self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
        if not exists:
            self._conn.executescript(_SCHEMA)
            self._conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            return
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        found = row[0] if row else "none"
        if found != str(SCHEMA_VERSION):
            raise StorageError(
                f"the record {path} has schema version {found}, this memory-plugin reads version {SCHEMA_VERSION}; "
                "open it with the version that wrote it, or use a new data folder"
            )

    def close(self) -> None:
        with self.lock, self._readers_lock:
            self._closed = True
            for conn in (self._conn, *self._readers.values()):
                conn.close()
            self._readers.clear()

    def abandon_after_fork(self) -> list[sqlite3.Connection]:
        """In a forked child: refuse every use, and return the inherited connections, which the caller must keep
        and never close (closing the last connection of a WAL database checkpoints it and deletes the WAL the parent
        is writing). Takes no lock: one may have been held by a thread that does not exist in the child."""
        self._closed = True
        return [self._conn, *self._readers.values()]

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the record is closed; create a new MemoryClient")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        with self.lock:
            if self._depth:  # nested: part of the outer transaction
                yield self._conn
                return
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StorageError(f"cannot write the record: {e}") from e
            self._depth += 1
            self._writer = threading.get_ident()
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as e:
                # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): a second ROLLBACK would
                # raise "no transaction is active" and hide the real error.
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StorageError(f"cannot write the record: {e}") from e
                raise
            finally:
                self._depth -= 1
                self._writer = None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction on this thread's connection: a consistent snapshot, without blocking writers or
        other readers. Inside this thread's write transaction it reads that transaction (its own writes)."""
        if self._writer == threading.get_ident():
            with self.lock, _read_errors():
                yield self._conn
            return
        self._check_open()
        conn = self._reader()
        outermost = not conn.in_transaction
        with _read_errors():
            if outermost:
                conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if outermost and conn.in_transaction:
                    conn.execute("COMMIT")  # ends the read snapshot; a read transaction has nothing to write

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._readers_lock:
            self._check_open()
            for thread in [t for t in self._readers if not t.is_alive()]:  # threads come and go (asyncio's pool)
                self._readers.pop(thread).close()
            try:
                conn = self._connect()
            except sqlite3.Error as e:
                raise StorageError(f"cannot read the record: {e}") from e
            self._readers[threading.current_thread()] = conn
        self._local.conn = conn
        return conn

    def get_meta(self, key: str) -> str | None:
        with self.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


@contextmanager
def _read_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"cannot read the record: {e}") from e


def embedding_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def embedding_matrix(blobs: list[bytes], dimension: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)


def row_scope(row: sqlite3.Row) -> Scope:
    return Scope(app_id=row["app_id"], tenant_id=row["tenant_id"], agent_id=row["agent_id"], run_id=row["run_id"])


def row_memory(row: sqlite3.Row) -> Memory:
    return Memory(
        id=row["id"],
        text=row["text"],
        scope=row_scope(row),
        memory_type=row["memory_type"],
        speaker=row["speaker"],
        metadata=json.loads(row["metadata"]),
        created_at=to_datetime(row["created_at"]),
        updated_at=to_datetime(row["updated_at"]),
        event_time=to_datetime(row["event_time"]),
        source_message_ids=json.loads(row["source_message_ids"]),
    )


def row_message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        scope=row_scope(row),
        role=row["role"],
        content=row["content"],
        name=row["name"],
        timestamp=to_datetime(row["timestamp"]),
        metadata=json.loads(row["metadata"]),
    )


def _optional_metadata(text: str | None) -> Metadata | None:
    return None if text is None else json.loads(text)


def row_history(row: sqlite3.Row) -> HistoryEvent:
    return HistoryEvent(
        memory_id=row["memory_id"],
        event=row["event"],
        old_text=row["old_text"],
        new_text=row["new_text"],
        old_metadata=_optional_metadata(row["old_metadata"]),
        new_metadata=_optional_metadata(row["new_metadata"]),
        time=to_datetime(row["time"]),
        request_id=row["request_id"],
        source_message_ids=json.loads(row["source_message_ids"]),
    )


def row_request(row: sqlite3.Row) -> RequestRecord:
    scope = None
    if row["app_id"] is not None:
        scope = Scope(
            app_id=row["app_id"],
            tenant_id=_segment_value(row["tenant_id"]),  # type: ignore[arg-type]
            agent_id=_segment_value(row["agent_id"]),  # type: ignore[arg-type]
            run_id=_segment_value(row["run_id"]),  # type: ignore[arg-type]
        )
    return RequestRecord(
        request_id=row["request_id"],
        operation=row["operation"],
        scope=scope,
        outcome=row["outcome"],
        error=row["error"],
        latency_ms=row["latency_ms"],
        time=to_datetime(row["time"]),
        counts=json.loads(row["counts"]),
    )


def row_store(row: sqlite3.Row) -> MemoryStoreInfo:
    return MemoryStoreInfo(
        name=row["name"],
        description=row["description"],
        embedder=row["embedder"],
        dimension=row["dimension"],
        created_at=to_datetime(row["created_at"]),
    )


def row_job(row: sqlite3.Row) -> ExtractionJob:
    return ExtractionJob(
        job_id=row["seq"],
        scope=row_scope(row),
        state=row["state"],
        attempts=row["attempts"],
        error=row["error"],
        raw_output=row["raw_output"],
        message_ids=json.loads(row["payload"])["message_ids"],
        request_id=row["request_id"],
        created_at=to_datetime(row["created_at"]),
    )

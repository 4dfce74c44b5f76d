"""The system of record: one SQLite database (WAL, full sync) holding stores, memories with their embeddings,
the full-text index, raw messages, history, the request audit, background jobs and the vector-index change log.

Every operation runs in one transaction (:meth:`Record.transaction`): an error leaves nothing half-written, and a
committed transaction survives a crash of the process or the machine.
"""

from __future__ import annotations

import contextlib
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
from .schema import LIST_MARK, prepare_schema


def now() -> float:
    return datetime.now(timezone.utc).timestamp()


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def segment_text(value: str | tuple[str, ...]) -> str:
    """How an audit record stores a read-scope segment: the id, ``*``, or :data:`LIST_MARK` and a JSON list."""
    return value if isinstance(value, str) else LIST_MARK + dumps(list(value))


def _segment_value(text: str) -> str | list[str]:
    if text.startswith(LIST_MARK):
        ids: list[str] = json.loads(text[len(LIST_MARK) :])
        return ids
    return text


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
            # Deleted content is overwritten, not left in free pages: delete_all() must really forget.
            self._conn.execute("PRAGMA secure_delete = ON")
            prepare_schema(self._conn, path)
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

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and truncate it (best effort: busy readers win)."""
        # A checkpoint is housekeeping: the data is committed either way.
        with self.lock, contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
        audit_retention_days=row["audit_retention_days"],
        history_retention_days=row["history_retention_days"],
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

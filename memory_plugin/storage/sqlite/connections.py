"""The connections to one SQLite database (WAL, full sync): one writer under a lock, and one reader per thread.

Every write runs in one transaction (:meth:`Connections.transaction`): an error leaves nothing half-written, and a
committed transaction survives a crash of the process or the machine.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...errors import ClientClosedError, StorageError
from .schema import prepare_schema

READ_FAILURE = "cannot read the record"


class Connections:
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
            with committed(self._conn, "cannot write the record"):
                self._depth += 1
                self._writer = threading.get_ident()
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                    self._writer = None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction on this thread's connection: a consistent snapshot, without blocking writers or
        other readers. Inside this thread's write transaction it reads that transaction (its own writes)."""
        if self._writer == threading.get_ident():
            with self.lock, storage_errors(READ_FAILURE):
                yield self._conn
            return
        self._check_open()
        conn = self._reader()
        outermost = not conn.in_transaction
        with storage_errors(READ_FAILURE):
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
            with storage_errors(READ_FAILURE):
                conn = self._connect()
            self._readers[threading.current_thread()] = conn
        self._local.conn = conn
        return conn

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database file and truncate it (best effort: busy readers win)."""
        # A checkpoint is housekeeping: the data is committed either way.
        with self.lock, contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def storage_errors(failure: str) -> Iterator[None]:
    """A SQLite error inside becomes a :class:`StorageError` saying ``failure`` and why."""
    try:
        yield
    except sqlite3.Error as e:
        raise StorageError(f"{failure}: {e}") from e


@contextmanager
def committed(conn: sqlite3.Connection, failure: str) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn`` (``BEGIN IMMEDIATE``): everything inside commits together or not at all;
    a SQLite error becomes a :class:`StorageError` saying ``failure`` and why."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException as e:
        # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): a second ROLLBACK would raise
        # "no transaction is active" and hide the real error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.Error):
            raise StorageError(f"{failure}: {e}") from e
        raise

"""The PostgreSQL system of record of a scaled-out deployment: several memory servers share one database holding
stores, memories with their embeddings and keyword terms, raw messages, history, the request audit, background
jobs, idempotency keys, access keys and the vector-index change log. Needs ``memory-plugin[postgres]``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .connections import Database
from .queue import PostgresJobQueue
from .reader import PostgresReader
from .writer import PostgresWriter

__all__ = ["PostgresJobQueue", "PostgresReader", "PostgresRecord", "PostgresWriter"]


class PostgresRecord:
    """:class:`~memory_plugin.storage.base.RecordStore` over one PostgreSQL database. Thread-safe: each read or
    write block is a transaction on a pooled connection of its own; a read inside this thread's write block reads
    that transaction (its own writes), as on SQLite.

    Args:
        dsn: ``postgresql://user@host:port/dbname`` (any libpq connection string).

    Raises:
        StorageError: the database cannot be reached or its schema is newer than this memory-plugin's.
    """

    def __init__(self, dsn: str, max_connections: int = 8) -> None:
        self.database = Database(dsn, max_connections=max_connections)
        self._local = threading.local()

    @property
    def where(self) -> str:
        """The database, as messages name it (no password)."""
        return self.database.where

    def _current(self) -> PostgresWriter | None:
        writer: PostgresWriter | None = getattr(self._local, "writer", None)
        return writer

    @contextmanager
    def read(self) -> Iterator[PostgresReader]:
        writer = self._current()
        if writer is not None:
            yield writer
            return
        with self.database.transaction(read_only=True) as conn:
            yield PostgresReader(conn)

    @contextmanager
    def write(self) -> Iterator[PostgresWriter]:
        writer = self._current()
        if writer is not None:  # nested: part of the outer transaction
            yield writer
            return
        with self.database.transaction(read_only=False) as conn:
            writer = PostgresWriter(conn)
            self._local.writer = writer
            try:
                yield writer
                writer.before_commit()
            finally:
                self._local.writer = None

    def get_meta(self, key: str) -> str | None:
        with self.read() as reader:
            return reader.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as writer:
            writer.set_meta(key, value)

    def catch_up(self) -> None:
        """Nothing held in memory to bring up to date: every read asks the database."""

    def checkpoint(self) -> None:
        """Nothing to fold: PostgreSQL's own checkpoints and vacuum reclaim deleted rows."""

    def close(self) -> None:
        self.database.close()

    def abandon_after_fork(self) -> list[Any]:
        return self.database.abandon_after_fork()

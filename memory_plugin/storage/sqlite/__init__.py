"""The SQLite system of record of an embedded deployment: one database file in the data folder (WAL, full sync)
holding stores, memories with their embeddings, the full-text index, raw messages, history, the request audit,
background jobs, idempotency keys and the vector-index change log."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..matrix_budget import DEFAULT_MAX_MEMORIES
from ..vector_matrix import SHORTLIST_ABOVE
from .connections import Connections
from .matrix_feed import MatrixFeed
from .queue import SqliteJobQueue
from .reader import SqliteReader
from .writer import SqliteWriter

__all__ = ["SqliteJobQueue", "SqliteRecord"]


class SqliteRecord:
    """:class:`~memory_plugin.storage.base.RecordStore` over one SQLite file. Thread-safe: writes are serialised on
    one connection; each thread reads on a connection of its own, beside the writer (see :class:`Connections`).

    Exact vector scans of stores that fit in ``vector_memory_limit`` memories (all stores together) are answered from
    an in-memory matrix kept in step with the record (:class:`MatrixFeed`); ``0`` keeps none in memory."""

    def __init__(
        self, path: Path, vector_memory_limit: int = DEFAULT_MAX_MEMORIES, shortlist_above: int = SHORTLIST_ABOVE
    ) -> None:
        self.connections = Connections(path)
        self.feed = None
        if vector_memory_limit:
            self.feed = MatrixFeed(self.connections, vector_memory_limit, shortlist_above=shortlist_above)

    @contextmanager
    def read(self) -> Iterator[SqliteReader]:
        with self.connections.reading() as conn:
            yield SqliteReader(conn, self.feed)

    @contextmanager
    def write(self) -> Iterator[SqliteWriter]:
        with self.connections.transaction() as conn:
            yield SqliteWriter(conn, self.feed)

    def catch_up(self) -> None:
        if self.feed is not None:
            self.feed.catch_up()

    def get_meta(self, key: str) -> str | None:
        with self.read() as reader:
            return reader.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as writer:
            writer.set_meta(key, value)

    def checkpoint(self) -> None:
        self.connections.checkpoint()

    def close(self) -> None:
        self.connections.close()

    def abandon_after_fork(self) -> list[Any]:
        return list(self.connections.abandon_after_fork())

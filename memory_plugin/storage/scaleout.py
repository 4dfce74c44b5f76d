"""The scaled-out deployment: a PostgreSQL record, its job queue and a Chroma server index, as one memory server
(or one process) uses them. Any number of processes open the same two at once; none owns them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MemoryPluginError
from ..lifecycle import keep_forever

if TYPE_CHECKING:
    from .chroma_server import ChromaServerIndex
    from .postgres import PostgresJobQueue, PostgresRecord


def _postgres() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as e:
        raise ImportError('a PostgreSQL database needs psycopg: pip install "memory-plugin[postgres]"') from e


class SharedDeployment:
    """Opens the database ``database`` (schema created or migrated) and the Chroma server ``index``.

    Raises:
        StorageError: the database cannot be reached, or its schema is newer than this memory-plugin's.
        InvalidArgumentError: ``index`` is not a Chroma server URL.
    """

    def __init__(self, database: str, index: str) -> None:
        _postgres()
        from .chroma_server import ChromaServerIndex, chroma_address
        from .postgres import PostgresJobQueue, PostgresRecord

        chroma_address(index)  # a bad URL is refused before anything is opened
        self.record: PostgresRecord = PostgresRecord(database)
        try:
            self.index: ChromaServerIndex = ChromaServerIndex(index, self.record)
        except MemoryPluginError:
            self.record.close()
            raise
        self.queue: PostgresJobQueue = PostgresJobQueue(self.record)
        self.unclean_start = False  # nobody owns the database: there is no owner to have died

    @property
    def location(self) -> str:
        return f"postgresql://{self.record.where} + chroma {self.index.url}"

    def close(self) -> None:
        self.index.close()
        self.record.close()

    def abandon_after_fork(self) -> None:
        keep_forever(*self.record.abandon_after_fork(), *self.index.abandon_after_fork())

"""The embedded deployment: a data folder as one process owns it (the folder lock, the SQLite record, the job
queue and the embedded Chroma index), opened and closed in the one order that is safe."""

from __future__ import annotations

from pathlib import Path

from ..errors import StorageError
from ..lifecycle import keep_forever
from .chroma import ChromaIndex
from .lock import FolderLock
from .matrix_budget import DEFAULT_MAX_MEMORIES
from .sqlite import SqliteJobQueue, SqliteRecord
from .vector_matrix import SHORTLIST_ABOVE


class DataFolder:
    """Opens ``path`` for this process: takes the lock, opens the record, checks the vector index.

    Raises:
        StoreLockedError: another process (or client) holds the folder.
        StorageError: the folder cannot be created or read.
    """

    def __init__(
        self, path: Path, vector_memory_limit: int = DEFAULT_MAX_MEMORIES, shortlist_above: int = SHORTLIST_ABOVE
    ) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the data folder {path}: {e.strerror}") from e
        self._lock = FolderLock(path)
        self._lock.acquire()
        try:
            self.record = SqliteRecord(path / "memory.db", vector_memory_limit, shortlist_above)
        except BaseException:
            self._lock.release()
            raise
        try:
            self.index = ChromaIndex(path, self.record)
            self.queue = SqliteJobQueue(self.record.connections)
            self.unclean_start = self.record.get_meta("owner_state") == "open"
            self.index.check_on_open(clean=not self.unclean_start)
            self.record.set_meta("owner_state", "open")
            self.queue.recover()
        except BaseException:
            self.record.close()
            self._lock.release()
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Close the index (recording its manifest), mark the folder cleanly closed, close the record, unlock."""
        try:
            self.index.close()
            self.record.set_meta("owner_state", "closed")
            self.record.close()
        finally:
            self._lock.release()

    def abandon_after_fork(self) -> None:
        """In a forked child: touch nothing the parent owns. The lock's descriptor is let go without unlocking,
        and the inherited record connections and Chroma client are kept, never closed (see ``lifecycle``)."""
        self._lock.forget_after_fork()
        keep_forever(*self.record.abandon_after_fork(), *self.index.abandon_after_fork())

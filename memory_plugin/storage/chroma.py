"""The vector index: Chroma collections derived from the record, one per memory store.

The request path never writes Chroma. Each memory change appends its id to the record's ``index_log`` in the same
transaction; :meth:`VectorIndex.catch_up` replays the log into Chroma (before a query that needs the index, and
when the background worker is idle). A deleted store is noted in the record too, and its collection dropped from
Chroma when Chroma is next open, however long that takes.

Chroma's files are never trusted blindly: after an unclean shutdown, when the files differ from the manifest
recorded at the last clean close (see :mod:`.index_files`), or when the first look after opening fails (a store's
count differs from the record's, a probe query fails), the index is rebuilt into a fresh folder from the
embeddings kept in the record, without re-embedding, and older folders are removed. A crash at any point (even
during the rebuild) costs time, never data or unbounded disk. The background worker rebuilds; meanwhile
:meth:`VectorIndex.query` answers ``None`` and searches scan the record exactly. Every Chroma failure is a
:class:`StorageError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClientClosedError, MemoryPluginError, StorageError
from ..filters import ReadFilter
from ..lifecycle import CLOSED_MESSAGE, shutting_down
from ..scope import SEGMENTS, WILDCARD
from . import index_files
from .base import MemoryRow, RecordStore, RecordWriter, Vector

_BATCH = 1000
_GENERATION = "index_generation"
_APPLIED = "index_applied"
_NEEDS_REBUILD = "index_needs_rebuild"
_MANIFEST = "index_manifest"
_DROPPED = "index_dropped_stores"
_COLLECTION = "store-{}"
log = logging.getLogger("memory_plugin")


# Prefix of user metadata keys in the vector index, so they never collide with the scope fields stored there.
INDEX_METADATA_PREFIX = "md_"


def _index_metadata(row: MemoryRow) -> dict[str, Any]:
    memory = row.memory
    metadata: dict[str, Any] = {INDEX_METADATA_PREFIX + k: v for k, v in memory.metadata.items()}
    metadata.update({segment: getattr(memory.scope, segment) for segment in SEGMENTS})
    metadata.update(memory_type=memory.memory_type, event_time=memory.event_time.timestamp(), seq=row.position)
    return metadata


def _where_in(key: str, values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    return {key: values[0]} if len(values) == 1 else {key: {"$in": list(values)}}


def index_where(read: ReadFilter) -> dict[str, Any] | None:
    """The Chroma ``where`` equivalent to ``read`` (the store is the collection itself)."""
    conditions: list[dict[str, Any]] = []
    for segment in SEGMENTS:
        value = getattr(read.scope, segment)
        if value != WILDCARD:
            conditions.append(_where_in(segment, [value] if isinstance(value, str) else list(value)))
    if read.memory_types:
        conditions.append(_where_in("memory_type", read.memory_types))
    for key, values in read.metadata.items():
        conditions.append(_where_in(INDEX_METADATA_PREFIX + key, values))
    if read.start_time is not None:
        conditions.append({"event_time": {"$gte": read.start_time.timestamp()}})
    if read.end_time is not None:
        conditions.append({"event_time": {"$lte": read.end_time.timestamp()}})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


@contextmanager
def _chroma(action: str) -> Iterator[None]:
    """Chroma raises many kinds of errors; every one means the index could not do ``action``."""
    try:
        yield
    except MemoryPluginError:
        raise
    except Exception as e:
        raise StorageError(f"vector index: cannot {action}: {type(e).__name__}: {e}") from e


class ChromaIndex:
    """:class:`~memory_plugin.storage.base.VectorIndex` on embedded Chroma, kept in step with the record through its
    change log."""

    def __init__(self, folder: Path, record: RecordStore) -> None:
        self._folder = folder
        self._record = record
        self._client: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self._rebuilding = False
        self._needs_rebuild = record.get_meta(_NEEDS_REBUILD) == "1"
        self._verified = False  # the first look after Chroma opened in this process passed
        self._sizes: dict[int, int] = {}  # memories per store's collection, known since the last change
        self._collections: dict[int, Any] = {}  # Chroma's get_or_create costs ~2 ms: keep the handles

    def check_on_open(self, clean: bool) -> None:
        """Decide, before Chroma reads any file, whether the index can be used: not after an unclean shutdown
        (Chroma's files may be torn), nor when its files differ from the manifest of the last clean close."""
        generation = self._generation()
        if generation is None or self._needs_rebuild:
            return
        recorded = json.loads(self._record.get_meta(_MANIFEST) or "{}")
        if not clean or recorded.get("generation") != generation:
            self._mark_for_rebuild("the last owner did not close it" if not clean else "it has no manifest")
        elif not index_files.matches(self._path(generation), recorded.get("files", {})):
            self._mark_for_rebuild("its files changed since the last clean close")

    @property
    def pending(self) -> int:
        """Changes not yet in Chroma (log entries and dropped stores; a pending rebuild counts as one)."""
        with self._record.read() as reader:
            applied = int(reader.get_meta(_APPLIED) or 0)
            count = len(reader.index_changes(applied))
        return count + len(self._dropped()) + int(self._needs_rebuild)

    @contextmanager
    def _ready(self, rebuild: bool) -> Iterator[bool]:
        """Hold the index up to date. Yields False instead of waiting when it is being rebuilt, needs a rebuild and
        ``rebuild`` is False, or when Chroma is not open and the interpreter is exiting."""
        self._refuse_when_closed()
        if not rebuild and (self._rebuilding or self._needs_rebuild):
            yield False
            return
        with self._lock:
            self._refuse_when_closed()
            yield self._catch_up_locked(rebuild)

    def _refuse_when_closed(self) -> None:
        if self._closed:
            raise ClientClosedError(CLOSED_MESSAGE)

    def catch_up(self) -> None:
        """Apply every pending change (rebuilding first if needed)."""
        with self._ready(rebuild=True):
            pass

    def query(self, store_id: int, vector: Vector, n_results: int, where: ReadFilter | None) -> list[int] | None:
        """Record positions of the nearest memories (best first), or ``None`` when the index cannot answer now
        (being rebuilt, or not open while the interpreter exits): the caller then scans the record instead."""
        with self._ready(rebuild=False) as ready:
            if not ready:
                return None
            collection = self._collection(store_id)
            if store_id not in self._sizes:
                with _chroma("count a collection"):
                    self._sizes[store_id] = collection.count()
            count = self._sizes[store_id]
            if count == 0:
                return []
            with _chroma("query"):
                result = collection.query(
                    query_embeddings=[vector.tolist()],
                    n_results=min(n_results, count),
                    where=None if where is None else index_where(where),
                    include=["metadatas"],
                )
            return [int(m["seq"]) for m in (result["metadatas"] or [[]])[0] if m]

    def note_store_dropped(self, tx: RecordWriter, store_id: int) -> None:
        """In the transaction that deletes a store: remember to drop its collection from Chroma, however long it
        takes until Chroma is open again."""
        dropped = sorted({*json.loads(tx.get_meta(_DROPPED) or "[]"), store_id})
        tx.set_meta(_DROPPED, json.dumps(dropped))

    def drop_store(self, store_id: int) -> None:
        """Drop a deleted store's collection now if Chroma is open (else when it next opens: see
        :meth:`note_store_dropped`)."""
        with self._lock:
            if self._client is not None and not self._closed:
                self._apply_drops()

    def close(self) -> None:
        """Close Chroma for good (it is never re-opened) and record the manifest of its files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            generation = self._generation()
            try:
                self._close_client()
                if generation is None or self._needs_rebuild:
                    return
                files = index_files.manifest(self._path(generation))
            except (StorageError, OSError) as e:  # no manifest: the next open rebuilds, which is safe
                log.warning("memory_plugin: the vector index did not close cleanly: %s", e)
                self._record.set_meta(_MANIFEST, "{}")
                return
            self._record.set_meta(_MANIFEST, json.dumps({"generation": generation, "files": files}))

    def abandon_after_fork(self) -> list[Any]:
        """In a forked child: refuse every use and return the inherited Chroma client, which the caller must keep
        and never close (Chroma's shutdown hangs in a child). Takes no lock."""
        self._closed = True
        return [self._client, *self._collections.values()] if self._client is not None else []

    # ---- Chroma ----------------------------------------------------------------------------------------------

    def _generation(self) -> int | None:
        value = self._record.get_meta(_GENERATION)
        return None if value is None else int(value)

    def _path(self, generation: int) -> Path:
        return self._folder / f"index-{generation}"

    def _close_client(self) -> None:
        self._collections.clear()
        self._sizes.clear()
        client, self._client = self._client, None
        if client is not None:
            with _chroma("close"):
                client.close()

    def _open_client(self, generation: int) -> None:
        with _chroma("open"):
            import chromadb
            from chromadb.config import Settings

            path = self._path(generation)
            path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
            )

    def _collection(self, store_id: int) -> Any:
        if store_id not in self._collections:
            with _chroma("open a collection"):
                self._collections[store_id] = self._client.get_or_create_collection(
                    _COLLECTION.format(store_id), embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
        return self._collections[store_id]

    def request_rebuild(self, reason: str) -> None:
        """Rebuild the index from the record into a fresh folder when the worker is next idle (searches scan the
        record meanwhile), e.g. so that erased memories leave no trace in Chroma's files."""
        self._mark_for_rebuild(reason)

    def _mark_for_rebuild(self, reason: str) -> None:
        log.warning("memory_plugin: the vector index will be rebuilt from the record: %s", reason)
        self._needs_rebuild = True
        self._record.set_meta(_NEEDS_REBUILD, "1")

    # ---- catching up -----------------------------------------------------------------------------------------

    def _catch_up_locked(self, rebuild: bool) -> bool:
        generation = self._generation()
        if self._needs_rebuild or generation is None:
            if not rebuild and generation is not None:
                return False
            self._rebuild()
            return True
        if self._client is None and shutting_down():  # Chroma cannot start now (no new threads): the record answers
            return False
        if self._verified:
            if self._client is None:
                self._open_client(generation)
            self._apply_drops()
            self._apply_log()
            return True
        try:  # the first use in this process: any failure means the files cannot be trusted
            if self._client is None:
                self._open_client(generation)
            self._apply_drops()
            self._apply_log()
            self._verify()
        except StorageError as e:
            with contextlib.suppress(StorageError):
                self._close_client()
            self._mark_for_rebuild(f"it failed its first use: {e}")
        if self._needs_rebuild:
            if not rebuild:
                return False
            self._rebuild()
        return True

    def _apply_log(self) -> None:
        with self._record.read() as reader:
            entries = reader.index_changes(int(reader.get_meta(_APPLIED) or 0))
        if not entries:
            return
        self._sizes.clear()
        by_store: dict[int, list[str]] = {}
        for entry in entries:
            by_store.setdefault(entry.store_id, []).append(entry.memory_id)
        for store_id, memory_ids in by_store.items():
            self._sync_ids(store_id, list(dict.fromkeys(memory_ids)))
        last = entries[-1].position
        with self._record.write() as writer:
            writer.set_meta(_APPLIED, str(last))
            writer.trim_index_changes(last)

    def _sync_ids(self, store_id: int, memory_ids: list[str]) -> None:
        """Make Chroma hold exactly the record's current version of these memories."""
        for start in range(0, len(memory_ids), _BATCH):
            batch = memory_ids[start : start + _BATCH]
            with self._record.read() as reader:
                rows = reader.memories_by_id(batch)
                exists = reader.store_by_id(store_id) is not None
            collection = self._collection(store_id)
            gone = [i for i in batch if i not in rows]
            if gone:
                with _chroma("delete"):
                    collection.delete(ids=gone)
            if rows and exists:
                self._upsert(collection, list(rows.values()))

    @staticmethod
    def _upsert(collection: Any, rows: list[MemoryRow]) -> None:
        with _chroma("write"):
            collection.upsert(
                ids=[row.memory.id for row in rows],
                embeddings=np.stack([row.embedding for row in rows]),
                metadatas=[_index_metadata(row) for row in rows],
            )

    def _dropped(self) -> list[int]:
        return [int(i) for i in json.loads(self._record.get_meta(_DROPPED) or "[]")]

    def _apply_drops(self) -> None:
        """Drop the collections of deleted stores."""
        dropped = self._dropped()
        if not dropped:
            return
        with self._record.read() as reader:
            live = {store.id for store in reader.stores()}
        self._drop_collections({_COLLECTION.format(i) for i in dropped if i not in live})
        with self._record.write() as writer:
            remaining = [i for i in json.loads(writer.get_meta(_DROPPED) or "[]") if i not in dropped]
            writer.set_meta(_DROPPED, json.dumps(remaining))

    def _drop_collections(self, names: set[str]) -> None:
        """Delete these collections (those that exist). Chroma keeps a deleted collection's HNSW files open and its
        folder on disk until the client closes (4 descriptors and a folder per collection): so close the client
        (it is opened again at once) and remove the folders no segment refers to any more."""
        with _chroma("list collections"):
            existing = {getattr(c, "name", c) for c in self._client.list_collections()}
        doomed = names & existing
        if not doomed:
            return
        for name in doomed:
            with _chroma("drop a collection"):
                self._client.delete_collection(name)
        self._close_client()
        generation = self._generation()
        if generation is not None:
            index_files.remove_orphan_segments(self._path(generation))
            self._open_client(generation)

    def _verify(self) -> None:
        """The first look after Chroma opened: each store's collection holds as many memories as the record, no
        collection of a store that no longer exists is left, and a probe query finds a memory by its own vector.
        Marks the index for a rebuild when not; skipped (tried again next time) while writes are arriving."""
        with self._record.read() as reader:
            if reader.index_changes(int(reader.get_meta(_APPLIED) or 0)):
                return
            counts = reader.count_by_store()
            probe = next((row for store_id in counts for row in reader.store_memories(store_id, 0, 1)), None)
        with _chroma("list collections"):
            names = {getattr(c, "name", c) for c in self._client.list_collections()}
        self._drop_collections(names - {_COLLECTION.format(i) for i in counts})  # left by a store deleted earlier
        for store_id, expected in counts.items():
            with _chroma("count a collection"):
                found = self._collection(store_id).count()
            if found != expected:
                self._mark_for_rebuild(f"store {store_id} has {found} memories in the index, {expected} in the record")
                return
        vector = None if probe is None else probe.embedding
        if probe is not None and vector is not None and np.linalg.norm(vector) > 0.5:  # a zero vector matches nothing
            with _chroma("query"):
                result = self._collection(probe.store_id).query(
                    query_embeddings=[vector.tolist()], n_results=10, include=["distances"]
                )
            distances = (result["distances"] or [[]])[0]
            if not distances or not min(distances) <= 1e-3:
                self._mark_for_rebuild("a probe query did not find a memory by its own vector")
                return
        self._verified = True

    # ---- rebuilding ------------------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Build the whole index afresh in a new folder from the record, then remove the old folders."""
        self._rebuilding = True
        try:
            self._rebuild_locked()
        finally:
            self._rebuilding = False

    def _rebuild_locked(self) -> None:
        self._close_client()
        generation = (self._generation() or 0) + 1
        for old in self._folder.glob("index-*"):
            shutil.rmtree(old, ignore_errors=True)
        with self._record.read() as reader:
            snapshot = reader.last_index_change()
            stores = [store.id for store in reader.stores()]
        self._open_client(generation)
        for store_id in stores:
            collection = self._collection(store_id)
            position = 0
            while True:
                with self._record.read() as reader:
                    rows = reader.store_memories(store_id, position, _BATCH)
                if not rows:
                    break
                self._upsert(collection, rows)
                position = rows[-1].position
        built = set(stores)
        with self._record.write() as writer:
            # The new folder holds only the stores that existed when it began; one deleted since is still to drop.
            dropped = [i for i in json.loads(writer.get_meta(_DROPPED) or "[]") if i in built]
            for key, value in (
                (_GENERATION, str(generation)),
                (_APPLIED, str(snapshot)),
                (_NEEDS_REBUILD, "0"),
                (_DROPPED, json.dumps(dropped)),
            ):
                writer.set_meta(key, value)
            writer.trim_index_changes(snapshot)
        self._needs_rebuild = False
        self._verified = True
        self._apply_log()

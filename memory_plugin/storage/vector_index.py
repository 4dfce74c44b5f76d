"""The vector index: Chroma collections derived from the record, one per memory store.

The request path never writes Chroma. Each memory change appends its id to the record's ``index_log`` in the same
transaction; :meth:`VectorIndex.catch_up` replays the log into Chroma (before a query that needs the index, and
when the background worker is idle). Chroma's files are not trusted after an unclean shutdown: the index is then
rebuilt into a fresh folder from the embeddings kept in the record, without re-embedding, and older folders are
removed, so a crash at any point (even during the rebuild) costs time, never data or unbounded disk.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StorageError
from ..filters import INDEX_METADATA_PREFIX
from .record import Record, embedding_matrix

_BATCH = 1000
_GENERATION = "index_generation"
_APPLIED = "index_applied"
_NEEDS_REBUILD = "index_needs_rebuild"


def _index_metadata(row: Any) -> dict[str, Any]:
    metadata = {INDEX_METADATA_PREFIX + k: v for k, v in json.loads(row["metadata"]).items()}
    metadata.update(
        app_id=row["app_id"],
        tenant_id=row["tenant_id"],
        agent_id=row["agent_id"],
        run_id=row["run_id"],
        memory_type=row["memory_type"],
        event_time=row["event_time"],
        seq=row["seq"],
    )
    return metadata


class VectorIndex:
    """Chroma, kept in step with the record through its change log."""

    def __init__(self, folder: Path, record: Record) -> None:
        self._folder = folder
        self._record = record
        self._client: Any = None
        self._lock = threading.Lock()
        self._rebuilding = False
        self._sizes: dict[int, int] = {}  # memories per store's collection, known since the last change
        self._collections: dict[int, Any] = {}  # Chroma's get_or_create costs ~2 ms: keep the handles

    def mark_unclean(self) -> None:
        """The last owner did not close cleanly: Chroma's files may be damaged; rebuild before the next use."""
        self._record.set_meta(_NEEDS_REBUILD, "1")

    @property
    def pending(self) -> int:
        """Changes not yet in Chroma (log entries; a pending rebuild counts as one)."""
        with self._record.reading() as conn:
            applied = int(self._record.get_meta(_APPLIED) or 0)
            count = conn.execute("SELECT count(*) FROM index_log WHERE seq > ?", (applied,)).fetchone()[0]
        return int(count) + (1 if self._record.get_meta(_NEEDS_REBUILD) == "1" else 0)

    @contextmanager
    def _ready(self, wait_for_rebuild: bool) -> Iterator[bool]:
        """Hold the index up to date; yields False instead of waiting while a full rebuild runs elsewhere."""
        if self._rebuilding and not wait_for_rebuild:
            yield False
            return
        with self._lock:
            self._catch_up_locked()
            yield True

    def catch_up(self) -> None:
        """Apply every pending change (rebuilding first if needed)."""
        with self._ready(wait_for_rebuild=True):
            pass

    def query(
        self, store_id: int, vector: np.ndarray, n_results: int, where: dict[str, Any] | None
    ) -> list[int] | None:
        """Record positions of the nearest memories (best first), or ``None`` while another thread rebuilds the
        index: the caller then scans the record instead."""
        with self._ready(wait_for_rebuild=False) as ready:
            if not ready:
                return None
            collection = self._collection(store_id)
            if store_id not in self._sizes:
                self._sizes[store_id] = collection.count()
            count = self._sizes[store_id]
            if count == 0:
                return []
            try:
                result = collection.query(
                    query_embeddings=[vector.tolist()],
                    n_results=min(n_results, count),
                    where=where,
                    include=["metadatas"],
                )
            except Exception as e:  # Chroma raises many kinds; all mean the index could not answer
                raise StorageError(f"vector index query failed: {e}") from e
            return [int(m["seq"]) for m in (result["metadatas"] or [[]])[0] if m]

    def drop_store(self, store_id: int) -> None:
        with self._lock:
            self._sizes.pop(store_id, None)
            self._collections.pop(store_id, None)
            if self._client is not None:
                with contextlib.suppress(Exception):  # absent collection: nothing to drop
                    self._client.delete_collection(f"store-{store_id}")

    def close(self) -> None:
        with self._lock:
            self._close_client()

    def _close_client(self) -> None:
        self._collections.clear()
        if self._client is not None:
            self._client.close()
            self._client = None

    def _open_client(self, generation: int) -> None:
        import chromadb
        from chromadb.config import Settings

        path = self._folder / f"index-{generation}"
        path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )

    def _collection(self, store_id: int) -> Any:
        if store_id not in self._collections:
            self._collections[store_id] = self._client.get_or_create_collection(
                f"store-{store_id}", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        return self._collections[store_id]

    def _catch_up_locked(self) -> None:
        if self._record.get_meta(_NEEDS_REBUILD) == "1" or self._record.get_meta(_GENERATION) is None:
            self._rebuild()
        elif self._client is None:
            self._open_client(int(self._record.get_meta(_GENERATION) or 0))
        applied = int(self._record.get_meta(_APPLIED) or 0)
        with self._record.reading() as conn:
            entries = conn.execute(
                "SELECT seq, store_id, memory_id FROM index_log WHERE seq > ? ORDER BY seq", (applied,)
            ).fetchall()
        if not entries:
            return
        self._sizes.clear()
        by_store: dict[int, list[str]] = {}
        for entry in entries:
            by_store.setdefault(entry["store_id"], []).append(entry["memory_id"])
        for store_id, memory_ids in by_store.items():
            self._sync_ids(store_id, list(dict.fromkeys(memory_ids)))
        last = int(entries[-1]["seq"])
        with self._record.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_APPLIED, str(last)))
            conn.execute("DELETE FROM index_log WHERE seq <= ?", (last,))

    def _sync_ids(self, store_id: int, memory_ids: list[str]) -> None:
        """Make Chroma hold exactly the record's current version of these memories."""
        for start in range(0, len(memory_ids), _BATCH):
            batch = memory_ids[start : start + _BATCH]
            with self._record.reading() as conn:
                marks = ",".join("?" * len(batch))
                rows = conn.execute(f"SELECT * FROM memories WHERE id IN ({marks})", batch).fetchall()
                dimension = conn.execute("SELECT dimension FROM stores WHERE id = ?", (store_id,)).fetchone()
            present = {row["id"] for row in rows}
            collection = self._collection(store_id)
            gone = [i for i in batch if i not in present]
            if gone:
                collection.delete(ids=gone)
            if rows and dimension is not None:
                self._upsert(collection, rows, int(dimension[0]))

    @staticmethod
    def _upsert(collection: Any, rows: list[Any], dimension: int) -> None:
        collection.upsert(
            ids=[row["id"] for row in rows],
            embeddings=embedding_matrix([row["embedding"] for row in rows], dimension),
            metadatas=[_index_metadata(row) for row in rows],
        )

    def _rebuild(self) -> None:
        """Build the whole index afresh in a new folder from the record, then remove the old folders."""
        self._rebuilding = True
        try:
            self._rebuild_locked()
        finally:
            self._rebuilding = False

    def _rebuild_locked(self) -> None:
        self._sizes.clear()
        self._close_client()
        generation = int(self._record.get_meta(_GENERATION) or 0) + 1
        for old in self._folder.glob("index-*"):
            shutil.rmtree(old, ignore_errors=True)
        with self._record.reading() as conn:
            snapshot = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
            stores = [(r["id"], r["dimension"]) for r in conn.execute("SELECT id, dimension FROM stores")]
        self._open_client(generation)
        for store_id, dimension in stores:
            collection = self._collection(store_id)
            position = 0
            while True:
                with self._record.reading() as conn:
                    rows = conn.execute(
                        "SELECT * FROM memories WHERE store_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                        (store_id, position, _BATCH),
                    ).fetchall()
                if not rows:
                    break
                self._upsert(collection, rows, int(dimension))
                position = int(rows[-1]["seq"])
        with self._record.transaction() as conn:
            for key, value in ((_GENERATION, str(generation)), (_APPLIED, str(snapshot)), (_NEEDS_REBUILD, "0")):
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

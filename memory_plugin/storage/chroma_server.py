"""The vector index of a scaled-out deployment: a Chroma server (``chroma run``) shared by every memory server,
derived from the PostgreSQL record and rebuildable from it.

**Fed from the change log.** Each memory change appends ``(store, memory id)`` to the record's ``index_log`` in
the same transaction. Any memory server may apply the log (the background worker does, when idle), but exactly one
at a time: the applier holds a PostgreSQL advisory lock for the transaction in which it reads a batch of entries,
writes the memories' current versions to Chroma and deletes the entries **by id**. Ids are drawn before commit, so
they commit out of order; a watermark ("applied up to id n") would skip an entry that committed after a higher
one. An applier that dies mid-batch leaves its entries in place (its transaction rolls back) and the next one
applies them again: Chroma writes are idempotent upserts and deletes.

**Read-after-write.** A search never waits for the applier: :meth:`ChromaServerIndex.query` merges Chroma's hits
with the exact cosine of every memory of the store whose change is still in the log, so a write is searchable as
soon as it is acknowledged. When the log of a store is long (Chroma unreachable for a while) or the store's
collection is not built, the query answers ``None`` and the search scans the record exactly.

**Rebuilds.** Each store's collection carries a generation (``stores.index_generation``; 0 is "not built"). A
rebuild writes the record's memories into a new collection and then switches the generation in the record, so no
search ever reads a half-built collection; the old one is dropped afterwards. The applier rebuilds a store whose
collection is missing or holds another count of memories than the record (the Chroma server was wiped, lost, or
replaced), a store never built, and every store after ``delete_all`` (:meth:`request_rebuild`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import ClientClosedError, InvalidArgumentError, StorageError
from ..filters import ReadFilter
from ..lifecycle import CLOSED_MESSAGE
from .base import MemoryRow, RecordWriter, Vector
from .chroma import _chroma, _index_metadata, index_where
from .postgres import PostgresRecord, PostgresWriter

APPLIER_LOCK = 0x4D50_0010  # pg_try_advisory_xact_lock key: one applier across the servers
_BATCH = 1000
# Past this many unapplied changes of a store, searches scan the record instead of merging them one by one.
MAX_MERGED_CHANGES = 2000
# How often one process compares each collection's count with the record's (a wiped Chroma server is noticed).
VERIFY_SECONDS = 10.0
_DEPLOYMENT = "index_deployment"
_REBUILD_ALL = "index_rebuild_all"
log = logging.getLogger("memory_plugin")


def chroma_address(url: str) -> tuple[str, int, bool]:
    """Host, port and TLS of a Chroma server URL (``http://HOST:PORT``).

    Raises:
        InvalidArgumentError: not an http(s) URL with a host.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError("index", f"must be a Chroma server URL like http://127.0.0.1:8000, got {url!r:.80}")
    return parts.hostname, port or (443 if parts.scheme == "https" else 8000), parts.scheme == "https"


class ChromaServerIndex:
    """:class:`~memory_plugin.storage.base.VectorIndex` on a Chroma server, kept in step with a
    :class:`~memory_plugin.storage.postgres.PostgresRecord` through its change log (see the module)."""

    def __init__(self, url: str, record: PostgresRecord) -> None:
        self._host, self._port, self._ssl = chroma_address(url)
        self.url = url
        self._record = record
        self._client: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self._verified_at = -VERIFY_SECONDS
        self._suspect: set[int] = set()  # stores whose collection a query found missing: verify at once
        deployment = record.get_meta(_DEPLOYMENT)
        if deployment is None:  # collections of two databases sharing one Chroma server never meet
            with record.write() as tx:
                tx.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                    (_DEPLOYMENT, uuid.uuid4().hex[:12]),
                )
            deployment = record.get_meta(_DEPLOYMENT)
        self._prefix = f"mp-{deployment}"

    def _name(self, store_id: int, generation: int) -> str:
        return f"{self._prefix}-{store_id}-g{generation}"

    # ---- the Chroma client ---------------------------------------------------------------------------------------

    def _chroma(self) -> Any:
        if self._closed:
            raise ClientClosedError(CLOSED_MESSAGE)
        if self._client is None:
            with _chroma(f"reach the Chroma server at {self.url}"):
                import chromadb
                from chromadb.config import Settings

                self._client = chromadb.HttpClient(
                    host=self._host, port=self._port, ssl=self._ssl, settings=Settings(anonymized_telemetry=False)
                )
        return self._client

    def _collection(self, store_id: int, generation: int, create: bool = False) -> Any:
        client = self._chroma()
        with _chroma("open a collection"):
            if create:
                return client.get_or_create_collection(
                    self._name(store_id, generation), embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                )  # fmt: skip
            return client.get_collection(self._name(store_id, generation), embedding_function=None)

    # ---- VectorIndex -----------------------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Changes not yet applied, dropped stores, stores to (re)build, and 1 when a check is due."""
        with self._record.read() as reader:
            row = reader._one(
                "SELECT (SELECT count(*) FROM index_log) + (SELECT count(*) FROM index_dropped)"
                " + (SELECT count(*) FROM stores WHERE index_generation = 0)"
                " + (SELECT count(*) FROM meta WHERE key = %s) AS n",
                (_REBUILD_ALL,),
            )
        due = self._suspect or time.monotonic() - self._verified_at >= VERIFY_SECONDS
        return (int(row["n"]) if row else 0) + int(bool(due))

    def check_on_open(self, clean: bool) -> None:
        """Nothing to check before use: every memory server verifies the collections against the record as it
        goes (a Chroma server outlives the memory servers, and they come and go)."""

    def query(self, store_id: int, vector: Vector, n: int, where: ReadFilter | None) -> list[int] | None:
        """Positions of the nearest memories (index hits merged with the store's unapplied changes), or ``None``
        when the record should answer (collection not built, too many unapplied changes, Chroma unreachable)."""
        with self._record.read() as reader:
            store = reader._one("SELECT index_generation FROM stores WHERE id = %s", (store_id,))
            changes = reader.store_index_changes(store_id, MAX_MERGED_CHANGES + 1)
            generation = int(store["index_generation"]) if store else 0
            if generation == 0 or len(changes) > MAX_MERGED_CHANGES:
                return None
            changed = list(reader.memories_by_id(list(dict.fromkeys(c.memory_id for c in changes))).values())
            if changed and where is not None:
                allowed = reader.inside(where, [row.position for row in changed])
                changed = [row for row in changed if row.position in allowed]
        try:
            found = self._nearest(store_id, generation, vector, n, where)
        except StorageError as e:
            log.info("memory_plugin: vector index unavailable, the record answers: %s", e)
            return None
        fresh = {row.position: float(row.embedding @ vector) for row in changed}
        merged = {position: score for position, score in found if position not in fresh}
        merged.update(fresh)
        return sorted(merged, key=lambda p: -merged[p])[:n]

    def _nearest(
        self, store_id: int, generation: int, vector: Vector, n: int, where: ReadFilter | None
    ) -> list[tuple[int, float]]:
        try:
            collection = self._collection(store_id, generation)
        except StorageError:
            self._suspect.add(store_id)  # wiped or lost: the applier rebuilds it
            raise
        with _chroma("query"):
            result = collection.query(
                query_embeddings=[vector.tolist()], n_results=n,
                where=None if where is None else index_where(where), include=["metadatas", "distances"],
            )  # fmt: skip
        metadatas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [(int(m["seq"]), 1.0 - float(d)) for m, d in zip(metadatas, distances, strict=True) if m]

    def catch_up(self) -> None:
        """Apply what is pending, if no other server is applying right now (then it will)."""
        with self._lock, self._applying() as tx:
            if tx is None:
                return
            self._apply_drops(tx)
            if tx.get_meta(_REBUILD_ALL) is not None:
                for store in tx.stores():
                    self._rebuild(tx, store.id, "delete_all erased memories")
                tx.conn.execute("DELETE FROM meta WHERE key = %s", (_REBUILD_ALL,))
            for row in tx._all("SELECT id FROM stores WHERE index_generation = 0"):
                self._rebuild(tx, int(row["id"]), "it was never built")
            self._apply_log(tx)
            self._verify(tx)

    @contextmanager
    def _applying(self) -> Iterator[PostgresWriter | None]:
        """A write transaction holding the applier lock, or ``None`` when another server holds it."""
        with self._record.write() as tx:
            got = tx._one("SELECT pg_try_advisory_xact_lock(%s) AS got", (APPLIER_LOCK,))
            yield tx if got and got["got"] else None

    def request_rebuild(self, reason: str) -> None:
        """Rebuild every store's collection from the record (e.g. so that erased memories leave no trace)."""
        log.warning("memory_plugin: the vector index will be rebuilt from the record: %s", reason)
        self._record.set_meta(_REBUILD_ALL, reason[:200])

    def note_store_dropped(self, tx: RecordWriter, store_id: int) -> None:
        assert isinstance(tx, PostgresWriter)
        tx.conn.execute(
            "INSERT INTO index_dropped (store_id, generation) VALUES (%s, 0) ON CONFLICT DO NOTHING", (store_id,)
        )

    def drop_store(self, store_id: int) -> None:
        """Drop a deleted store's collections now if the applier lock is free (else the applier does, later)."""
        with contextlib.suppress(StorageError), self._lock, self._applying() as tx:
            if tx is not None:
                self._apply_drops(tx)

    def close(self) -> None:
        self._closed = True
        self._client = None

    def abandon_after_fork(self) -> list[Any]:
        self._closed = True
        return [self._client] if self._client is not None else []

    # ---- applying (under the applier lock) -------------------------------------------------------------------

    def _apply_drops(self, tx: PostgresWriter) -> None:
        dropped = [int(r["store_id"]) for r in tx._all("SELECT store_id FROM index_dropped")]
        if not dropped:
            return
        for store_id in dropped:
            self._drop_collections(store_id, keep=None)
        tx.conn.execute("DELETE FROM index_dropped WHERE store_id = ANY(%s::bigint[])", (dropped,))

    def _drop_collections(self, store_id: int, keep: str | None) -> None:
        """Delete the store's collections of every generation but ``keep``."""
        client = self._chroma()
        with _chroma("list collections"):
            names = [getattr(c, "name", c) for c in client.list_collections()]
        for name in names:
            if name.startswith(f"{self._prefix}-{store_id}-g") and name != keep:
                with _chroma("drop a collection"):
                    client.delete_collection(name)

    def _apply_log(self, tx: PostgresWriter) -> None:
        while True:
            entries = tx._all("SELECT l.id, l.store_id, l.memory_id, s.index_generation FROM index_log l"
                              " LEFT JOIN stores s ON s.id = l.store_id ORDER BY l.id LIMIT %s", (_BATCH,))  # fmt: skip
            if not entries:
                return
            by_store: dict[tuple[int, int], list[str]] = {}
            for entry in entries:
                if entry["index_generation"]:  # else the store is gone, or its coming build includes the change
                    key = (int(entry["store_id"]), int(entry["index_generation"]))
                    by_store.setdefault(key, []).append(str(entry["memory_id"]))
            for (store_id, generation), memory_ids in by_store.items():
                # Read after the entries: the rows are at least as new as every change being marked applied.
                rows = tx.memories_by_id(list(dict.fromkeys(memory_ids)))
                collection = self._collection(store_id, generation, create=True)
                gone = [i for i in dict.fromkeys(memory_ids) if i not in rows]
                if gone:
                    with _chroma("delete"):
                        collection.delete(ids=gone)
                self._upsert(collection, list(rows.values()))
            tx.delete_index_changes([int(e["id"]) for e in entries])

    @staticmethod
    def _upsert(collection: Any, rows: Sequence[MemoryRow]) -> None:
        if rows:
            with _chroma("write"):
                collection.upsert(
                    ids=[row.memory.id for row in rows],
                    embeddings=np.stack([row.embedding for row in rows]),
                    metadatas=[_index_metadata(row) for row in rows],
                )

    def _rebuild(self, tx: PostgresWriter, store_id: int, reason: str) -> None:
        """Build the store's collection afresh from the record, then switch searches to it."""
        log.info("memory_plugin: building the vector index of store %s: %s", store_id, reason)
        store = tx._one("SELECT index_generation FROM stores WHERE id = %s FOR UPDATE", (store_id,))
        if store is None:
            return
        generation = int(store["index_generation"]) + 1
        # The changes logged so far are in what is read below; those logged from now on are applied after.
        covered = [int(r["id"]) for r in tx._all("SELECT id FROM index_log WHERE store_id = %s", (store_id,))]
        collection = self._collection(store_id, generation, create=True)
        position = 0
        while rows := tx.store_memories(store_id, position, _BATCH):
            self._upsert(collection, rows)
            position = rows[-1].position
        tx.conn.execute("UPDATE stores SET index_generation = %s WHERE id = %s", (generation, store_id))
        tx.delete_index_changes(covered)
        self._suspect.discard(store_id)
        self._drop_collections(store_id, keep=self._name(store_id, generation))

    def _verify(self, tx: PostgresWriter) -> None:
        """Every so often (at once after a query missed a collection): each built store's collection exists and
        holds as many memories as the record; else it is rebuilt."""
        if not self._suspect and time.monotonic() - self._verified_at < VERIFY_SECONDS:
            return
        counts = {
            int(r["id"]): (int(r["index_generation"]), int(r["n"]))
            for r in tx._all(
                "SELECT s.id, s.index_generation, (SELECT count(*) FROM memories m WHERE m.store_id = s.id) AS n"
                " FROM stores s WHERE s.index_generation > 0"
                " AND NOT EXISTS (SELECT 1 FROM index_log l WHERE l.store_id = s.id)"
            )
        }
        for store_id, (generation, expected) in counts.items():
            try:
                collection = self._collection(store_id, generation)
                with _chroma("count a collection"):
                    found: int | None = collection.count()
            except StorageError:
                found = None
            if found != expected:
                self._rebuild(tx, store_id, f"its collection holds {found} memories, the record {expected}")
        self._suspect.clear()
        self._verified_at = time.monotonic()

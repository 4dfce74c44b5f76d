"""The record's exact vector scan, answered from memory: :class:`~.matrix_budget.VectorMatrices` loaded from the
record at a store's first use and kept in step with it through the change log the vector index reads.

The log (``index_log``) names every memory a transaction added, changed or removed. The feed applies it with its own
cursor (the current rows of the named memories become upserts, the missing ones removals), before each answer, so a
search sees every committed write. The record trims the log only up to what the feed has applied
(:attr:`MatrixFeed.log_needed_after`) and notes how far it trimmed (``index_log_trimmed``); if entries the feed never
saw are gone anyway, the feed notices it and loads the stores it holds again, so an answer is never stale.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ...filters import ReadFilter
from ..matrix_budget import DEFAULT_MAX_MEMORIES, VectorMatrices
from ..vector_matrix import SHORTLIST_ABOVE, FloatRows, MatrixRows
from .connections import Connections
from .sql import memory_sql

_COLUMNS = "seq, id, app_id, tenant_id, agent_id, run_id, memory_type, event_time, embedding"
_BATCH = 5000
TRIMMED = "index_log_trimmed"  # the last log position deleted, in the record's meta table


class MatrixFeed:
    """Exact nearest neighbours from memory for the stores of ``record`` that fit in ``max_memories``.

    Args:
        record: the system of record, whose ``index_log`` names every change.
        max_memories: the memory bound (see :class:`~.matrix_budget.VectorMatrices`).
        quantized: int8 matrices (4x smaller, a slower scan), their best candidates re-scored from the record.
        shortlist_above: see :class:`~memory_plugin.storage.vector_matrix.VectorMatrix`.
    """

    def __init__(
        self,
        record: Connections,
        max_memories: int = DEFAULT_MAX_MEMORIES,
        *,
        quantized: bool = False,
        shortlist_above: int = SHORTLIST_ABOVE,
    ) -> None:
        self._record = record
        self.matrices = VectorMatrices(
            max_memories,
            quantized=quantized,
            exact_vectors=self.exact_vectors if quantized else None,
            shortlist_above=shortlist_above,
        )
        self._lock = threading.Lock()  # one feeder at a time; answers are read from snapshots without it
        with record.reading() as conn:
            self._applied = _last_entry(conn)

    @property
    def log_needed_after(self) -> int | None:
        """The vector index may delete log entries up to this position; ``None``: up to any (no store is held).
        Deleting more only costs a load of the stores held, never a stale answer."""
        return self._applied if self.matrices.held() else None

    def nearest(self, read: ReadFilter, vector: np.ndarray, k: int) -> dict[int, float] | None:
        """Positions and exact cosines of the ``k`` memories nearest ``vector`` among those ``read`` allows, or
        ``None`` when the store is not held in memory (over the bound): the caller then asks the vector index."""
        self.catch_up(read.store_id)
        within = None
        if read.metadata:  # the record evaluates metadata, with the same SQL as every other read
            where, params = memory_sql(read)
            with self._record.reading() as conn:
                within = {int(r[0]) for r in conn.execute(f"SELECT m.seq FROM memories m WHERE {where}", params)}
        return self.matrices.nearest(read, vector, k, within)

    def count(self, read: ReadFilter) -> int | None:
        """How many memories ``read`` allows, counted in memory; ``None`` when the store is not held or ``read``
        filters on metadata (the record counts those)."""
        if read.metadata:
            return None
        self.catch_up(read.store_id)
        return self.matrices.count(read)

    def catch_up(self, store_id: int | None = None) -> None:
        """Apply the changes logged since the last call; then load ``store_id`` if it is wanted and fits."""
        with self._lock:
            self._apply_log()
            if store_id is not None and self.matrices.wants(store_id):
                self._load(store_id)

    def drop_store(self, store_id: int) -> None:
        with self._lock:
            self.matrices.drop(store_id)

    def _apply_log(self) -> None:
        with self._record.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (TRIMMED,)).fetchone()
            trimmed = int(row[0]) if row else 0
            entries = conn.execute(
                "SELECT seq, store_id, memory_id FROM index_log WHERE seq > ? ORDER BY seq", (self._applied,)
            ).fetchall()
        if trimmed > self._applied:  # entries this feed never saw were deleted: start again from the record
            for store_id in self.matrices.held():
                self.matrices.drop(store_id)
        if not entries:
            self._applied = max(self._applied, trimmed)
            return
        by_store: dict[int, list[str]] = {}
        for entry in entries:
            by_store.setdefault(int(entry["store_id"]), []).append(entry["memory_id"])
        for store_id, memory_ids in by_store.items():
            if not self.matrices.wants(store_id):  # held, or refused and counting its removals
                self._apply_store(store_id, list(dict.fromkeys(memory_ids)))
        self._applied = int(entries[-1]["seq"])

    def _apply_store(self, store_id: int, memory_ids: list[str]) -> None:
        for start in range(0, len(memory_ids), _BATCH):
            wanted = memory_ids[start : start + _BATCH]
            marks = ",".join("?" * len(wanted))
            with self._record.reading() as conn:  # ids are unique in the record: their own index finds them
                found = conn.execute(f"SELECT store_id, {_COLUMNS} FROM memories WHERE id IN ({marks})", wanted)
                rows = [row for row in found.fetchall() if row["store_id"] == store_id]
            present = {row["id"] for row in rows}
            upserts = MatrixRows.from_rows(rows, _dimension(self._record, store_id)) if rows else None
            self.matrices.apply(store_id, upserts, [i for i in wanted if i not in present])

    def _load(self, store_id: int) -> None:
        with self._record.reading() as conn:
            count = int(conn.execute("SELECT count(*) FROM memories WHERE store_id = ?", (store_id,)).fetchone()[0])
        self.matrices.load(store_id, _dimension(self._record, store_id), count, self.rows(store_id))

    def rows(self, store_id: int) -> Iterator[MatrixRows]:
        """The store's memories in position order, one read transaction per batch (changes committed meanwhile
        are in the log, after the cursor, and applied next)."""
        dimension, last = _dimension(self._record, store_id), 0
        while True:
            with self._record.reading() as conn:
                rows = conn.execute(  # NOT INDEXED: a walk by position, not a sort of the store per batch
                    f"SELECT {_COLUMNS} FROM memories NOT INDEXED WHERE seq > ? AND store_id = ? ORDER BY seq LIMIT ?",
                    (last, store_id, _BATCH),
                ).fetchall()
            if not rows:
                return
            yield MatrixRows.from_rows(rows, dimension)
            last = int(rows[-1]["seq"])

    def exact_vectors(self, store_id: int, seqs: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], FloatRows]:
        """The record's float32 vectors at ``seqs`` (those still there): what re-scores an int8 matrix's best
        candidates. Pass it as ``VectorMatrices(quantized=True, exact_vectors=feed.exact_vectors)``."""
        marks = ",".join("?" * len(seqs))
        with self._record.reading() as conn:
            rows = conn.execute(  # NOT INDEXED: lookups by position, not a walk of the store's scope index
                f"SELECT seq, embedding FROM memories NOT INDEXED WHERE seq IN ({marks}) AND store_id = ?",
                [*seqs.tolist(), store_id],
            ).fetchall()
        vectors = np.frombuffer(b"".join(r["embedding"] for r in rows), dtype=np.float32)
        return np.array([r["seq"] for r in rows], dtype=np.int64), vectors.reshape(len(rows), -1)


def _last_entry(conn: Any) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0])


def _dimension(record: Connections, store_id: int) -> int:
    with record.reading() as conn:
        row = conn.execute("SELECT dimension FROM stores WHERE id = ?", (store_id,)).fetchone()
    return int(row[0])

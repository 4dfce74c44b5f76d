"""Which memory stores are held in memory as :class:`~.vector_matrix.VectorMatrix`, within a bound.

:class:`VectorMatrices` holds stores up to ``max_memories`` memories in all, first come first held. For a store it
does not hold, :meth:`VectorMatrices.nearest` returns ``None``: the caller then asks the approximate index.

Memory, measured for 100,000 memories of 384 dimensions (``benchmarks/vector_recall.py``): 184 MB resident with
float32 rows, 69 MB with ``quantized`` int8 rows, ids and the tail buffer included, plus 51 MB for the projection a
store of more than ``shortlist_above`` memories keeps (see :mod:`.vector_matrix`); a load holds about twice that
for a moment. The default bound, 200,000 memories, is about 470 MB when full.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

from ..filters import ReadFilter
from .vector_matrix import MIN_TAIL_ROWS, SHORTLIST_ABOVE, ExactVectors, MatrixRows, VectorMatrix

DEFAULT_MAX_MEMORIES = 200_000


class VectorMatrices:
    """The stores held in memory, within ``max_memories`` memories in all, first come first held.

    The contract with the caller (the search, fed by the vector-index change log):

    - :meth:`nearest` answers exactly for a store it holds, and returns ``None`` for any other store: the caller
      then asks the approximate index.
    - :meth:`wants` says a store is worth loading: not held, and not known to be too large for the room left.
      The caller then loads it with :meth:`load` from the record, under the lock that feeds changes, so that no
      change is applied to the matrix before the rows it replaces were loaded.
    - :meth:`apply` takes every change of the log, for every store. A held store that grows past the bound is
      let go (its memory freed) and answers ``None`` from then on; a store not held only has its removals
      counted, so that it is wanted again once it fits.
    """

    def __init__(
        self,
        max_memories: int = DEFAULT_MAX_MEMORIES,
        *,
        quantized: bool = False,
        exact_vectors: ExactVectors | None = None,
        min_tail_rows: int = MIN_TAIL_ROWS,
        shortlist_above: int = SHORTLIST_ABOVE,
    ) -> None:
        if max_memories < 0:
            raise ValueError(f"max_memories must be >= 0, got {max_memories}")
        if quantized and exact_vectors is None:
            raise ValueError("quantized matrices need exact_vectors to re-score their best candidates")
        self.max_memories = max_memories
        self._options: dict[str, Any] = {
            "quantized": quantized,
            "exact_vectors": exact_vectors,
            "min_tail_rows": min_tail_rows,
            "shortlist_above": shortlist_above,
        }
        self._held: dict[int, VectorMatrix] = {}
        self._too_large: dict[int, int] = {}  # store not held -> its size when refused, less the removals since
        self._lock = threading.Lock()

    @property
    def memories(self) -> int:
        """Memories held, in all stores."""
        return sum(len(m) for m in list(self._held.values()))

    @property
    def resident_bytes(self) -> int:
        return sum(m.resident_bytes for m in list(self._held.values()))

    def holds(self, store_id: int) -> bool:
        return store_id in self._held

    def held(self) -> list[int]:
        """The stores held."""
        return list(self._held)

    def wants(self, store_id: int) -> bool:
        """The store is not held and may fit in the room left."""
        if store_id in self._held:
            return False
        return self._too_large.get(store_id, 0) <= self.max_memories - self.memories

    def load(self, store_id: int, dimension: int, count: int, batches: Iterable[MatrixRows]) -> bool:
        """Hold the store's ``count`` memories, read in ``batches`` (not read at all when ``count`` does not fit);
        ``False`` when they do not fit, and nothing is held."""
        with self._lock:
            self._held.pop(store_id, None)
            room = self.max_memories - self.memories
            taken: list[MatrixRows] = []
            read = 0
            if count <= room:
                for batch in batches:  # the count may be stale: the store can grow while it is read
                    taken.append(batch)
                    read += len(batch)
                    if read > room:
                        break
            count = max(count, read)
            if count > room:
                self._too_large[store_id] = count
                return False
            matrix = VectorMatrix(store_id, dimension, **self._options)
            matrix.replace_all(taken)
            self._held[store_id] = matrix
            self._too_large.pop(store_id, None)
            return True

    def apply(self, store_id: int, upserts: MatrixRows | None = None, removals: Collection[str] = ()) -> None:
        """Apply one store's changes (the current rows of changed memories, the ids of removed ones)."""
        with self._lock:
            matrix = self._held.get(store_id)
            if matrix is None:
                if store_id in self._too_large:
                    self._too_large[store_id] -= len(removals)
                return
            try:
                matrix.apply(upserts, removals)
            except BaseException:  # half applied, maybe: load it again from the record at its next use
                del self._held[store_id]
                raise
            if self.memories > self.max_memories:
                del self._held[store_id]
                self._too_large[store_id] = len(matrix)

    def drop(self, store_id: int) -> None:
        """Forget a store (deleted, or its index rebuilt)."""
        with self._lock:
            self._held.pop(store_id, None)
            self._too_large.pop(store_id, None)

    def nearest(
        self, read: ReadFilter, vector: np.ndarray, k: int, within: Collection[int] | None = None
    ) -> dict[int, float] | None:
        """:meth:`VectorMatrix.nearest` for the store of ``read``, or ``None`` when that store is not held."""
        matrix = self._held.get(read.store_id)
        return None if matrix is None else matrix.nearest(read, vector, k, within)

    def count(self, read: ReadFilter) -> int | None:
        """:meth:`VectorMatrix.count` for the store of ``read``, or ``None`` when that store is not held."""
        matrix = self._held.get(read.store_id)
        return None if matrix is None else matrix.count(read)

"""Exact nearest-neighbour search over memory stores' embeddings, held in memory in step with the record.

Why: the vector index (Chroma's HNSW) is approximate, and clusters of near-duplicate memories ("ok", "thanks",
repeated questions) starve its graph of links to the one distinctive memory a query is about (issue 17). A scan of
every embedding in the scope is exact, and over one contiguous float32 matrix it takes a few milliseconds for
100,000 x 384 on one core (``benchmarks/vector_recall.py``): less than one filtered HNSW query.

Layout. A store's rows live in two segments. The *main* segment is one contiguous matrix whose rows are sorted by
(app, tenant), so the memories of one tenant, or of one app, are one slice: a query scoped to one tenant reads
only that tenant's rows, and an all-tenant query is one pass over the matrix. New and changed rows are appended to
a small *tail* segment and the rows they replace are masked; when the tail is full, or a quarter of the main
segment is masked, both are merged into a new main segment. Scope segments and memory types are kept as integer
codes beside each row, with the event time, so those filters are masks over the slice. Metadata filters are the
record's: the caller passes the positions it allows (``within``).

Concurrency. A query reads one immutable snapshot; a writer (one at a time) builds the next snapshot and publishes
it with one assignment. The tail's buffers are shared between snapshots, but a writer only fills rows past the
last published length, which no snapshot reads. Queries never wait for writers.

Long scans. A main segment of more than ``shortlist_above`` rows also keeps each row projected onto its first 128
principal directions (from a sample of 4,096 rows, computed when the segment is built). A scan of that many rows
ranks them on the projection (a third of the bytes, in two parts on two threads), then scores exactly the best 2%,
at least 1,000 and 25 per result wanted. At 100,000 memories (``benchmarks/vector_recall.py``) recall@40 against
the full scan was 0.996 on a needle among near-duplicates and 1.000 on LoCoMo + PrefEval text, and the scan took
3 ms instead of 9.

Memory: ``dimension x 4`` bytes per memory (1,536 for 384 dimensions; ``dimension`` bytes with ``quantized=True``)
plus about 200 bytes of codes, position, time and id (and 512 of projection in a long store), and a tail buffer of
1/16 of the rows; :mod:`.matrix_budget` bounds it.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ..filters import ReadFilter
from ..scope import WILDCARD

FloatRows = npt.NDArray[np.float32]
# (store id, positions) -> (the positions still in the record, their float32 embeddings): the exact vectors that
# re-score the best candidates of a quantised scan.
ExactVectors = Callable[[int, npt.NDArray[np.int64]], tuple[npt.NDArray[np.int64], FloatRows]]

# The tail holds at least this many rows, and at least this share of the main segment, before a merge.
MIN_TAIL_ROWS = 1024
_TAIL_SHARE = 16
# A quantised scan re-scores this many times ``k`` of its best candidates with the exact vectors.
RESCORE_FACTOR = 4
# A scan of more rows than this (the default of ``shortlist_above``) first ranks them by their projection onto the
# main segment's principal directions, a third of the bytes, and scores exactly only the best of them: the
# shortlist, this share of the rows scanned and at least ``SHORTLIST_MIN_ROWS`` and ``SHORTLIST_PER_RESULT x k``.
# At 100,000 memories this kept recall@40 at 0.996 (needle case) and 1.000 (real text) against the full scan.
SHORTLIST_ABOVE = 20_000
REDUCED_DIMENSION = 128
SHORTLIST_SHARE = 1 / 50
SHORTLIST_MIN_ROWS = 1000
SHORTLIST_PER_RESULT = 25
# A projection of at least this many rows is ranked in ``_SCAN_PARTS`` parts at once, and at least this many rows
# gathered from the matrix (a shortlist) are scored so.
_PARALLEL_ROWS = 50_000
_PARALLEL_GATHER = SHORTLIST_MIN_ROWS
_SCAN_PARTS = 2
_scan_threads: ThreadPoolExecutor | None = None
_scan_threads_lock = threading.Lock()
_T = TypeVar("_T")
# Rows whose principal directions are computed when a main segment is built.
_SAMPLE_ROWS = 4096
# Rows converted from int8 at a time: the float32 copy stays in the CPU cache.
_QUANTISED_BLOCK = 2048
# Rows moved at a time when segments are merged.
_PLACE_CHUNK = 8192
# Code columns: which scope segment or field each row of a block's ``codes`` holds.
_APP, _TENANT, _AGENT, _RUN, _TYPE = range(5)
_FIELDS = ("app_id", "tenant_id", "agent_id", "run_id", "memory_type")
_NO_ROWS = np.zeros(0, dtype=np.int64)


def _dot(matrix: np.ndarray, vector: np.ndarray) -> FloatRows:
    # einsum runs in one thread: BLAS worker threads spinning after a matvec slow the next query embedding, and a
    # multi-threaded matvec measured slower here than one thread on a busy machine.
    scores: FloatRows = np.einsum("ij,j->i", matrix, vector)
    return scores


@dataclass(frozen=True)
class MatrixRows:
    """Memories as the matrix keeps them: one entry per memory in every column.

    Build it from record rows with :meth:`from_rows`.
    """

    seqs: npt.NDArray[np.int64]
    memory_ids: Sequence[str]
    app_ids: Sequence[str]
    tenant_ids: Sequence[str]
    agent_ids: Sequence[str]
    run_ids: Sequence[str]
    memory_types: Sequence[str]
    event_times: npt.NDArray[np.float64]
    vectors: FloatRows

    def __len__(self) -> int:
        return len(self.seqs)

    @classmethod
    def from_rows(cls, rows: Sequence[Any], dimension: int) -> MatrixRows:
        """Columns of record rows that have the keys ``seq, id, app_id, tenant_id, agent_id, run_id, memory_type,
        event_time`` and ``embedding`` (float32 bytes)."""
        blobs = b"".join(row["embedding"] for row in rows)
        return cls(
            seqs=np.fromiter((row["seq"] for row in rows), dtype=np.int64, count=len(rows)),
            memory_ids=[row["id"] for row in rows],
            app_ids=[row["app_id"] for row in rows],
            tenant_ids=[row["tenant_id"] for row in rows],
            agent_ids=[row["agent_id"] for row in rows],
            run_ids=[row["run_id"] for row in rows],
            memory_types=[row["memory_type"] for row in rows],
            event_times=np.fromiter((row["event_time"] for row in rows), dtype=np.float64, count=len(rows)),
            vectors=np.frombuffer(blobs, dtype=np.float32).reshape(len(rows), dimension),
        )

    def labels(self, field: int) -> Sequence[str]:
        return (self.app_ids, self.tenant_ids, self.agent_ids, self.run_ids, self.memory_types)[field]


class _Codes:
    """Integer codes of the values of one field (an app id, a run id, a memory type...). Only ever grows between
    merges, so a code never changes meaning for a snapshot that holds this object."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = list(names)
        self.ids = {name: code for code, name in enumerate(self.names)}

    def code(self, name: str) -> int:
        found = self.ids.get(name)
        if found is None:
            found = self.ids[name] = len(self.names)
            self.names.append(name)
        return found

    def known(self, names: str | Iterable[str]) -> npt.NDArray[np.int32]:
        """Codes of the ``names`` seen so far (an unknown name matches no row)."""
        listed = [names] if isinstance(names, str) else names
        return np.array([self.ids[n] for n in listed if n in self.ids], dtype=np.int32)


@dataclass(frozen=True)
class _Block:
    """Rows in matrix form: ids, vectors (float32, or int8 with per-row scales), positions, codes, times."""

    ids: npt.NDArray[np.object_]
    vectors: np.ndarray
    scales: FloatRows | None
    seqs: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int32]  # (5, rows)
    times: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.seqs)

    def take(self, rows: np.ndarray) -> _Block:
        return _Block(
            self.ids[rows],
            self.vectors[rows],
            None if self.scales is None else self.scales[rows],
            self.seqs[rows],
            self.codes[:, rows],
            self.times[rows],
        )


def _empty_block(capacity: int, dimension: int, quantized: bool) -> _Block:
    return _Block(
        np.empty(capacity, dtype=object),
        np.empty((capacity, dimension), dtype=np.int8 if quantized else np.float32),
        np.empty(capacity, dtype=np.float32) if quantized else None,
        np.empty(capacity, dtype=np.int64),
        np.empty((len(_FIELDS), capacity), dtype=np.int32),
        np.empty(capacity, dtype=np.float64),
    )


def _quantise(vectors: FloatRows) -> tuple[npt.NDArray[np.int8], FloatRows]:
    """Symmetric int8 per row: ``row ~= codes x scale``."""
    scales = np.abs(vectors).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    codes = np.rint(vectors / scales[:, None]).astype(np.int8)
    return codes, scales.astype(np.float32)


def _floats(block: _Block, rows: np.ndarray) -> FloatRows:
    """The float32 vectors of ``rows`` (int8 rows scaled back)."""
    vectors = block.vectors[rows]
    if block.scales is None:
        return np.asarray(vectors, dtype=np.float32)
    scaled: FloatRows = vectors.astype(np.float32) * block.scales[rows, None]
    return scaled


@dataclass(frozen=True)
class _Projection:
    """A main segment's rows projected onto its first principal directions (found on a sample of its rows). A scan
    of more than ``above`` rows ranks them on these first and scores exactly only the best (:meth:`shortlist`)."""

    basis: FloatRows  # (dimension, reduced dimension), orthonormal columns
    rows: FloatRows  # (rows, reduced dimension)
    above: int

    @classmethod
    def of(cls, block: _Block, size: int, above: int) -> _Projection:
        sample = np.sort(np.random.default_rng(0).choice(size, min(size, _SAMPLE_ROWS), replace=False))
        vectors = _floats(block, sample)
        _, _, directions = np.linalg.svd(vectors - vectors.mean(axis=0), full_matrices=False)
        reduced = min(REDUCED_DIMENSION, block.vectors.shape[1] // 3)
        basis = np.ascontiguousarray(directions[:reduced].T, dtype=np.float32)
        rows = np.empty((size, reduced), dtype=np.float32)
        for start in range(0, size, _PLACE_CHUNK):
            stop = min(size, start + _PLACE_CHUNK)
            rows[start:stop] = _floats(block, np.arange(start, stop)) @ basis
        return cls(basis, rows, above)

    def shortlist(
        self, start: int, stop: int, vector: FloatRows, allowed: npt.NDArray[np.bool_] | None, k: int
    ) -> npt.NDArray[np.int64] | None:
        """The rows of ``start:stop`` (among the ``allowed``) worth scoring exactly for the ``k`` best, sorted; or
        ``None`` when so few are allowed that all are."""
        count = stop - start if allowed is None else int(allowed.sum())
        keep = max(SHORTLIST_MIN_ROWS, SHORTLIST_PER_RESULT * k, int(count * SHORTLIST_SHARE))
        if count <= self.above or keep * 4 >= count:
            return None
        query = vector @ self.basis
        cuts = np.linspace(start, stop, 2 if stop - start < _PARALLEL_ROWS else _SCAN_PARTS + 1).astype(int).tolist()
        parts = [
            (a, b, None if allowed is None else allowed[a - start : b - start]) for a, b in itertools.pairwise(cuts)
        ]
        found = _in_parallel([functools.partial(self._best, a, b, query, part, keep) for a, b, part in parts])
        rows, scores = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
        if len(rows) > keep:
            rows = rows[np.argpartition(scores, len(scores) - keep)[len(scores) - keep :]]
        return np.sort(rows)

    def _best(
        self, start: int, stop: int, query: FloatRows, allowed: npt.NDArray[np.bool_] | None, keep: int
    ) -> tuple[npt.NDArray[np.int64], FloatRows]:
        """The ``keep`` rows of ``start:stop`` (allowed ones first) nearest ``query`` in the projection."""
        approximate = _dot(self.rows[start:stop], query)
        if allowed is not None:
            approximate[~allowed] = -np.inf
        keep = min(keep, len(approximate))
        best = np.argpartition(approximate, len(approximate) - keep)[len(approximate) - keep :]
        return best + start, approximate[best]


def _in_parallel(calls: list[Callable[[], _T]]) -> list[_T]:
    """The results of ``calls``, all but the last run on the scan threads while this thread runs the last: numpy
    releases the GIL, so a long scan takes about half the time on two cores."""
    global _scan_threads
    if len(calls) == 1:
        return [calls[0]()]
    with _scan_threads_lock:
        if _scan_threads is None:
            _scan_threads = ThreadPoolExecutor(_SCAN_PARTS - 1, thread_name_prefix="memory-plugin-scan")
        pending = [_scan_threads.submit(call) for call in calls[:-1]]
    last = calls[-1]()
    return [*(p.result() for p in pending), last]


def _forget_scan_threads() -> None:
    """In a forked child: the parent's scan thread does not exist there, so the next long scan starts its own."""
    global _scan_threads, _scan_threads_lock
    _scan_threads, _scan_threads_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_scan_threads)


@dataclass(frozen=True)
class _Segment:
    """The first ``size`` rows of ``rows``; ``alive`` is ``None`` when none of them is masked. A main segment of
    many rows has their ``projection``."""

    rows: _Block
    size: int
    alive: npt.NDArray[np.bool_] | None
    projection: _Projection | None = None

    @property
    def dead(self) -> int:
        return 0 if self.alive is None else self.size - int(self.alive.sum())

    def live(self) -> tuple[_Block, npt.NDArray[np.int64]]:
        """The rows and the indices of its unmasked rows."""
        return self.rows, np.arange(self.size) if self.alive is None else np.flatnonzero(self.alive)

    def scores(self, start: int, stop: int, vector: FloatRows, rows: np.ndarray | None) -> FloatRows:
        """Similarity of ``vector`` to rows ``start:stop`` (or to ``rows`` among them), exact for float32 rows and
        within a rounding error for int8 rows."""
        block = self.rows
        if rows is not None and len(rows) * 4 < stop - start:  # a few rows: gather them
            if len(rows) < _PARALLEL_GATHER:
                return self._gathered(rows, vector)
            parts = np.array_split(rows, _SCAN_PARTS)
            return np.concatenate(_in_parallel([functools.partial(self._gathered, part, vector) for part in parts]))
        if block.scales is None:
            scores = _dot(block.vectors[start:stop], vector)
        else:
            scores = np.empty(stop - start, dtype=np.float32)
            buffer = np.empty((_QUANTISED_BLOCK, vector.shape[0]), dtype=np.float32)
            for at in range(start, stop, _QUANTISED_BLOCK):
                part = block.vectors[at : min(stop, at + _QUANTISED_BLOCK)]
                np.copyto(buffer[: len(part)], part, casting="unsafe")
                scores[at - start : at - start + len(part)] = _dot(buffer[: len(part)], vector)
            scores *= block.scales[start:stop]
        return scores if rows is None else scores[rows - start]

    def _gathered(self, rows: np.ndarray, vector: FloatRows) -> FloatRows:
        block = self.rows
        chosen = block.vectors[rows]
        if block.scales is None:
            return _dot(chosen, vector)
        scaled: FloatRows = _dot(chosen.astype(np.float32), vector) * block.scales[rows]
        return scaled


@dataclass(frozen=True)
class _Snapshot:
    codes: tuple[_Codes, ...]  # one per field of _FIELDS
    main: _Segment
    tail: _Segment
    tenant_rows: dict[tuple[int, int], tuple[int, int]]  # (app, tenant) -> its slice of the main segment
    app_rows: dict[int, tuple[int, int]]  # app -> its slice of the main segment

    def ranges(self, query: _Query) -> list[tuple[int, int]]:
        """The slices of the main segment that can hold rows of ``query``: its app's, or its tenants'."""
        if query.tenants is None:
            return [self.app_rows[query.app]] if query.app in self.app_rows else []
        found = (self.tenant_rows.get((query.app, int(tenant))) for tenant in query.tenants)
        return [rows for rows in found if rows is not None]


@dataclass(frozen=True)
class _Query:
    """A read filter in codes; ``None`` for a field means any value."""

    app: int
    tenants: npt.NDArray[np.int32] | None
    agents: npt.NDArray[np.int32] | None
    runs: npt.NDArray[np.int32] | None
    types: npt.NDArray[np.int32] | None
    start: float | None
    end: float | None
    within: npt.NDArray[np.int64] | None

    @classmethod
    def of(cls, read: ReadFilter, codes: tuple[_Codes, ...], within: Collection[int] | None) -> _Query | None:
        """The query, or ``None`` when no row can match (a value no row has)."""
        app = codes[_APP].ids.get(read.scope.app_id)
        if app is None:
            return None
        wanted: dict[int, npt.NDArray[np.int32] | None] = {}
        for field, value in (
            (_TENANT, read.scope.tenant_id),
            (_AGENT, read.scope.agent_id),
            (_RUN, read.scope.run_id),
            (_TYPE, read.memory_types or WILDCARD),
        ):
            known = None if value == WILDCARD else codes[field].known(value)
            if known is not None and not len(known):
                return None
            wanted[field] = known
        return cls(
            app,
            wanted[_TENANT],
            wanted[_AGENT],
            wanted[_RUN],
            wanted[_TYPE],
            start=None if read.start_time is None else read.start_time.timestamp(),
            end=None if read.end_time is None else read.end_time.timestamp(),
            within=None if within is None else np.fromiter(within, dtype=np.int64, count=len(within)),
        )

    def mask(self, segment: _Segment, start: int, stop: int, whole_scope: bool) -> npt.NDArray[np.bool_] | None:
        """Which rows of ``start:stop`` pass (``None``: all); app and tenant are checked only when
        ``whole_scope`` (the main segment's slices already hold one app or tenant)."""
        rows = segment.rows
        conditions: list[npt.NDArray[np.bool_]] = []
        if segment.alive is not None:
            conditions.append(segment.alive[start:stop])
        fields = ((_APP, np.array([self.app])), (_TENANT, self.tenants)) if whole_scope else ()
        for field, codes in (*fields, (_AGENT, self.agents), (_RUN, self.runs), (_TYPE, self.types)):
            if codes is not None:
                column = rows.codes[field, start:stop]
                conditions.append(column == codes[0] if len(codes) == 1 else np.isin(column, codes))
        if self.start is not None:
            conditions.append(rows.times[start:stop] >= self.start)
        if self.end is not None:
            conditions.append(rows.times[start:stop] <= self.end)
        if self.within is not None:
            conditions.append(np.isin(rows.seqs[start:stop], self.within))
        if not conditions:
            return None
        combined = conditions[0].copy()
        for condition in conditions[1:]:
            combined &= condition
        return combined


def _best(seqs: npt.NDArray[np.int64], scores: FloatRows, k: int) -> tuple[npt.NDArray[np.int64], FloatRows]:
    if len(scores) > k:
        keep = np.argpartition(scores, len(scores) - k)[len(scores) - k :]
        return seqs[keep], scores[keep]
    return seqs, scores


class VectorMatrix:
    """One store's embeddings in memory, with exact scope-filtered nearest-neighbour queries.

    Args:
        dimension: length of every vector.
        quantized: keep the main segment as int8 (4x less memory, a slower scan); the best
            ``RESCORE_FACTOR x k`` candidates are then re-scored with ``exact_vectors``, so scores stay exact.
        exact_vectors: required with ``quantized``; reads float32 vectors by position (from the record).
        min_tail_rows: rows the tail holds at least before a merge (small values exercise merging in tests).
        shortlist_above: a scan of more rows than this scores exactly only a shortlist picked on the main
            segment's projection (``0``: every scan scores every row).
    """

    def __init__(
        self,
        store_id: int,
        dimension: int,
        *,
        quantized: bool = False,
        exact_vectors: ExactVectors | None = None,
        min_tail_rows: int = MIN_TAIL_ROWS,
        shortlist_above: int = SHORTLIST_ABOVE,
    ) -> None:
        if quantized and exact_vectors is None:
            raise ValueError("a quantized matrix needs exact_vectors to re-score its best candidates")
        self.store_id = store_id
        self.dimension = dimension
        self._quantized = quantized
        self._exact_vectors = exact_vectors
        self._min_tail = min_tail_rows
        self._shortlist_above = shortlist_above
        self._write_lock = threading.Lock()
        self._slots: dict[str, int] = {}  # memory id -> main row (>= 0) or tail row (-1 - row); writers only
        self._snapshot = self._merged([], tuple(_Codes() for _ in _FIELDS))

    def __len__(self) -> int:
        """Memories held."""
        return len(self._slots)

    @property
    def resident_bytes(self) -> int:
        """Bytes of the arrays held (the ids' strings, kept by the record's rows too, are not counted)."""
        snapshot = self._snapshot
        total = 0
        for segment in (snapshot.main, snapshot.tail):
            block = segment.rows
            total += block.vectors.nbytes + block.seqs.nbytes + block.codes.nbytes + block.times.nbytes
            total += block.ids.nbytes + (0 if block.scales is None else block.scales.nbytes)
            total += 0 if segment.alive is None else segment.alive.nbytes
            projection = segment.projection
            total += 0 if projection is None else projection.rows.nbytes + projection.basis.nbytes
        return total

    # ---- writes ----------------------------------------------------------------------------------------------

    def apply(self, upserts: MatrixRows | None = None, removals: Iterable[str] = ()) -> None:
        """Make the matrix hold ``upserts`` (new memories, or new versions by memory id) and not hold the
        memories ``removals`` names. Unknown removals are ignored, so a change can be applied twice."""
        with self._write_lock:
            snapshot = self._snapshot
            new = self._encode(upserts, snapshot.codes) if upserts is not None and len(upserts) else None
            gone = set(removals) | (set() if new is None else set(new.ids.tolist()))
            main_alive, tail_alive = snapshot.main.alive, snapshot.tail.alive
            slots = [s for s in (self._slots.pop(i, None) for i in gone) if s is not None]
            main_alive = _masked(main_alive, snapshot.main.size, [s for s in slots if s >= 0])
            tail_alive = _masked(tail_alive, snapshot.tail.size, [-1 - s for s in slots if s < 0])
            main = dataclasses.replace(snapshot.main, alive=main_alive)
            tail = _Segment(snapshot.tail.rows, snapshot.tail.size, tail_alive)
            added = 0 if new is None else len(new)
            if tail.size + added > len(tail.rows.seqs) or main.dead * 4 > max(main.size, self._min_tail):
                parts = [main.live(), tail.live(), *([] if new is None else [(new, np.arange(added))])]
                self._snapshot = self._merged(parts, snapshot.codes)
                return
            if new is not None:
                _write(tail.rows, tail.size, new, self._slots)
                tail_alive = None if tail_alive is None else np.concatenate([tail_alive, np.ones(added, bool)])
            self._snapshot = _Snapshot(
                snapshot.codes,
                main,
                _Segment(tail.rows, tail.size + added, tail_alive),
                snapshot.tenant_rows,
                snapshot.app_rows,
            )

    def replace_all(self, batches: Iterable[MatrixRows]) -> None:
        """Hold exactly these memories (a load from the record)."""
        with self._write_lock:
            codes = tuple(_Codes() for _ in _FIELDS)
            self._slots = {}
            blocks = [self._encode(b, codes) for b in batches if len(b)]
            self._snapshot = self._merged([(b, np.arange(len(b))) for b in blocks], codes)

    def _encode(self, rows: MatrixRows, codes: tuple[_Codes, ...]) -> _Block:
        vectors = np.ascontiguousarray(rows.vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(rows), self.dimension):
            raise ValueError(f"expected {len(rows)} vectors of {self.dimension} dimensions, got {vectors.shape}")
        ids = np.array(rows.memory_ids, dtype=object)
        # The last version of a memory named twice wins.
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        column = np.array([[codes[f].code(v) for v in rows.labels(f)] for f in range(len(_FIELDS))], np.int32)
        block = _Block(
            ids,
            vectors,
            None,
            np.asarray(rows.seqs, np.int64),
            column.reshape(len(_FIELDS), -1),
            np.asarray(rows.event_times, np.float64),
        )
        return block if len(keep) == len(ids) else block.take(keep)

    def _merged(self, parts: list[tuple[_Block, npt.NDArray[np.int64]]], codes: tuple[_Codes, ...]) -> _Snapshot:
        """A snapshot whose main segment holds the given rows of each block, sorted by (app, tenant), with an empty
        tail; the code tables are rebuilt so that values no row holds any more are forgotten."""
        size = sum(len(rows) for _, rows in parts)
        merged = _empty_block(size, self.dimension, self._quantized)
        fresh = tuple(_Codes() for _ in _FIELDS)
        if size:
            seqs = np.concatenate([block.seqs[rows] for block, rows in parts])
            old = np.concatenate([block.codes[:, rows] for block, rows in parts], axis=1)
            new_codes = np.empty_like(old)
            for field in range(len(_FIELDS)):
                used, new_codes[field] = np.unique(old[field], return_inverse=True)
                fresh[field].names.extend(codes[field].names[c] for c in used.tolist())
                fresh[field].ids.update((n, c) for c, n in enumerate(fresh[field].names))
            order = np.lexsort((seqs, new_codes[_TENANT], new_codes[_APP]))
            destination = np.empty(size, dtype=np.int64)
            destination[order] = np.arange(size)
            offset = 0
            for block, rows in parts:  # vectors go straight to their place: no second copy of the matrix
                self._place(merged, destination[offset : offset + len(rows)], block, rows)
                offset += len(rows)
            merged.seqs[:] = seqs[order]
            merged.codes[:] = new_codes[:, order]
            merged.times[:] = np.concatenate([block.times[rows] for block, rows in parts])[order]
            merged.ids[:] = np.concatenate([block.ids[rows] for block, rows in parts])[order]
        self._slots = dict(zip(merged.ids.tolist(), range(size), strict=True))
        tenant_rows, app_rows = _slices(merged.codes, size)
        tail = _empty_block(max(self._min_tail, size // _TAIL_SHARE), self.dimension, quantized=False)
        above = self._shortlist_above
        projection = _Projection.of(merged, size, above) if above and size > above else None
        main = _Segment(merged, size, None, projection)
        return _Snapshot(fresh, main, _Segment(tail, 0, None), tenant_rows, app_rows)

    def _place(self, merged: _Block, destination: np.ndarray, block: _Block, rows: np.ndarray) -> None:
        for start in range(0, len(rows), _PLACE_CHUNK):
            to, chunk = destination[start : start + _PLACE_CHUNK], rows[start : start + _PLACE_CHUNK]
            vectors = block.vectors[chunk]
            if merged.scales is None:
                merged.vectors[to] = vectors
            elif block.scales is None:
                merged.vectors[to], merged.scales[to] = _quantise(vectors)
            else:
                merged.vectors[to], merged.scales[to] = vectors, block.scales[chunk]

    # ---- reads -----------------------------------------------------------------------------------------------

    def nearest(
        self, read: ReadFilter, vector: np.ndarray, k: int, within: Collection[int] | None = None
    ) -> dict[int, float]:
        """Record positions and cosines of the ``k`` memories nearest ``vector`` among those ``read`` allows
        (and, if given, among the positions ``within``), with exact cosines. Every allowed row is scored, but in a
        scan of more than ``shortlist_above`` rows only the shortlist its projection picks (near-exact).

        Raises:
            ValueError: ``read`` has metadata filters but no ``within`` (the record evaluates metadata), or
                ``vector`` has the wrong length.
        """
        if read.metadata and within is None:
            raise ValueError("metadata filters are evaluated by the record: pass the positions they allow as within")
        query_vector = np.ascontiguousarray(vector, dtype=np.float32)
        if query_vector.shape != (self.dimension,):
            raise ValueError(f"expected a vector of {self.dimension} dimensions, got shape {query_vector.shape}")
        snapshot = self._snapshot
        query = _Query.of(read, snapshot.codes, within)
        if query is None or k < 1:
            return {}
        ranges = snapshot.ranges(query)
        main = [_scan(snapshot.main, start, stop, query_vector, query, False, k) for start, stop in ranges]
        seqs, scores = _best(*_joined(main), k * RESCORE_FACTOR if self._quantized else k)
        if self._quantized and len(seqs):
            seqs, scores = self._rescored(seqs, query_vector)
        tail = _scan(snapshot.tail, 0, snapshot.tail.size, query_vector, query, True)
        seqs, scores = _best(*_joined([(seqs, scores), tail]), k)
        return dict(zip(seqs.tolist(), scores.tolist(), strict=True))

    def count(self, read: ReadFilter) -> int:
        """How many memories ``read`` allows, without metadata filters (the record evaluates those).

        Raises:
            ValueError: ``read`` has metadata filters.
        """
        if read.metadata:
            raise ValueError("metadata filters are evaluated by the record")
        snapshot = self._snapshot
        query = _Query.of(read, snapshot.codes, None)
        if query is None:
            return 0
        main = sum(_count(snapshot.main, start, stop, query, False) for start, stop in snapshot.ranges(query))
        return main + _count(snapshot.tail, 0, snapshot.tail.size, query, True)

    def _rescored(self, seqs: npt.NDArray[np.int64], vector: FloatRows) -> tuple[npt.NDArray[np.int64], FloatRows]:
        assert self._exact_vectors is not None
        found, vectors = self._exact_vectors(self.store_id, seqs)
        return np.asarray(found, dtype=np.int64), _dot(np.asarray(vectors, dtype=np.float32), vector)


def _masked(alive: npt.NDArray[np.bool_] | None, size: int, dead: list[int]) -> npt.NDArray[np.bool_] | None:
    if not dead:
        return alive
    fresh = np.ones(size, dtype=bool) if alive is None else alive.copy()  # copy: snapshots never change
    fresh[dead] = False
    return fresh


def _write(tail: _Block, at: int, new: _Block, slots: dict[str, int]) -> None:
    """Fill tail rows ``at:at + len(new)``, which no published snapshot reads yet."""
    rows = slice(at, at + len(new))
    tail.ids[rows], tail.vectors[rows], tail.seqs[rows] = new.ids, new.vectors, new.seqs
    tail.codes[:, rows], tail.times[rows] = new.codes, new.times
    slots.update((memory_id, -1 - (at + i)) for i, memory_id in enumerate(new.ids.tolist()))


Slices = dict[tuple[int, int], tuple[int, int]]


def _slices(codes: npt.NDArray[np.int32], size: int) -> tuple[Slices, dict[int, tuple[int, int]]]:
    """The main segment's slice of each (app, tenant) and of each app (rows are sorted by both)."""
    if not size:
        return {}, {}
    apps, tenants = codes[_APP, :size], codes[_TENANT, :size]
    changes = np.flatnonzero((apps[1:] != apps[:-1]) | (tenants[1:] != tenants[:-1])) + 1
    starts = np.concatenate([[0], changes]).tolist()
    stops = [*starts[1:], size]
    tenant_rows = {(int(apps[a]), int(tenants[a])): (a, b) for a, b in zip(starts, stops, strict=True)}
    app_rows: dict[int, tuple[int, int]] = {}
    for (app, _), (a, b) in tenant_rows.items():
        first = app_rows.get(app, (a, b))
        app_rows[app] = (min(first[0], a), max(first[1], b))
    return tenant_rows, app_rows


def _scan(
    segment: _Segment, start: int, stop: int, vector: FloatRows, query: _Query, whole_scope: bool, k: int = 0
) -> tuple[npt.NDArray[np.int64], FloatRows]:
    """Positions and scores of the rows of ``start:stop`` that pass ``query``: all of them, or, given the ``k``
    wanted and a segment with a projection, of its shortlist for many rows."""
    if stop <= start:
        return _NO_ROWS, np.zeros(0, dtype=np.float32)
    mask = query.mask(segment, start, stop, whole_scope)
    shortlist = None if segment.projection is None else segment.projection.shortlist(start, stop, vector, mask, k)
    rows = shortlist if shortlist is not None else None if mask is None else np.flatnonzero(mask) + start
    if rows is not None and not len(rows):
        return _NO_ROWS, np.zeros(0, dtype=np.float32)
    seqs = segment.rows.seqs[start:stop] if rows is None else segment.rows.seqs[rows]
    return seqs, segment.scores(start, stop, vector, rows)


def _count(segment: _Segment, start: int, stop: int, query: _Query, whole_scope: bool) -> int:
    """How many rows of ``start:stop`` pass ``query``."""
    if stop <= start:
        return 0
    mask = query.mask(segment, start, stop, whole_scope)
    return stop - start if mask is None else int(np.count_nonzero(mask))


def _joined(parts: list[tuple[npt.NDArray[np.int64], FloatRows]]) -> tuple[npt.NDArray[np.int64], FloatRows]:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return _NO_ROWS, np.zeros(0, dtype=np.float32)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

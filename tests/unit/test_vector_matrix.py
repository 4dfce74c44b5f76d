"""The in-memory embedding matrix: exact against a brute-force scan under any sequence of changes, never answers
outside the scope, stays within its memory bound, and never shows a reader half of a change."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugin import Scope
from memory_plugin.filters import ReadFilter
from memory_plugin.storage.matrix_budget import VectorMatrices
from memory_plugin.storage.vector_matrix import MatrixRows, VectorMatrix

DIMENSION = 8
APPS = ("app-a", "app-b")
TENANTS = ("t1", "t2", "t3")
AGENTS = ("planner", "helper")
RUNS = ("r1", "r2", "r3")
TYPES = ("message", "fact")


@dataclass(frozen=True)
class Row:
    memory_id: str
    seq: int
    scope: tuple[str, str, str, str]
    memory_type: str
    event_time: float
    vector: np.ndarray


def unit(rng: np.random.Generator, count: int = 1) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def rows_of(rows: list[Row]) -> MatrixRows:
    return MatrixRows(
        seqs=np.array([r.seq for r in rows], dtype=np.int64),
        memory_ids=[r.memory_id for r in rows],
        app_ids=[r.scope[0] for r in rows],
        tenant_ids=[r.scope[1] for r in rows],
        agent_ids=[r.scope[2] for r in rows],
        run_ids=[r.scope[3] for r in rows],
        memory_types=[r.memory_type for r in rows],
        event_times=np.array([r.event_time for r in rows], dtype=np.float64),
        vectors=np.stack([r.vector for r in rows]) if rows else np.zeros((0, DIMENSION), np.float32),
    )


def segment_allows(value: str | tuple[str, ...], actual: str) -> bool:
    return value == "*" or actual == value or (isinstance(value, tuple) and actual in value)


def allowed(row: Row, read: ReadFilter, within: set[int] | None) -> bool:
    scope = read.scope
    return (
        row.scope[0] == scope.app_id
        and segment_allows(scope.tenant_id, row.scope[1])
        and segment_allows(scope.agent_id, row.scope[2])
        and segment_allows(scope.run_id, row.scope[3])
        and (not read.memory_types or row.memory_type in read.memory_types)
        and (read.start_time is None or row.event_time >= read.start_time.timestamp())
        and (read.end_time is None or row.event_time <= read.end_time.timestamp())
        and (within is None or row.seq in within)
    )


def check_exact(
    found: dict[int, float],
    held: dict[str, Row],
    read: ReadFilter,
    vector: np.ndarray,
    k: int,
    within: set[int] | None = None,
) -> None:
    """``found`` is a correct top ``k``: allowed rows only, true scores, and nothing better left out (ties may
    go either way)."""
    inside = {r.seq: float(r.vector.astype(np.float64) @ vector) for r in held.values() if allowed(r, read, within)}
    assert set(found) <= set(inside), "a row outside the filter was returned"
    assert len(found) == min(k, len(inside))
    for seq, score in found.items():
        assert score == pytest.approx(inside[seq], abs=1e-5)
    if found:
        kth_best = sorted(inside.values(), reverse=True)[len(found) - 1]
        assert min(inside[s] for s in found) >= kth_best - 1e-5


tenant_scopes = st.one_of(
    st.just("*"), st.sampled_from(TENANTS), st.lists(st.sampled_from(TENANTS), min_size=2, max_size=3, unique=True)
)


@st.composite
def read_filters(draw: st.DrawFn) -> tuple[ReadFilter, set[int] | None]:
    def segment(values: tuple[str, ...]) -> str | list[str]:
        # A list may name an id no memory has.
        some = st.lists(st.sampled_from((*values, "nobody")), min_size=2, max_size=3, unique=True)
        return draw(st.one_of(st.just("*"), st.sampled_from(values), some))

    scope = Scope(
        app_id=draw(st.sampled_from((*APPS, "app-unknown"))),
        tenant_id=segment(TENANTS),
        agent_id=segment(AGENTS),
        run_id=segment(RUNS),
    )
    start = draw(st.none() | st.integers(0, 10))
    end = draw(st.none() | st.integers(0, 10))
    read = ReadFilter(
        store_id=1,
        scope=scope,
        memory_types=tuple(draw(st.lists(st.sampled_from(TYPES), max_size=2, unique=True))),
        start_time=None if start is None else datetime.fromtimestamp(start, tz=timezone.utc),
        end_time=None if end is None else datetime.fromtimestamp(end, tz=timezone.utc),
    )
    within = draw(st.none() | st.sets(st.integers(1, 120), max_size=60))
    return read, within


# One change: add a memory, update one (new vector, maybe new time), or remove one.
changes = st.tuples(st.sampled_from(("add", "add", "update", "remove")), st.integers(0, 2**32 - 1))


class Model:
    """The memories a matrix should hold, and the random choices that make them."""

    def __init__(self) -> None:
        self.held: dict[str, Row] = {}
        self.seq = 0

    def change(self, kind: str, seed: int) -> tuple[Row | None, str | None]:
        """Apply one change to the model; returns the row to upsert or the id to remove."""
        rng = np.random.default_rng(seed)
        if kind == "add" or not self.held:
            self.seq += 1
            scope = (APPS[seed % 2], TENANTS[seed % 3], AGENTS[seed % 5 % 2], RUNS[seed % 7 % 3])
            row = Row(f"mem-{self.seq}", self.seq, scope, TYPES[seed % 11 % 2], float(seed % 13), unit(rng)[0])
            self.held[row.memory_id] = row
            return row, None
        memory_id = sorted(self.held)[seed % len(self.held)]
        if kind == "remove":
            del self.held[memory_id]
            return None, memory_id
        row = replace(self.held[memory_id], vector=unit(rng)[0], event_time=float(seed % 13))
        self.held[memory_id] = row
        return row, None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.lists(changes, min_size=1, max_size=12), min_size=1, max_size=12), data=st.data())
def test_answers_exactly_like_a_brute_force_scan_under_any_changes(
    batches: list[list[tuple[str, int]]], data: st.DataObject
) -> None:
    model = Model()
    matrix = VectorMatrix(1, DIMENSION, min_tail_rows=4)  # a tiny tail: merges happen all the time
    for batch in batches:
        upserts: dict[str, Row] = {}
        removals: set[str] = set()
        for kind, seed in batch:
            row, removed = model.change(kind, seed)
            if row is not None:
                upserts[row.memory_id] = row
                removals.discard(row.memory_id)
            if removed is not None:
                upserts.pop(removed, None)
                removals.add(removed)
        matrix.apply(rows_of(list(upserts.values())), removals)
        assert len(matrix) == len(model.held)
        for _ in range(3):
            read, within = data.draw(read_filters())
            k = data.draw(st.integers(1, 12))
            vector = unit(np.random.default_rng(data.draw(st.integers(0, 1000))))[0]
            check_exact(matrix.nearest(read, vector, k, within), model.held, read, vector, k, within)
            assert matrix.count(read) == sum(allowed(row, read, None) for row in model.held.values())


@settings(max_examples=100, deadline=None)
@given(
    count=st.integers(1, 40),
    tenant=tenant_scopes,
    k=st.integers(1, 50),
    seed=st.integers(0, 1000),
)
def test_a_query_never_returns_another_tenants_memories(count: int, tenant: str | list[str], k: int, seed: int) -> None:
    """Every tenant holds the same vectors, so only the scope can keep the others' rows out."""
    vectors = unit(np.random.default_rng(seed), count)
    rows = [
        Row(f"mem-{t}-{i}", n, ("app-a", t, "planner", "r1"), "fact", 0.0, vectors[i])
        for n, (i, t) in enumerate((i, t) for i in range(count) for t in TENANTS)
    ]
    matrix = VectorMatrix(1, DIMENSION, min_tail_rows=8)
    matrix.apply(rows_of(rows[: len(rows) // 2]))  # half merged into the main segment, half in the tail
    matrix.apply(rows_of(rows[len(rows) // 2 :]))
    read = ReadFilter(store_id=1, scope=Scope(app_id="app-a", tenant_id=tenant, agent_id="*", run_id="*"))
    found = matrix.nearest(read, vectors[0], k)
    owner = {r.seq: r.scope[1] for r in rows}
    wanted = {tenant} if isinstance(tenant, str) else set(tenant)
    assert {owner[s] for s in found} <= (set(TENANTS) if tenant == "*" else wanted)
    assert len(found) == min(k, sum(1 for r in rows if tenant == "*" or r.scope[1] in wanted))


def test_a_quantized_matrix_rescores_its_best_candidates_exactly() -> None:
    rng = np.random.default_rng(7)
    dimension = 64
    vectors = rng.standard_normal((3000, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seqs = np.arange(1, 3001, dtype=np.int64)
    exact = dict(zip(seqs.tolist(), vectors, strict=True))

    def exact_vectors(store_id: int, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = [s for s in wanted.tolist() if s in exact]
        return np.array(found, dtype=np.int64), np.stack([exact[s] for s in found])

    rows = MatrixRows(
        seqs,
        [f"m{s}" for s in seqs],
        ["app"] * 3000,
        [f"t{s % 3}" for s in seqs],
        ["a"] * 3000,
        ["r"] * 3000,
        ["fact"] * 3000,
        np.zeros(3000),
        vectors,
    )
    matrix = VectorMatrix(1, dimension, quantized=True, exact_vectors=exact_vectors)
    matrix.replace_all([rows])
    read = ReadFilter(store_id=1, scope=Scope(app_id="app", tenant_id="*", agent_id="*", run_id="*"))
    recalls = []
    for query in rng.standard_normal((50, dimension)).astype(np.float32):
        query /= np.linalg.norm(query)
        found = matrix.nearest(read, query, 40)
        truth = vectors @ query
        best = set((np.argsort(-truth)[:40] + 1).tolist())
        recalls.append(len(best & set(found)) / 40)
        for seq, score in found.items():
            assert score == pytest.approx(float(truth[seq - 1]), abs=1e-5)  # re-scored: the exact cosine
    assert np.mean(recalls) >= 0.99
    full = VectorMatrix(1, dimension)
    full.replace_all([rows])
    assert matrix.resident_bytes < 0.6 * full.resident_bytes  # int8 rows, not float32


def test_readers_never_see_half_of_a_change() -> None:
    """A writer replaces every memory of a tenant again and again (each new version at a new position, so a
    reader seeing both versions would count too many); concurrent readers always see exactly one version each."""
    rng = np.random.default_rng(3)
    count = 30
    matrix = VectorMatrix(1, DIMENSION, min_tail_rows=100)  # three versions fit the tail, the fourth merges

    def version(number: int) -> MatrixRows:
        return rows_of(
            [
                Row(f"mem-{i}", number * count + i, ("app", "t1", "a", "r"), "fact", 0.0, v)
                for i, v in enumerate(unit(rng, count))
            ]
        )

    matrix.apply(version(0))
    read = ReadFilter(store_id=1, scope=Scope(app_id="app", tenant_id="t1", agent_id="*", run_id="*"))
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.append(len(matrix.nearest(read, unit(rng)[0], count + 10)))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for number in range(1, 300):
        half = version(number)
        # Alternate whole replacements and remove-then-add in one call.
        matrix.apply(half, removals=[f"mem-{i}" for i in range(count)] if number % 2 else ())
    done.set()
    for thread in threads:
        thread.join()
    assert seen and set(seen) == {count}


def read_all(store_id: int) -> ReadFilter:
    return ReadFilter(store_id=store_id, scope=Scope(app_id="app", tenant_id="*", agent_id="*", run_id="*"))


def batch(store: int, first: int, count: int) -> MatrixRows:
    rng = np.random.default_rng(first)
    return rows_of(
        [
            Row(f"s{store}-{first + i}", first + i, ("app", "t", "a", "r"), "fact", 0.0, v)
            for i, v in enumerate(unit(rng, count))
        ]
    )


def test_stores_are_held_within_the_memory_bound() -> None:
    matrices = VectorMatrices(max_memories=10)
    query = unit(np.random.default_rng(0))[0]
    assert matrices.nearest(read_all(1), query, 5) is None  # not loaded yet: the caller asks the index
    assert matrices.wants(1)
    assert matrices.load(1, DIMENSION, 8, [batch(1, 0, 4), batch(1, 4, 4)])
    assert matrices.memories == 8
    assert len(matrices.nearest(read_all(1), query, 5) or {}) == 5

    assert not matrices.load(2, DIMENSION, 6, [batch(2, 0, 3), batch(2, 3, 3)])  # 8 + 6 > 10
    assert matrices.nearest(read_all(2), query, 5) is None
    assert not matrices.wants(2)  # refused: not tried again on every query
    assert matrices.memories == 8

    matrices.apply(1, batch(1, 8, 3))  # store 1 grows to 11: over the bound, let go
    assert matrices.nearest(read_all(1), query, 5) is None
    assert matrices.memories == 0
    assert matrices.wants(2)  # room was freed: store 2 may fit now
    assert not matrices.wants(1)
    assert matrices.load(2, DIMENSION, 6, [batch(2, 0, 6)])

    matrices.apply(1, removals=["s1-0"])
    assert not matrices.wants(1)  # 11 memories, 1 removed: store 1 still does not fit beside store 2
    matrices.drop(2)
    assert matrices.wants(1)


def test_a_store_that_shrinks_below_the_bound_is_tried_again() -> None:
    matrices = VectorMatrices(max_memories=5)
    assert not matrices.load(1, DIMENSION, 7, iter(()))  # refused on its count: no row is read
    matrices.apply(1, batch(1, 7, 1))  # changes to a store not held are only counted
    matrices.apply(1, removals=["s1-0"])
    assert not matrices.wants(1)
    matrices.apply(1, removals=["s1-1"])
    assert matrices.wants(1)
    # A count that was too low (the store grew meanwhile) is caught while the rows are read.
    assert not matrices.load(1, DIMENSION, 5, [batch(1, 0, 4), batch(1, 4, 4)])
    assert not matrices.holds(1) and matrices.memories == 0


def test_a_store_whose_change_failed_is_loaded_again() -> None:
    matrices = VectorMatrices()
    assert matrices.load(1, DIMENSION, 3, [batch(1, 0, 3)])
    with pytest.raises(ValueError, match="dimensions"):
        matrices.apply(1, replace(batch(1, 3, 2), vectors=np.ones((2, 3), np.float32)))
    assert matrices.nearest(read_all(1), unit(np.random.default_rng(0))[0], 3) is None
    assert matrices.wants(1)


def test_bad_input_is_refused_and_changes_nothing() -> None:
    matrix = VectorMatrix(1, DIMENSION)
    matrix.apply(batch(1, 0, 3))
    wrong = replace(batch(1, 3, 2), vectors=np.ones((2, DIMENSION + 1), np.float32))
    with pytest.raises(ValueError, match="8 dimensions"):
        matrix.apply(wrong, removals=["s1-0"])
    assert len(matrix) == 3
    with pytest.raises(ValueError, match="within"):
        matrix.nearest(replace(read_all(1), metadata={"source": ("chat",)}), np.ones(DIMENSION), 3)
    with pytest.raises(ValueError, match="dimensions"):
        matrix.nearest(read_all(1), np.ones(3), 3)
    with pytest.raises(ValueError, match="metadata"):
        matrix.count(replace(read_all(1), metadata={"source": ("chat",)}))
    assert matrix.count(read_all(1)) == 3
    with pytest.raises(ValueError, match="exact_vectors"):
        VectorMatrix(1, DIMENSION, quantized=True)


def test_a_long_scan_scores_its_shortlist_exactly_inside_the_filter() -> None:
    """Above ``shortlist_above`` rows a scan ranks them on the main segment's projection and scores only the best
    exactly. On clustered vectors (as sentence embeddings are) it must keep recall, return exact cosines, respect
    every filter, and still see rows written since the last merge (the tail is always scanned whole)."""
    rng = np.random.default_rng(3)
    dimension, count = 96, 24_000
    centres = rng.standard_normal((40, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, count)] + 0.6 * rng.standard_normal((count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = [
        Row(f"m{i}", i + 1, ("app-a", TENANTS[i % 3], "planner", "r1"), TYPES[i % 7 % 2], float(i % 10), vectors[i])
        for i in range(count)
    ]
    matrix = VectorMatrix(1, dimension, shortlist_above=2000)
    matrix.apply(rows_of(rows[:-50]))
    matrix.apply(rows_of(rows[-50:]))  # into the tail
    held = {r.memory_id: r for r in rows}
    recalls = []
    filters = [
        ReadFilter(1, Scope("app-a", "*", "*", "*")),
        ReadFilter(1, Scope("app-a", "t2", "*", "*"), memory_types=("fact",)),
        ReadFilter(1, Scope("app-a", ["t1", "t3"], "*", "*"), start_time=datetime.fromtimestamp(3, tz=timezone.utc)),
    ]
    for number, query in enumerate(rng.standard_normal((60, dimension)).astype(np.float32)):
        query = (query + centres[number % 40]) / np.linalg.norm(query + centres[number % 40])
        read = filters[number % 3]
        found = matrix.nearest(read, query, 10)
        inside = {r.seq: float(r.vector @ query) for r in held.values() if allowed(r, read, None)}
        assert set(found) <= set(inside) and len(found) == 10
        for seq, score in found.items():
            assert score == pytest.approx(inside[seq], abs=1e-5)  # exact, not the projection's estimate
        best = set(sorted(inside, key=inside.__getitem__, reverse=True)[:10])
        recalls.append(len(best & set(found)) / 10)
    assert np.mean(recalls) >= 0.99
    newest = rows[-1]
    assert next(iter(matrix.nearest(filters[0], newest.vector, 1))) == newest.seq
    whole = VectorMatrix(1, dimension, shortlist_above=0)
    whole.apply(rows_of(rows))
    assert matrix.resident_bytes > whole.resident_bytes  # the projection is counted


def test_a_quantized_matrix_shortlists_a_long_scan_and_still_rescores_exactly() -> None:
    rng = np.random.default_rng(11)
    dimension, count = 64, 6000
    centres = rng.standard_normal((20, dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, 20, count)] + 0.7 * rng.standard_normal((count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    seqs = np.arange(1, count + 1, dtype=np.int64)

    def exact_vectors(store_id: int, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return wanted, vectors[wanted - 1]

    rows = rows_of([Row(f"m{s}", int(s), ("app-a", "t1", "planner", "r1"), "fact", 0.0, vectors[s - 1]) for s in seqs])
    matrix = VectorMatrix(1, dimension, quantized=True, exact_vectors=exact_vectors, shortlist_above=1000)
    matrix.replace_all([rows])
    read = ReadFilter(store_id=1, scope=Scope(app_id="app-a", tenant_id="*", agent_id="*", run_id="*"))
    recalls = []
    for number in range(40):
        query = centres[number % 20] + rng.standard_normal(dimension).astype(np.float32)
        query /= np.linalg.norm(query)
        found = matrix.nearest(read, query, 10)
        truth = vectors @ query
        recalls.append(len(set((np.argsort(-truth)[:10] + 1).tolist()) & set(found)) / 10)
        for seq, score in found.items():
            assert score == pytest.approx(float(truth[seq - 1]), abs=1e-5)
    assert np.mean(recalls) >= 0.99

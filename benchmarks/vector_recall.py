"""Vector recall at scale (issue 17): how many of the exact nearest memories each candidate generator finds, beside
its latency, at 10k and 100k memories.

What is measured
----------------
For every query and scope, the exact top-k (k = 10, 40) by cosine is computed by brute force over the embeddings
the engine stored. recall@k of a method = the share of its first k candidates whose exact cosine is at least the
k-th best exact cosine (so ties between identical copies count as found), over min(k, memories in scope).
``needle@40`` (case a) = the share of queries whose needle is among the first 40 candidates.

Methods, all over the same vectors (read back from the engine's record), queried in turns (``interleaved``):

- ``engine``: the vector candidates the engine's search takes (``memory_plugin.service.search``): the in-memory
  matrix of ``memory_plugin.storage.sqlite.matrix_feed`` while the store fits ``Settings.vector_memory_limit``
  (the default holds 200,000 memories), pool 80 as for ``top_k=10``;
- ``engine index path``: what the engine takes for a store over that bound (and what a server on a Chroma server
  takes): the Chroma index, unfiltered with over-fetch then filtered by the record;
- ``chroma default``: a bare Chroma collection (HNSW, cosine, max_neighbors 16, ef 100), ``where`` on the tenant;
- ``chroma tuned``: the same with max_neighbors 48, ef_construction 400, ef_search 400;
- ``matrix f32`` / ``matrix int8``: ``memory_plugin.storage.vector_matrix`` loaded from the record (int8 re-scores
  its best 4k candidates with the record's float vectors); a scan of more than 20,000 rows scores exactly only the
  shortlist its 128-d projection picks (``Settings.vector_shortlist_above``), as the engine does; ``matrix f32 whole
  scan`` scores every row (``shortlist_above=0``);
- whole searches through the public ``store.search(scope, query, top_k=10)``: ``search`` (the default engine) and
  ``search index path`` (the matrix switched off), without the query embedding (query vectors cached) and with it
  (``+ embed``: the real model embeds each query, as in ``benchmarks/engine.py``).

Cases
-----
(a) ``needle``: 100 tenants; the first ``size // 12,500`` (at least 2) hold 4,600 short near-duplicate fillers each
    (``f"filler {b} {i} lorem ipsum"``, 10% chat pleasantries such as "ok" and "thanks"), the others share the
    rest. 24 distinctive needles ("A zebra and a giraffe grazed beside the river.") are dealt over the big tenants,
    each with a query that shares no word with it ("striped wild animals on the savanna"). Fillers are drawn from
    20,000 distinct texts, so at 100k most are exact repeats (their vectors are reused, never re-embedded).
(b) ``real``: every LoCoMo development conversation (speakers as message names, session dates as timestamps) and
    every PrefEval development item (one run per item) written into ONE tenant through ``store.add`` (the default
    extractor splits long turns into sentences: about 5 memories per message); then every non-adversarial LoCoMo
    question and every PrefEval question asked (1,265). Padding to the size: the same messages, in order and 100
    per call, into tenants ``copy-1``, ``copy-2``, ... until the store holds ``size`` memories (the real tenant is
    always written whole, so at 10k the store holds it all and more), so in the all-tenant scope each real memory
    has identical copies: that is why recall counts ties.

Scopes: ``one tenant`` (the needle's tenant; the real tenant) and ``all tenants`` (``tenant_id="*"``).

Each text is embedded once with the real model (all-MiniLM-L6-v2) and cached in ``--cache`` (a temp folder by
default), so a second run embeds nothing. The data sets are read from ``--data`` and never copied.

Run::

    .venv/bin/python benchmarks/vector_recall.py                          # 10k and 100k, both cases (~1 hour)
    .venv/bin/python benchmarks/vector_recall.py --sizes 10000 --cases needle --latency-queries 40   # quick
    .venv/bin/python benchmarks/vector_recall.py --json recall.json
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import argparse
import json
import random
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from engine import Latency, conversation, interleaved, log, stopwatch
from locomo import load as load_locomo
from locomo import messages as locomo_messages

from memory_plugin import Embedder, MemoryClient, MemoryStore, Scope
from memory_plugin.embedding import DEFAULT_DIMENSION, DEFAULT_MODEL_NAME, local_embedder
from memory_plugin.filters import ReadFilter
from memory_plugin.service import MemoryService
from memory_plugin.service.search import VECTOR_POOL, _index_positions
from memory_plugin.storage.sqlite import SqliteRecord
from memory_plugin.storage.sqlite.matrix_feed import MatrixFeed
from memory_plugin.storage.vector_matrix import MatrixRows

APP = "recall-app"
POOL = VECTOR_POOL  # the vector candidates hybrid_search asks for with top_k=10
KS = (10, 40)
TENANTS = 100
NEEDLE_TENANT_FILLERS = 4600
FILLER_TEXTS = 20_000
LOAD_BATCH = 5000
NEEDLES = (
    ("A zebra and a giraffe grazed beside the river.", "striped wild animals on the savanna"),
    ("My grandmother taught me to knit woollen socks last winter.", "learning needlework from an elderly relative"),
    ("The violinist rehearsed Paganini caprices until midnight.", "string musician practising late at night"),
    ("We sailed a catamaran from Corsica to Sardinia in June.", "boat trip between Mediterranean islands"),
    ("Our basement flooded after the water heater burst.", "plumbing disaster at home"),
    ("Dr. Okafor prescribed antibiotics for my sinus infection.", "doctor gave medicine for a nasal illness"),
    ("I finally beat the final boss in Elden Ring after forty tries.", "video game victory after many attempts"),
    ("The sourdough starter I named Bubbles died while I was away.", "neglected bread yeast culture"),
    ("Tax season: I owe the government three thousand dollars.", "money owed to the revenue service"),
    ("My daughter lost her first tooth at the dinner table.", "child's baby teeth falling out"),
    ("A thunderstorm knocked out the power for two days.", "electricity outage caused by bad weather"),
    ("I switched from an iPhone to a Pixel because of the camera.", "changing smartphone brands for better photos"),
    ("The telescope showed Saturn's rings clearly last night.", "looking at planets through astronomy equipment"),
    ("We adopted a three-legged greyhound from the shelter.", "rescuing a disabled dog"),
    ("My landlord is raising the rent by twenty percent.", "housing costs going up from the property owner"),
    ("I sprained my ankle playing basketball on Saturday.", "sports injury to the foot"),
    ("The espresso machine leaks from the group head.", "coffee maker broken and dripping"),
    ("I'm learning Portuguese before my move to Lisbon.", "studying a language to relocate abroad"),
    ("Our team shipped the payment gateway migration on Friday.", "software release of the checkout system"),
    ("The orchid on my windowsill finally bloomed purple.", "houseplant flowering"),
    ("A pickpocket stole my wallet on the Paris metro.", "robbed on public transport in France"),
    ("I ran my first marathon in under four hours.", "long distance running race personal achievement"),
    ("The wedding cake had three tiers of lemon and raspberry.", "dessert at the marriage celebration"),
    ("Volcanic ash from Etna delayed our flight to Catania.", "eruption disrupting air travel in Sicily"),
)
PLEASANTRIES = (
    "ok",
    "okay",
    "thanks",
    "thank you!",
    "sounds good",
    "haha",
    "sure",
    "got it",
    "see you tomorrow",
    "good night",
    "lol yes",
    "no worries",
    "ok thanks",
    "great, thanks!",
    "yes",
    "nope",
)

# ---- embeddings, embedded once ---------------------------------------------------------------------------------


class VectorCache:
    """Text -> unit vector of the real model, kept in ``folder`` between runs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.vectors: dict[str, np.ndarray] = {}
        texts, matrix = folder / "texts.json", folder / "vectors.npy"
        if texts.exists() and matrix.exists():
            self.vectors = dict(zip(json.loads(texts.read_text()), np.load(matrix), strict=True))
        self._saved = len(self.vectors)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        for start in range(0, len(missing), 512):
            chunk = missing[start : start + 512]
            self.vectors.update(zip(chunk, local_embedder().embed_documents(chunk), strict=True))
        return np.stack([self.vectors[t] for t in texts])

    def save(self) -> None:
        if len(self.vectors) == self._saved:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "texts.json").write_text(json.dumps(list(self.vectors)))
        np.save(self.folder / "vectors.npy", np.stack(list(self.vectors.values())))
        self._saved = len(self.vectors)


class QueryMode:
    """Whether the stores' embedder embeds queries with the real model or reads them from the cache."""

    real = False


def cached_embedder(cache: VectorCache) -> Embedder:
    """The default model's name and dimension; documents from the cache (misses embedded once); queries from the
    cache, or from the real model when ``QueryMode.real``."""

    def embed_query(text: str) -> np.ndarray:
        return local_embedder().embed_query(text) if QueryMode.real else cache.embed([text])[0]

    return Embedder(cache.embed, embed_query, name=DEFAULT_MODEL_NAME, dimension=DEFAULT_DIMENSION)


# ---- data sets -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    scope: Scope
    messages: list[dict[str, Any]]
    timestamp: Any = None


@dataclass(frozen=True)
class Probe:
    query: str
    tenant: str
    needle: str | None = None


@dataclass
class Dataset:
    name: str
    writes: list[Write]
    probes: list[Probe]
    whole: int | None = None  # the first writes always written; the others until the store holds the size


def needle_dataset(size: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    pool = [f"filler {b} {i} lorem ipsum" for b in range(FILLER_TEXTS // 100) for i in range(100)]
    rng.shuffle(pool)
    big = max(2, size // 12_500)
    others = TENANTS - big
    fillers = iter(pool[: size - len(NEEDLES)] if size <= len(pool) else [])

    def filler() -> str:
        if rng.random() < 0.1:
            return rng.choice(PLEASANTRIES)
        return next(fillers, None) or rng.choice(pool)

    tenants = [f"tenant-{i:03d}" for i in range(TENANTS)]
    texts: dict[str, list[str]] = {t: [filler() for _ in range(NEEDLE_TENANT_FILLERS)] for t in tenants[:big]}
    rest = size - big * NEEDLE_TENANT_FILLERS - len(NEEDLES)
    for number, tenant in enumerate(tenants[big:]):
        texts[tenant] = [filler() for _ in range(rest // others + (1 if number < rest % others else 0))]
    probes = []
    for number, (needle, query) in enumerate(NEEDLES):
        tenant = tenants[number % big]
        texts[tenant].insert(rng.randrange(len(texts[tenant]) + 1), needle)
        probes.append(Probe(query, tenant, needle))
    writes = [
        Write(Scope(APP, tenant, "assistant", f"run-{start // 100}"), conversation(chunk[start : start + 100]))
        for tenant, chunk in texts.items()
        for start in range(0, len(chunk), 100)
    ]
    return Dataset("needle", writes, probes)


def real_writes(data: Path, tenant: str) -> tuple[list[Write], list[Probe]]:
    """Every LoCoMo conversation and PrefEval item as writes into ``tenant``, and their questions."""
    writes, probes = [], []
    for file in sorted((data / "locomo").glob("*.json")):
        talk = load_locomo(file)
        for session in talk.sessions:
            turns = locomo_messages(talk, session)
            for start in range(0, len(turns), 100):
                scope = Scope(APP, tenant, "assistant", f"locomo-{talk.name}-{session.run_id}")
                writes.append(Write(scope, turns[start : start + 100], session.when))
        probes += [Probe(q.text, tenant) for q in talk.questions]
    for file in sorted((data / "prefeval").glob("*.json")):
        for number, item in enumerate(json.loads(file.read_text())):
            turns = [
                {"role": role, "content": exchange[role]}
                for _, exchange in sorted(item["conversation"].items(), key=lambda kv: int(kv[0]))
                for role in ("user", "assistant")
                if exchange.get(role)
            ]
            writes.append(Write(Scope(APP, tenant, "assistant", f"prefeval-{file.stem}-{number}"), turns))
            probes.append(Probe(item["question"], tenant))
    return writes, probes


def real_dataset(size: int, data: Path) -> Dataset:
    writes, probes = real_writes(data, "real")
    # Padding: the same messages (speaker names and times kept, so the same texts are embedded) into other
    # tenants, 100 per call: one call per session would take most of the run at 100k.
    turns = [{**m, "timestamp": w.timestamp} for w in writes for m in w.messages]
    whole = len(writes)
    padding = size  # messages: far more than needed (a message makes about five memories); fill() stops at the size
    for number, start in enumerate(range(0, padding, 100)):
        copy, at = divmod(start, len(turns))
        chunk = (turns[at : at + 100] + turns[: max(0, at + 100 - len(turns))])[: padding - start]
        writes.append(Write(Scope(APP, f"copy-{copy + 1}", "assistant", f"run-{number}"), chunk))
    return Dataset("real", writes, probes, whole)


# ---- filling ---------------------------------------------------------------------------------------------------


def fill(store: MemoryStore, dataset: Dataset, size: int) -> None:
    stored = 0
    for number, write in enumerate(dataset.writes, 1):
        if dataset.whole is not None and number > dataset.whole and stored >= size:
            break
        stored += len(store.add(write.scope, messages=write.messages, timestamp=write.timestamp, sync=True).memories)
        if number % 200 == 0:
            log(f"  fill: {number}/{len(dataset.writes)} add calls")


def chroma_floor(folder: Path, reference: Reference, hnsw: dict[str, Any]) -> Any:
    """A bare Chroma collection holding the same vectors, with the tenant as metadata."""
    import chromadb

    client = chromadb.PersistentClient(path=str(folder), settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.create_collection(
        "floor", embedding_function=None, configuration={"hnsw": {"space": "cosine", **hnsw}}
    )
    for start in range(0, len(reference.seqs), LOAD_BATCH):
        part = slice(start, start + LOAD_BATCH)
        collection.add(
            ids=[str(s) for s in reference.seqs[part].tolist()],
            embeddings=reference.vectors[part],
            metadatas=[{"app_id": APP, "tenant_id": t} for t in reference.tenants[part].tolist()],
        )
    return collection


# ---- the exact reference and recall ----------------------------------------------------------------------------


@dataclass
class Reference:
    """Every memory's position, tenant and vector, as the engine stored them."""

    seqs: np.ndarray
    tenants: np.ndarray
    vectors: np.ndarray
    score_of: dict[int, int] = field(default_factory=dict)  # position -> row

    @classmethod
    def of(cls, batches: Iterator[MatrixRows]) -> Reference:
        parts = list(batches)
        seqs = np.concatenate([p.seqs for p in parts])
        tenants = np.array([t for p in parts for t in p.tenant_ids], dtype=object)
        reference = cls(seqs, tenants, np.concatenate([p.vectors for p in parts]))
        reference.score_of = {s: i for i, s in enumerate(seqs.tolist())}
        return reference

    def exact(self, vector: np.ndarray, tenant: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Cosines of every memory (NaN outside the scope) and the sorted cosines inside it."""
        scores = np.einsum("ij,j->i", self.vectors, vector).astype(np.float64)
        if tenant is not None:
            scores[self.tenants != tenant] = np.nan
        inside = np.sort(scores[~np.isnan(scores)])[::-1]
        return scores, inside


def recall(found: Sequence[int], reference: Reference, scores: np.ndarray, inside: np.ndarray, k: int) -> float:
    wanted = min(k, len(inside))
    if not wanted:
        return 1.0
    kth = inside[wanted - 1]
    rows = [reference.score_of[s] for s in found[:k] if s in reference.score_of]
    return sum(1 for r in rows if scores[r] >= kth - 1e-5) / wanted


# ---- candidate generators --------------------------------------------------------------------------------------


def engine_candidates(service: MemoryService, read: ReadFilter, vector: np.ndarray) -> list[int]:
    """The vector candidates the engine's search takes, best first: the in-memory matrix while the store fits
    ``Settings.vector_memory_limit`` (or an exact scan of a small scope), else the vector index."""
    record, index = service.folder.record, service.folder.index
    with record.read() as reader:
        found = reader.nearest(read, vector, POOL, scan_limit=service.settings.exact_scan_limit)
    if found is not None:
        return sorted(found, key=lambda p: -found[p])
    return _index_positions(record, index, read, vector, POOL) or []


def index_path_candidates(service: MemoryService, read: ReadFilter, vector: np.ndarray) -> list[int]:
    """The vector candidates of a store beyond ``vector_memory_limit``: the engine's Chroma index (unfiltered with
    over-fetch, then filtered), as the server and scale-out deployments use it."""
    with without_matrix(service):
        return engine_candidates(service, read, vector)


@contextmanager
def without_matrix(service: MemoryService) -> Iterator[None]:
    """The engine as it runs for a store over ``vector_memory_limit``: no in-memory matrix."""
    record = service.folder.record
    assert isinstance(record, SqliteRecord)
    feed, record.feed = record.feed, None
    try:
        yield
    finally:
        record.feed = feed


def chroma_candidates(collection: Any, vector: np.ndarray, tenant: str | None) -> list[int]:
    result = collection.query(
        query_embeddings=[vector],
        n_results=POOL,
        include=["distances"],
        where=None if tenant is None else {"tenant_id": tenant},
    )
    return [int(i) for i in result["ids"][0]]


def matrix_candidates(feed: MatrixFeed, read: ReadFilter, vector: np.ndarray) -> list[int]:
    found = feed.nearest(read, vector, POOL)
    assert found is not None
    return sorted(found, key=lambda p: -found[p])


# ---- one case at one size --------------------------------------------------------------------------------------


@dataclass
class Figures:
    recall: dict[str, dict[int, float]] = field(default_factory=dict)
    needle: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Latency] = field(default_factory=dict)


@dataclass
class Results:
    config: dict[str, Any]
    tables: dict[str, Figures] = field(default_factory=dict)  # "case size scope" -> figures
    notes: dict[str, float] = field(default_factory=dict)


CHROMA_TUNED = {"max_neighbors": 48, "ef_construction": 400, "ef_search": 400}


def measure(
    results: Results, dataset: Dataset, size: int, cache: VectorCache, workdir: Path, args: argparse.Namespace
) -> None:
    label = f"{dataset.name} {size // 1000}k"
    log(f"{label}: {len(dataset.writes)} add calls through the public API")
    with MemoryClient(path=workdir / f"{label}-engine", embedder=cached_embedder(cache)) as client:
        store = client.create_memory_store("recall")
        with stopwatch() as filled:
            fill(store, dataset, size)
        cache.save()
        service: MemoryService = client.transport.service  # type: ignore[attr-defined]
        service.folder.index.catch_up()
        results.notes[f"{label}: fill s (public API, cached vectors)"] = filled[0]
        record = service.folder.record
        assert isinstance(record, SqliteRecord)
        with record.connections.reading() as conn:
            store_id = int(conn.execute("SELECT id FROM stores WHERE name = ?", ("recall",)).fetchone()[0])
        reference = Reference.of(MatrixFeed(record.connections).rows(store_id))
        with record.connections.reading() as conn:
            needles = {
                p.needle: int(conn.execute("SELECT seq FROM memories WHERE text = ?", (p.needle,)).fetchone()[0])
                for p in dataset.probes
                if p.needle is not None
            }
        log(f"{label}: {len(reference.seqs)} memories; building bare Chroma collections")
        floors = {}
        for name, hnsw in (("chroma default", {}), ("chroma tuned", CHROMA_TUNED)):
            with stopwatch() as built:
                floors[name] = chroma_floor(workdir / f"{label}-{name}", reference, hnsw)
            results.notes[f"{label}: {name} build s"] = built[0]
        matrices = {
            "matrix f32": MatrixFeed(record.connections),
            "matrix f32 whole scan": MatrixFeed(record.connections, shortlist_above=0),
            "matrix int8": MatrixFeed(record.connections, quantized=True),
        }
        for name, matrix in matrices.items():
            with stopwatch() as loaded:  # timed alone: tracing every allocation slows the load down
                matrix.catch_up(store_id)
            matrix.drop_store(store_id)
            tracemalloc.start()
            matrix.catch_up(store_id)
            retained, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results.notes[f"{label}: {name} load from the record s"] = loaded[0]
            results.notes[f"{label}: {name} resident MB (traced)"] = retained / 1e6
            results.notes[f"{label}: {name} load peak MB (traced)"] = peak / 1e6
            results.notes[f"{label}: {name} arrays MB"] = matrix.matrices.resident_bytes / 1e6
        for scope_name, one in (("one tenant", True), ("all tenants", False)):
            figures = results.tables[f"{label} {scope_name}"] = Figures()
            measure_scope(
                figures, dataset, store, service, store_id, reference, floors, matrices, one, cache, needles, args
            )
            log(f"{label} {scope_name}: " + ", ".join(f"{m} R@40 {r[40]:.3f}" for m, r in figures.recall.items()))
        if args.concurrency:
            measure_concurrency(results, label, matrices["matrix f32"], store_id, dataset, cache)


def measure_scope(
    figures: Figures,
    dataset: Dataset,
    store: MemoryStore,
    service: MemoryService,
    store_id: int,
    reference: Reference,
    floors: dict[str, Any],
    matrices: dict[str, MatrixFeed],
    one: bool,
    cache: VectorCache,
    needles: dict[str, int],
    args: argparse.Namespace,
) -> None:
    vectors = {p.query: cache.embed([p.query])[0] for p in dataset.probes}
    cache.save()

    def read(probe: Probe) -> ReadFilter:
        return ReadFilter(store_id, Scope(APP, probe.tenant if one else "*", "*", "*"))

    def tenant(probe: Probe) -> str | None:
        return probe.tenant if one else None

    generators: dict[str, Callable[[Probe], list[int]]] = {
        "engine": lambda p: engine_candidates(service, read(p), vectors[p.query]),
        "engine index path": lambda p: index_path_candidates(service, read(p), vectors[p.query]),
        **{n: (lambda p, c=c: chroma_candidates(c, vectors[p.query], tenant(p))) for n, c in floors.items()},
        **{n: (lambda p, m=m: matrix_candidates(m, read(p), vectors[p.query])) for n, m in matrices.items()},
    }
    probes = dataset.probes[: args.recall_queries]
    found: dict[str, list[float]] = {f"{n} {k}": [] for n in generators for k in KS}
    found_needle: dict[str, list[bool]] = {n: [] for n in generators}
    for probe in probes:
        scores, inside = reference.exact(vectors[probe.query], tenant(probe))
        for name, generate in generators.items():
            candidates = generate(probe)
            for k in KS:
                found[f"{name} {k}"].append(recall(candidates, reference, scores, inside, k))
            if probe.needle is not None:
                found_needle[name].append(needles[probe.needle] in candidates[:POOL])
    figures.recall = {n: {k: float(np.mean(found[f"{n} {k}"])) for k in KS} for n in generators}
    figures.needle = {n: float(np.mean(v)) for n, v in found_needle.items() if v}

    def public_search(matrix: bool, real_query: bool) -> Callable[[Probe], object]:
        def search(probe: Probe) -> object:
            QueryMode.real = real_query
            scope = Scope(APP, probe.tenant if one else "*", "*", "*")
            if matrix:
                return store.search(scope, probe.query, top_k=10)
            with without_matrix(service):
                return store.search(scope, probe.query, top_k=10)

        return search

    sides: dict[str, Callable[[Probe], object]] = {
        **generators,
        "search": public_search(True, False),
        "search index path": public_search(False, False),
        "search + embed": public_search(True, True),
        "search index path + embed": public_search(False, True),
        "query embedding": lambda p: local_embedder().embed_query(p.query),
    }
    timed = [dataset.probes[i % len(dataset.probes)] for i in range(args.latency_queries)]
    random.Random(7).shuffle(timed)
    for side in sides.values():
        side(timed[0])
    figures.latency = {n: Latency.of(s) for n, s in interleaved(sides, timed).items()}
    QueryMode.real = False


def measure_concurrency(
    results: Results,
    label: str,
    feed: MatrixFeed,
    store_id: int,
    dataset: Dataset,
    cache: VectorCache,
) -> None:
    """All-tenant matrix queries with and without a writer applying 100-row updates back to back (each update a
    new version of existing memories, so the tail fills and merges happen as they would)."""
    matrices = feed.matrices
    batches = list(feed.rows(store_id))
    updates = [
        MatrixRows(*(getattr(b, f.name)[s : s + 100] for f in MatrixRows.__dataclass_fields__.values()))
        for b in batches
        for s in range(0, len(b), 100)
    ]
    apply_ms: list[float] = []
    writing = threading.Event()
    stop = threading.Event()

    def writer() -> None:
        number = 0
        while not stop.is_set():
            if not writing.wait(0.01):
                continue
            started = time.perf_counter()
            matrices.apply(store_id, updates[number % len(updates)])
            apply_ms.append((time.perf_counter() - started) * 1000)
            number += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    vectors = [cache.embed([p.query])[0] for p in dataset.probes[:20]]
    read = ReadFilter(store_id, Scope(APP, "*", "*", "*"))

    def query(with_writer: bool) -> Callable[[np.ndarray], object]:
        def run(vector: np.ndarray) -> object:
            (writing.set if with_writer else writing.clear)()
            return matrices.nearest(read, vector, POOL)

        return run

    probes = [vectors[i % len(vectors)] for i in range(200)]
    timings = interleaved({"idle": query(False), "writer": query(True)}, probes)
    stop.set()
    thread.join()
    for name, seconds in timings.items():
        latency = Latency.of(seconds)
        results.notes[f"{label}: matrix f32 all tenants p50 ms, {name}"] = latency.p50_ms
        results.notes[f"{label}: matrix f32 all tenants p95 ms, {name}"] = latency.p95_ms
    results.notes[f"{label}: apply 100 updates p50 ms"] = float(np.percentile(apply_ms, 50))
    results.notes[f"{label}: apply 100 updates max ms (a merge)"] = float(np.max(apply_ms))
    results.notes[f"{label}: updates applied during the run"] = len(apply_ms) * 100


# ---- output and main -------------------------------------------------------------------------------------------


def render(results: Results) -> str:
    lines = []
    for table, figures in results.tables.items():
        lines += ["", table, f"{'method':<24}{'R@10':>7}{'R@40':>7}{'needle@40':>11}{'p50 ms':>9}{'p95 ms':>9}"]
        for name, latency in figures.latency.items():
            recall_of = figures.recall.get(name)
            r10, r40 = (f"{recall_of[10]:.3f}", f"{recall_of[40]:.3f}") if recall_of else ("-", "-")
            needle = f"{figures.needle[name]:.2f}" if name in figures.needle else "-"
            lines.append(f"{name:<24}{r10:>7}{r40:>7}{needle:>11}{latency.p50_ms:>9.1f}{latency.p95_ms:>9.1f}")
    lines += [""] + [f"{key}: {value:,.2f}" for key, value in results.notes.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--cases", default="needle,real", help="needle, real or both")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "memory-plugin-vector-recall")
    parser.add_argument("--recall-queries", type=int, default=2000, help="at most this many queries for recall")
    parser.add_argument("--latency-queries", type=int, default=120, help="timed queries per scope and method")
    parser.add_argument("--no-concurrency", dest="concurrency", action="store_false")
    parser.add_argument("--torch-threads", type=int, help="torch.set_num_threads for the query embedding")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    results = Results(config={k: str(v) for k, v in vars(args).items()})
    cache = VectorCache(args.cache)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memory-plugin-recall-") as folder:
        for size in [int(s) for s in args.sizes.split(",")]:
            for case in args.cases.split(","):
                data = needle_dataset(size, seed=size) if case == "needle" else real_dataset(size, args.data)
                measure(results, data, size, cache, Path(folder), args)
                print(render(results), flush=True)
    results.notes["wall time s"] = time.perf_counter() - started
    print(render(results))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": results.config,
                    "notes": results.notes,
                    "tables": {
                        t: {
                            "recall": f.recall,
                            "needle": f.needle,
                            "latency": {n: vars(v) for n, v in f.latency.items()},
                        }
                        for t, f in results.tables.items()
                    },
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

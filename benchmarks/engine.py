"""Engine benchmark: memory_plugin against the floor of a bare Chroma collection.

What is measured
----------------
1. **Add throughput** (memories/s): ``store.add(scope, messages=[...50 turns...], sync=True)`` through the public
   API with the real default embedder (all-MiniLM-L6-v2), against embedding the same texts with the same model and
   ``collection.add`` on a bare Chroma collection, in the same batches. Our library defers its Chroma index to a
   background thread, so a second row also counts the time to bring that index up to date after the last add.
2. **Search latency** p50/p95 (ms, query embedding included) through ``store.search(..., top_k=10)`` at each size,
   the memories spread evenly over ``--tenants`` tenants, for a single-tenant scope (``tenant_id=tX``, agent and
   run ``"*"``) and an all-tenants scope (``tenant_id="*"``). The floor is a bare Chroma collection holding the
   same vectors with a ``tenant_id`` metadata field, queried with ``n_results=10`` (``where={"tenant_id": tX}``
   for one tenant, no ``where`` for all), after embedding the query with the same model.
3. The ratio ours/floor of every number (latency: above 1 is slower; throughput: below 1 is slower).

Ours and the floor take turns on the same batches and queries (same query, same tenant), ten at a time, with the
order flipped each time, so that other load on the machine weighs on both sides alike.

To fill 10k-100k memories quickly, the texts are drawn from a pool of a few thousand distinct synthetic sentences
embedded once with the real model; the stores being filled get a cached embedder with the default model's name
(documents are looked up in the cache, queries go to the real model), so what is stored and searched is exactly
what the default embedder would have produced. Queries are questions about the same people and activities, not
pool sentences, embedded by the real model at query time.

After each fill and before any search is timed, the vector index is brought up to date (``index.catch_up()``), so
that neither its build nor the background worker doing it competes with the timed searches; the time this took is
reported as "index build s" (the background worker may already have applied part of the log during the fill;
"pending" says how many changes were left). ``--rebuild`` also times building the whole index afresh from the
record, the cost the fill hides.

Run::

    .venv/bin/python benchmarks/engine.py                                # sizes 10000,100000, 100 tenants
    .venv/bin/python benchmarks/engine.py --sizes 2000 --queries 30      # quick smoke run (< 1 minute)
    .venv/bin/python benchmarks/engine.py --json results.json --rebuild
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from memory_plugin import Embedder, MemoryClient, MemoryStore, Scope
from memory_plugin.embedding import DEFAULT_DIMENSION, DEFAULT_MODEL_NAME, local_embedder

APP_ID = "bench-app"
AGENTS = ("planner", "companion")
TOP_K = 10
FILL_BATCH = 100  # messages per store.add call when filling (the API maximum)
CHROMA_BATCH = 5000  # below Chroma's maximum batch size
BLOCK = 10  # consecutive calls per side before the other side takes its turn
T = TypeVar("T")

# ---- synthetic sentences -------------------------------------------------------------------------------------

PEOPLE = (
    ("Alice", "her"),
    ("Bob", "his"),
    ("Carmen", "her"),
    ("Deepak", "his"),
    ("Elena", "her"),
    ("Farid", "his"),
    ("Grace", "her"),
    ("Hiroshi", "his"),
    ("Ingrid", "her"),
    ("Jamal", "his"),
    ("Keiko", "her"),
    ("Liam", "his"),
    ("Mei", "her"),
    ("Nikolai", "his"),
    ("Olivia", "her"),
    ("Pablo", "his"),
    ("Quinn", "their"),
    ("Rosa", "her"),
    ("Sanjay", "his"),
    ("Tara", "her"),
    ("Umar", "his"),
    ("Vera", "her"),
    ("Wes", "his"),
    ("Yara", "her"),
)
# (past tense as told, base form for questions)
ACTIVITIES = (
    ("went hiking", "go hiking"),
    ("played tennis", "play tennis"),
    ("cooked a Thai curry", "cook a Thai curry"),
    ("read a mystery novel", "read a mystery novel"),
    ("went swimming", "go swimming"),
    ("practised the violin", "practise the violin"),
    ("painted a watercolour landscape", "paint a landscape"),
    ("went birdwatching", "go birdwatching"),
    ("baked sourdough bread", "bake sourdough bread"),
    ("rode a mountain bike", "ride a mountain bike"),
    ("went to a jazz concert", "go to a jazz concert"),
    ("had a picnic", "have a picnic"),
    ("went fishing", "go fishing"),
    ("ran a half marathon", "run a half marathon"),
    ("planted tomatoes", "plant tomatoes"),
    ("played chess", "play chess"),
    ("went kayaking", "go kayaking"),
    ("watched a documentary about whales", "watch a documentary"),
    ("did yoga", "do yoga"),
    ("visited an art museum", "visit a museum"),
    ("went skiing", "go skiing"),
    ("learned to make sushi", "make sushi"),
)
PLACES = (
    "near the lake",
    "in the old town",
    "at the community centre",
    "by the river",
    "in the national park",
    "at the beach",
    "in the city park",
    "on the mountain trail",
    "at a friend's cabin",
    "downtown",
    "in the botanical garden",
    "at the harbour",
    "in the countryside",
    "at the sports club",
    "in Lisbon",
    "in Kyoto",
    "in Vancouver",
    "in the backyard",
)
TIMES = (
    "last Sunday",
    "on Friday evening",
    "yesterday morning",
    "two weeks ago",
    "last summer",
    "over the holidays",
    "on Tuesday night",
    "last weekend",
    "early this morning",
    "in March",
    "during the spring break",
    "on their birthday",
)
COMPANIONS = (
    "with {pos} dog",
    "with {pos} sister",
    "with {pos} brother",
    "with a colleague",
    "with {pos} kids",
    "with {pos} best friend",
    "alone",
    "with {pos} partner",
    "with the running club",
    "with {pos} grandmother",
)
PREFERENCES = (
    "prefers green tea to coffee",
    "is allergic to peanuts",
    "is vegetarian",
    "loves spicy food",
    "wants to learn Spanish",
    "is training for a triathlon",
    "works night shifts at the hospital",
    "is saving money for a trip to Iceland",
    "hates crowded places",
    "collects vinyl records",
)
QUESTION_TEMPLATES = (
    "Where did {name} {base}?",
    "Who did {name} {base} with?",
    "When did {name} {base}?",
    "What did {name} do {time}?",
    "What did {name} do {place}?",
    "Has {name} ever tried to {base}?",
    "What does {name} like to eat or drink?",
    "Which activities does {name} enjoy {place}?",
)


def _statement(rng: random.Random) -> str:
    name, pos = rng.choice(PEOPLE)
    if rng.random() < 0.15:
        return f"{name} {rng.choice(PREFERENCES)}."
    companion = rng.choice(COMPANIONS).format(pos=pos)
    activity = rng.choice(ACTIVITIES)[0]
    return f"{name} {activity} {rng.choice(PLACES)} {rng.choice(TIMES)} {companion}."


def _question(rng: random.Random) -> str:
    name, _ = rng.choice(PEOPLE)
    template = rng.choice(QUESTION_TEMPLATES)
    return template.format(name=name, base=rng.choice(ACTIVITIES)[1], time=rng.choice(TIMES), place=rng.choice(PLACES))


def distinct(make: Callable[[random.Random], str], count: int, seed: int) -> list[str]:
    """``count`` distinct sentences from ``make``, deterministic for a seed."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        found[make(rng)] = None
    return list(found)


# ---- measuring -----------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Yields a one-element list that holds the elapsed seconds once the block ends."""
    elapsed = [0.0]
    started = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed[0] = time.perf_counter() - started


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ms = np.asarray(seconds) * 1000
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 95)))


def interleaved(
    sides: dict[str, Callable[[T], object]], items: Sequence[T], block: int = BLOCK
) -> dict[str, list[float]]:
    """Seconds each side takes for each item. The sides take turns, ``block`` items at a time, and the order flips
    from one block to the next, so that load from elsewhere on the machine falls on all sides alike. Blocks rather
    than single items keep one side's aftermath (BLAS / OpenMP threads still spinning after a call) off the other
    side's timings."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides.items())
    for start in range(0, len(items), block):
        for name, call in order:
            for item in items[start : start + block]:
                started = time.perf_counter()
                call(item)
                samples[name].append(time.perf_counter() - started)
        order.reverse()
    return samples


@dataclass
class Row:
    """One compared measurement: ours, the floor, and the unit."""

    label: str
    unit: str
    ours: float
    floor: float | None = None

    @property
    def ratio(self) -> float | None:
        return None if not self.floor else self.ours / self.floor


@dataclass
class Report:
    config: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    notes: dict[str, float] = field(default_factory=dict)


# ---- embedders and data --------------------------------------------------------------------------------------


def cached_embedder(cache: dict[str, np.ndarray]) -> Embedder:
    """The default model's name and dimension; documents from ``cache`` (misses go to the real model), queries
    always embedded by the real model."""
    real = local_embedder()

    def embed_documents(texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in cache]
        if missing:
            cache.update(zip(missing, real.embed_documents(missing), strict=True))
        return np.stack([cache[t] for t in texts])

    return Embedder(embed_documents, real.embed_query, name=DEFAULT_MODEL_NAME, dimension=DEFAULT_DIMENSION)


def conversation(texts: Sequence[str]) -> list[dict[str, str]]:
    """Alternating user/assistant turns, each of which becomes one memory."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


def tenant_ids(count: int) -> list[str]:
    return [f"tenant-{i:03d}" for i in range(count)]


def assign_texts(pool: Sequence[str], size: int, tenants: Sequence[str], seed: int) -> dict[str, list[str]]:
    """``size`` pool sentences (drawn with replacement) spread evenly over ``tenants``."""
    rng = random.Random(seed)
    per_tenant: dict[str, list[str]] = {t: [] for t in tenants}
    for i in range(size):
        per_tenant[tenants[i % len(tenants)]].append(rng.choice(pool))
    return per_tenant


def chroma_collection(folder: Path) -> Any:
    import chromadb

    client = chromadb.PersistentClient(path=str(folder), settings=chromadb.Settings(anonymized_telemetry=False))
    return client.create_collection("floor", embedding_function=None, configuration={"hnsw": {"space": "cosine"}})


# ---- 1. add throughput ---------------------------------------------------------------------------------------


def measure_add(report: Report, texts: Sequence[str], batch: int, workdir: Path) -> None:
    """Ours and the floor add the same batches, taking turns."""
    log(f"add throughput: {len(texts)} memories, {batch} messages per call, real model")
    model = local_embedder()
    batches = [(start, list(texts[start : start + batch])) for start in range(0, len(texts), batch)]
    scope = Scope(app_id=APP_ID, tenant_id="tenant-add", agent_id=AGENTS[0], run_id="run-0")
    collection = chroma_collection(workdir / "add-floor")
    with MemoryClient(path=workdir / "add-ours") as client:
        store = client.create_memory_store("add-bench", description="add throughput")

        def ours(item: tuple[int, list[str]]) -> object:
            return store.add(scope, messages=conversation(item[1]), sync=True)

        def floor(item: tuple[int, list[str]]) -> object:
            start, chunk = item
            return collection.add(
                ids=[f"m{start + i}" for i in range(len(chunk))],
                embeddings=model.embed_documents(chunk),
                metadatas=[{"tenant_id": "tenant-add"}] * len(chunk),
            )

        seconds = {name: sum(s) for name, s in interleaved({"ours": ours, "floor": floor}, batches).items()}
        with stopwatch() as index:
            vector_index(client).catch_up()
    report.rows.append(
        Row(f"add, {batch}/call (request path)", "mem/s", len(texts) / seconds["ours"], len(texts) / seconds["floor"])
    )
    report.rows.append(
        Row(
            f"add, {batch}/call (+ index catch-up)",
            "mem/s",
            len(texts) / (seconds["ours"] + index[0]),
            len(texts) / seconds["floor"],
        )
    )


# ---- 2. search latency at a size ------------------------------------------------------------------------------


def fill_store(store: MemoryStore, per_tenant: dict[str, list[str]]) -> None:
    """Add every tenant's texts through the public API, ``FILL_BATCH`` messages per call."""
    calls = sum((len(texts) + FILL_BATCH - 1) // FILL_BATCH for texts in per_tenant.values())
    done = 0
    for tenant, texts in per_tenant.items():
        for number, start in enumerate(range(0, len(texts), FILL_BATCH)):
            scope = Scope(app_id=APP_ID, tenant_id=tenant, agent_id=AGENTS[number % 2], run_id=f"run-{number}")
            store.add(scope, messages=conversation(texts[start : start + FILL_BATCH]), sync=True)
            done += 1
            if done % 100 == 0 or done == calls:
                log(f"  fill: {done}/{calls} add calls")


def fill_floor(collection: Any, per_tenant: dict[str, list[str]], cache: dict[str, np.ndarray]) -> None:
    rows = [(tenant, text) for tenant, texts in per_tenant.items() for text in texts]
    for start in range(0, len(rows), CHROMA_BATCH):
        chunk = rows[start : start + CHROMA_BATCH]
        collection.add(
            ids=[f"m{start + i}" for i in range(len(chunk))],
            embeddings=np.stack([cache[text] for _, text in chunk]),
            metadatas=[{"tenant_id": tenant} for tenant, _ in chunk],
        )


def vector_index(client: MemoryClient) -> Any:
    """The embedded service's vector index, to time bringing it up to date (the worker's job)."""
    return client.transport.service.folder.index  # type: ignore[attr-defined]


def catch_up_index(client: MemoryClient, report: Report, size: int, rebuild: bool) -> None:
    """Bring the vector index up to date (what the background worker would finish) and report how long it took;
    with ``rebuild``, then also time building the whole index afresh from the record."""
    index = vector_index(client)
    report.notes[f"{size}: index changes pending before catch-up"] = index.pending
    with stopwatch() as build:
        index.catch_up()
    report.notes[f"{size}: index build s"] = build[0]
    log(f"  index catch-up: {build[0]:.1f}s")
    if rebuild:
        index.request_rebuild("benchmark")
        with stopwatch() as full:
            index.catch_up()
        report.notes[f"{size}: full index rebuild s"] = full[0]
        log(f"  full index rebuild: {full[0]:.1f}s")


def tenant_scope(tenant: str) -> Scope:
    return Scope(app_id=APP_ID, tenant_id=tenant, agent_id="*", run_id="*")


Probe = tuple[str, str]  # (query, tenant)


def search_sides(store: MemoryStore, collection: Any, all_tenants: bool) -> dict[str, Callable[[Probe], object]]:
    """One search through our API and the same search on the bare collection (query embedding included)."""
    model = local_embedder()

    def ours(probe: Probe) -> object:
        query, tenant = probe
        return store.search(tenant_scope("*" if all_tenants else tenant), query, top_k=TOP_K)

    def floor(probe: Probe) -> object:
        query, tenant = probe
        where = None if all_tenants else {"tenant_id": tenant}
        return collection.query(query_embeddings=[model.embed_query(query)], n_results=TOP_K, where=where)

    return {"ours": ours, "floor": floor}


def measure_latencies(
    report: Report, label: str, sides: dict[str, Callable[[Probe], object]], probes: Sequence[Probe]
) -> None:
    """Warm each side up once, then time them in turns over ``probes``."""
    for call in sides.values():
        call(probes[0])
    latency = {name: Latency.of(seconds) for name, seconds in interleaved(sides, probes).items()}
    report.rows.append(Row(f"{label} p50", "ms", latency["ours"].p50_ms, latency["floor"].p50_ms))
    report.rows.append(Row(f"{label} p95", "ms", latency["ours"].p95_ms, latency["floor"].p95_ms))


def measure_size(
    report: Report,
    size: int,
    tenants: Sequence[str],
    pool: Sequence[str],
    cache: dict[str, np.ndarray],
    queries: Sequence[str],
    workdir: Path,
    rebuild: bool,
) -> None:
    log(f"size {size:,}: filling {len(tenants)} tenants through store.add")
    per_tenant = assign_texts(pool, size, tenants, seed=size)
    with MemoryClient(path=workdir / f"ours-{size}", embedder=cached_embedder(cache)) as client:
        store = client.create_memory_store("bench", description=f"{size} memories")
        with stopwatch() as fill:
            fill_store(store, per_tenant)
        report.notes[f"{size}: fill mem/s (cached embeddings)"] = size / fill[0]
        log(f"  filled in {fill[0]:.1f}s")
        catch_up_index(client, report, size, rebuild)
        log(f"size {size:,}: filling the bare Chroma floor")
        collection = chroma_collection(workdir / f"floor-{size}")
        with stopwatch() as floor_fill:
            fill_floor(collection, per_tenant, cache)
        report.notes[f"{size}: floor fill s (chroma add, no embedding)"] = floor_fill[0]
        log(f"size {size:,}: timing {len(queries)} searches per scope")
        probes = [(query, tenants[i % len(tenants)]) for i, query in enumerate(queries)]
        measure_latencies(report, f"search {size:,} 1 tenant", search_sides(store, collection, False), probes)
        measure_latencies(report, f"search {size:,} all tenants", search_sides(store, collection, True), probes)


def measure_query_embedding(report: Report, queries: Sequence[str]) -> None:
    model = local_embedder()
    latency = Latency.of(interleaved({"embed": model.embed_query}, queries)["embed"])
    report.notes["query embedding alone p50 ms"] = latency.p50_ms
    report.notes["query embedding alone p95 ms"] = latency.p95_ms


# ---- output --------------------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"


def render(report: Report) -> str:
    width = max(len(r.label) for r in report.rows) + 2
    lines = [f"{'metric':<{width}}{'unit':<7}{'ours':>11}{'floor':>11}{'ours/floor':>12}", "-" * (width + 41)]
    for row in report.rows:
        lines.append(
            f"{row.label:<{width}}{row.unit:<7}{_number(row.ours):>11}{_number(row.floor):>11}{_number(row.ratio):>12}"
        )
    lines.append("(ours/floor: latency above 1 is slower than the floor, throughput below 1 is slower)")
    lines.append("")
    lines.extend(f"{key}: {_number(value)}" for key, value in report.notes.items())
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "config": report.config,
        "rows": [{**asdict(r), "ratio": r.ratio} for r in report.rows],
        "notes": report.notes,
    }


# ---- main ----------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="store sizes, comma-separated (default 10000,100000)")
    parser.add_argument("--tenants", type=int, default=100, help="tenants the memories are spread over")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per scope")
    parser.add_argument("--pool", type=int, default=3000, help="distinct sentences embedded once with the real model")
    parser.add_argument("--add-memories", type=int, default=2000, help="memories for the add-throughput test")
    parser.add_argument("--add-batch", type=int, default=50, help="messages per add call in the throughput test")
    parser.add_argument(
        "--rebuild", action="store_true", help="also time a full rebuild of the vector index at each size"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.perf_counter()
    report = Report(config={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    pool = distinct(_statement, args.pool, seed=1)
    known = set(pool)
    queries = [q for q in distinct(_question, args.queries * 2, seed=2) if q not in known][: args.queries]
    tenants = tenant_ids(args.tenants)
    log(f"embedding a pool of {len(pool)} sentences with the real model")
    with stopwatch() as pool_time:
        cache = dict(zip(pool, local_embedder().embed_documents(pool), strict=True))
    report.notes["real model embed_documents texts/s (pool)"] = len(pool) / pool_time[0]
    measure_query_embedding(report, queries)
    with tempfile.TemporaryDirectory(prefix="memory-plugin-bench-") as tmp:
        workdir = Path(tmp)
        measure_add(report, pool[: args.add_memories], args.add_batch, workdir)
        for size in args.sizes:
            measure_size(report, size, tenants, pool, cache, queries, workdir, args.rebuild)
    report.notes["wall time s"] = time.perf_counter() - started
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=2))
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

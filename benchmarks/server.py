"""Memory server benchmark: search and add over HTTP against the embedded client, in the same run.

What is measured
----------------
Two data folders are filled alike (``--memories`` memories over ``--tenants`` tenants, real default embedder).
One is opened by an embedded ``MemoryClient`` in this process; on the other, ``memory-plugin serve`` runs as a
process of its own (real default embedder, no rate limit), reached with the remote ``MemoryClient(endpoint=...)``
and a signed access key. For 1, 8 and 32 concurrent clients (threads; over HTTP each thread has its own client
and connections, embedded they share the one client, as threads of one process must):

- **search**: ``store.search(tenant scope, query, top_k=10)``, query embedding included;
- **add**: ``store.add(scope, messages=[user turn, assistant turn], sync=True)`` (extraction and embedding
  included), each client writing to a tenant of its own.

Each row gives throughput (calls/s over the wall time of the level) and p50/p95 latency (ms) per call; the ratio
rows are HTTP / embedded (latency above 1 is slower; throughput below 1 is slower). Embedded and HTTP take turns
(four rounds a level), so other load on the machine weighs on both alike. The machine's cores bound throughput: the
server process, the embedded engine and the clients share them.

Run::

    .venv/bin/python benchmarks/server.py                                 # 2000 memories, 1/8/32 clients
    .venv/bin/python benchmarks/server.py --memories 500 --calls 64       # quick run (~1 minute)
    .venv/bin/python benchmarks/server.py --json server.json
    .venv/bin/python benchmarks/server.py --threads 1                     # torch on one thread in both processes

On a loaded 2-core machine torch's intra-op threads cost the served process far more than the embedded one
(a query's embedding: ~144 ms CPU with 2 threads, ~17 ms with OMP_NUM_THREADS=1); compare both settings.
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from memory_plugin import MemoryClient, MemoryStore, Scope
from memory_plugin.embedding import local_embedder
from memory_plugin.storage.sqlite.keys import SQLiteKeyStore
from tests.server_harness import ServedProcess, start_serve, wait_ready

APP_ID = "bench-app"
STORE = "bench"
ROUNDS = 4  # turns the two sides take at each level
CONFIG = '[server]\nrequests_per_second = 1000000\nburst = 1000000\n[stores."*"]\nembedder = "local"\n'
PEOPLE = ["Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus", "Hal", "Ivy", "Jo"]
THINGS = ["green tea", "hiking", "chess", "jazz", "Lisbon", "a cat called Miso", "night shifts", "sourdough",
          "the violin", "marathons", "Kyoto", "climbing", "pottery", "sci-fi novels", "a red bicycle"]  # fmt: skip
QUESTIONS = ["what does the user drink?", "where does the user want to travel?", "which hobbies come up?",
             "does the user have pets?", "what music does the user like?", "what sport does the user do?"]  # fmt: skip


def sentence(rng: random.Random) -> str:
    person, thing, other = rng.choice(PEOPLE), rng.choice(THINGS), rng.choice(THINGS)
    return f"{person} said the user likes {thing}, and maybe {other} on weekends {rng.randint(1, 10_000)}"


def scope_of(tenant: int, run: str = "r1") -> Scope:
    return Scope(APP_ID, f"t{tenant}", "assistant", run)


def fill(folder: Path, memories: int, tenants: int, seed: int) -> None:
    """``memories`` facts over ``tenants`` tenants, written with the embedded client (the same in both folders)."""
    rng = random.Random(seed)
    with MemoryClient(path=folder) as client:
        store = client.create_memory_store(STORE)
        per_call = 25
        for start in range(0, memories, per_call):
            tenant = (start // per_call) % tenants
            turns = [{"role": "user", "content": sentence(rng)} for _ in range(min(per_call, memories - start))]
            store.add(scope_of(tenant), messages=turns, sync=True)
        store.flush(timeout=600)


@dataclass
class Row:
    mode: str
    operation: str
    clients: int
    calls: int
    per_second: float
    p50_ms: float
    p95_ms: float


def timed(stores: Sequence[MemoryStore], calls: range, call: Callable[[MemoryStore, int, int], None]) -> tuple[
    list[float], float
]:  # fmt: skip
    """The calls numbered ``calls`` spread over ``len(stores)`` threads, thread ``i`` on ``stores[i]``: each call's
    latency (s) and the wall time of them all."""
    clients = len(stores)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        mine = []
        for n in calls[index::clients]:
            started = time.perf_counter()
            call(stores[index], index, n)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return latencies, time.perf_counter() - started


def compare(
    sides: dict[str, Sequence[MemoryStore]], operation: str, calls: int, call: Callable[[MemoryStore, int, int], None]
) -> list[Row]:
    """Each side makes ``calls`` calls, the sides taking turns in ``ROUNDS`` rounds (so that other load on the
    machine weighs on both alike); a row per side."""
    results: dict[str, tuple[list[float], float]] = {mode: ([], 0.0) for mode in sides}
    per_round = -(-calls // ROUNDS)
    for start in range(0, calls, per_round):
        for mode, stores in sides.items():
            latencies, wall = timed(stores, range(start, min(start + per_round, calls)), call)
            results[mode] = (results[mode][0] + latencies, results[mode][1] + wall)
    rows = []
    for mode, (latencies, wall) in results.items():
        ms = np.array(latencies) * 1000
        rows.append(Row(mode, operation, len(sides[mode]), calls, calls / wall, float(np.percentile(ms, 50)),
                        float(np.percentile(ms, 95))))  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="bench-server-"))
    embedded_folder, served_folder = root / "embedded", root / "served"
    print(f"filling two folders with {args.memories} memories each ...", flush=True)
    for folder in (embedded_folder, served_folder):
        fill(folder, args.memories, args.tenants, args.seed)
    with SQLiteKeyStore(served_folder) as keys:
        record, secret = keys.create(APP_ID)
    served: ServedProcess = start_serve(served_folder, CONFIG)
    rows: list[Row] = []
    try:
        wait_ready(served)
        local_embedder()  # the embedded side's model loaded before anything is timed, as the server's is on use
        embedded = MemoryClient(path=embedded_folder)
        remote = [
            MemoryClient(endpoint=served.url, access_key_id=record.key_id, access_key_secret=secret.reveal())
            for _ in range(max(args.clients))
        ]
        embedded_store = embedded.get_memory_store(STORE)
        remote_stores = [client.get_memory_store(STORE) for client in remote]
        rng = random.Random(args.seed + 1)
        questions = [(rng.randrange(args.tenants), rng.choice(QUESTIONS)) for _ in range(args.calls)]

        def search(store: MemoryStore, index: int, n: int) -> None:
            tenant, question = questions[n % len(questions)]
            store.search(Scope(APP_ID, f"t{tenant}", "*", "*"), question, top_k=10)

        def add(store: MemoryStore, index: int, n: int) -> None:
            turns = [{"role": "user", "content": f"I picked up {THINGS[n % len(THINGS)]} this week ({n})"},
                     {"role": "assistant", "content": "Nice, tell me more."}]  # fmt: skip
            store.add(scope_of(args.tenants + index, f"w{n}"), messages=turns, sync=True)

        for stores in ([embedded_store], remote_stores[:1]):  # warm-up: first calls load and connect
            for n in range(3):
                search(stores[0], 0, n)
        for clients in args.clients:
            for operation, call in (("search", search), ("add", add)):
                calls = max(args.calls, clients * ROUNDS)
                sides = {"embedded": [embedded_store] * clients, "http": remote_stores[:clients]}
                for row in compare(sides, operation, calls, call):
                    rows.append(row)
                    print(f"  {row.mode:8s} {operation:6s} clients={clients:2d}  {row.per_second:7.1f}/s  "
                          f"p50 {row.p50_ms:7.1f} ms  p95 {row.p95_ms:7.1f} ms", flush=True)  # fmt: skip
        for client in remote:
            client.close()
        embedded.close()
    finally:
        served.terminate()
    return rows


def report(rows: list[Row]) -> str:
    lines = [
        f"{'operation':9s} {'clients':>7s} | {'embedded/s':>10s} {'p50':>7s} {'p95':>7s} | {'http/s':>8s} {'p50':>7s} "
        f"{'p95':>7s} | {'rate http/emb':>13s} {'p50 http/emb':>12s} {'p95 http/emb':>12s}"
    ]
    by_key = {(r.mode, r.operation, r.clients): r for r in rows}
    for (mode, operation, clients), local in by_key.items():
        if mode != "embedded":
            continue
        http = by_key[("http", operation, clients)]
        lines.append(
            f"{operation:9s} {clients:7d} | {local.per_second:10.1f} {local.p50_ms:7.1f} {local.p95_ms:7.1f} | "
            f"{http.per_second:8.1f} {http.p50_ms:7.1f} {http.p95_ms:7.1f} | "
            f"{http.per_second / local.per_second:13.2f} {http.p50_ms / local.p50_ms:12.2f} "
            f"{http.p95_ms / local.p95_ms:12.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=2000, help="memories in each folder")
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--calls", type=int, default=160, help="calls per operation and level (at least 4/client)")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for torch in both processes (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:  # read when torch is first imported (the model loads lazily), here and by serve
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    threads = os.environ.get("OMP_NUM_THREADS", "torch's default")
    print(f"memory server benchmark: {os.cpu_count()} CPUs, torch threads {threads}, real embedder, times in ms",
          flush=True)  # fmt: skip
    rows = run(args)
    print()
    print(report(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()

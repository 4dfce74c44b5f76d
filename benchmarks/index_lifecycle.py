"""What the vector index's lifecycle costs and leaks.

1. **Store churn**: ``--cycles`` times create a store, add a memory, search it through Chroma, delete the store,
   with Chroma open (another store stays). Prints this process's open file descriptors, the index's segment
   folders and the resident memory every ``--every`` cycles, and the mean time of ``delete_memory_store``.
   Chroma keeps a deleted collection's HNSW folder and 4 open files until its client closes; the engine works
   around it, at the price of re-opening its client on each store deletion.
2. **Trusting the index on open**: with ``--memories`` memories indexed, the time of a clean ``close()`` (which
   records the manifest of the index files), of opening the folder again (which checks the files against it
   before Chroma reads them), and of the first search through Chroma (which opens Chroma and takes a first look:
   per-store counts, a probe query) against the second.

    .venv/bin/python benchmarks/index_lifecycle.py [--cycles 60] [--memories 20000]

Uses the deterministic fake embedder of the test suite: these figures are about the engine, not the model.
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import os
import tempfile
import time
from pathlib import Path

from memory_plugin import MemoryClient
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder
from tests.internals import catch_up_index, index_pending


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def resident_mb() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1_000_000


def store_churn(cycles: int, every: int) -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        MemoryClient(path=folder, embedder=make_fake_embedder(), settings=INDEX_PATH) as c,
    ):
        kept = c.create_memory_store("kept")
        kept.add(SCOPE, text="a memory that stays")
        kept.search(SCOPE, "memory")

        def row(label: str) -> None:
            folders = sum(1 for p in Path(folder).glob("index-*/*") if p.is_dir())
            print(f"{label:<12} {open_files():>10} {folders:>16} {resident_mb():>8}")

        print(f"{'':<12} {'open files':>10} {'segment folders':>16} {'RSS MB':>8}")
        row("start")
        deleting = 0.0
        for cycle in range(1, cycles + 1):
            store = c.create_memory_store(f"cycle-{cycle}")
            store.add(SCOPE, text=f"cycle {cycle} memory", metadata={"email": f"user{cycle}@example.com"})
            store.search(SCOPE, "memory")
            began = time.perf_counter()
            c.delete_memory_store(f"cycle-{cycle}")
            deleting += time.perf_counter() - began
            if cycle % every == 0:
                row(f"{cycle} cycles")
        print(f"delete_memory_store with Chroma open: {1000 * deleting / cycles:.1f} ms mean")


def trust_on_open(memories: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        client = MemoryClient(path=folder, embedder=make_fake_embedder(), settings=INDEX_PATH)
        store = client.create_memory_store("big")
        for start in range(0, memories, 100):
            turns = [{"role": "user", "content": f"note {i} about topic {i % 97}"} for i in range(start, start + 100)]
            store.add(SCOPE.with_(run_id=f"run-{start % 7}"), messages=turns)
        catch_up_index(client)
        began = time.perf_counter()
        client.close()
        closing = time.perf_counter() - began
        began = time.perf_counter()
        client = MemoryClient(path=folder, embedder=make_fake_embedder(), settings=INDEX_PATH)
        opening = time.perf_counter() - began
        store = client.get_memory_store("big")
        searches = []
        for _ in range(2):
            began = time.perf_counter()
            store.search(SCOPE.with_(run_id="*"), "topic 17", top_k=10)
            searches.append(time.perf_counter() - began)
        rebuilt = index_pending(client)
        client.close()
        print(f"{memories} memories indexed: close {closing:.3f} s (manifest recorded), open {opening:.3f} s "
              f"(files checked), first search through Chroma {searches[0]:.3f} s (opens it, first look), "
              f"second {searches[1]:.3f} s; rebuild pending: {bool(rebuilt)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--memories", type=int, default=20000)
    args = parser.parse_args()
    store_churn(args.cycles, args.every)
    trust_on_open(args.memories)


if __name__ == "__main__":
    main()

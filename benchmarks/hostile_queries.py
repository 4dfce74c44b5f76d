"""Hostile queries: how long one search within the input limits can take, and whether it stalls other tenants.

At ``--memories`` memories (default 2,000, spread over 10 tenants, event times spread over 2023) it times:

- ``"2023 " * 800``: 4,000 characters naming the same year 800 times;
- 4,000 random CJK characters (about 4,000 distinct character bigrams);
- a plain question, for comparison;

each in one tenant's scope and in all tenants' (``tenant_id="*"``); and, while each search runs in one thread,
how long another tenant's ``get()`` takes in another thread (the worst of the gets made during the search).

    .venv/bin/python benchmarks/hostile_queries.py [--memories 2000] [--repeat 3]

Uses the deterministic fake embedder of the test suite: these figures are about the engine, not the model.
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import random
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone

from memory_plugin import MemoryClient, MemoryStore, Scope
from tests.conftest import make_fake_embedder

TENANTS = 10


def fill(store: MemoryStore, memories: int) -> tuple[Scope, str]:
    """``memories`` memories over ``TENANTS`` tenants; returns another tenant's scope and one of its memory ids."""
    rng = random.Random(11)
    start = datetime(2023, 1, 1, tzinfo=timezone.utc)
    per_call = 50
    other_id = ""
    for first in range(0, memories, per_call):
        tenant = (first // per_call) % TENANTS
        scope = Scope(app_id="bench", tenant_id=f"t{tenant}", agent_id="a", run_id="r")
        messages = [
            {
                "role": "user",
                "content": f"memory {i} about topic {rng.randrange(300)} and place {rng.randrange(80)}",
                "timestamp": start + timedelta(days=rng.randrange(365)),
            }
            for i in range(first, min(first + per_call, memories))
        ]
        result = store.add(scope, messages=messages)
        if tenant == 1:
            other_id = result.memories[0].id
    return Scope(app_id="bench", tenant_id="t1", agent_id="a", run_id="r"), other_id


def timed_search(store: MemoryStore, scope: Scope, query: str, other: Scope, other_id: str) -> tuple[float, float]:
    """(seconds the search took, worst seconds of another tenant's get() during it)."""
    done = threading.Event()
    worst = [0.0]

    def other_tenant() -> None:
        while not done.is_set():
            began = time.perf_counter()
            store.get(other, other_id)
            worst[0] = max(worst[0], time.perf_counter() - began)
            time.sleep(0.005)

    thread = threading.Thread(target=other_tenant)
    thread.start()
    began = time.perf_counter()
    store.search(scope, query, top_k=10)
    took = time.perf_counter() - began
    done.set()
    thread.join()
    return took, worst[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(5)
    queries = {
        '"2023 " * 800': "2023 " * 800,
        "4,000 random CJK characters": "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(4000)),
        "plain question": "what did the user say about topic 17 in 2023?",
    }
    with tempfile.TemporaryDirectory() as folder, MemoryClient(path=folder, embedder=make_fake_embedder()) as c:
        store = c.create_memory_store("hostile")
        other, other_id = fill(store, args.memories)
        print(f"{args.memories} memories, {TENANTS} tenants; best of {args.repeat} runs")
        print(f"{'query':<30} {'scope':<12} {'search s':>9} {'other tenant get() s':>21}")
        for name, query in queries.items():
            for label, tenant in (("one tenant", "t0"), ("all tenants", "*")):
                scope = Scope(app_id="bench", tenant_id=tenant, agent_id="*", run_id="*")
                runs = [timed_search(store, scope, query, other, other_id) for _ in range(args.repeat)]
                took, worst = min(runs)
                print(f"{name:<30} {label:<12} {took:>9.3f} {worst:>21.3f}")


if __name__ == "__main__":
    main()

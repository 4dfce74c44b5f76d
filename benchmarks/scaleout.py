"""Scale-out benchmark: add and search throughput and latency with 1, 2 and 4 memory servers on one PostgreSQL
database and one Chroma server, beside one embedded memory server (a data folder), in the same run.

What is measured
----------------
Both deployments are filled with the same ``--memories`` memories (synthetic sentences spread over ``--tenants``
tenants, embedded once by the real all-MiniLM-L6-v2 and cached, written in-process 50 turns per call), and the
vector index is brought up to date. Then memory servers are started as real processes (``memory-plugin serve``,
the real model for every add and query) and ``--clients`` client threads, spread round-robin over the servers,
run for ``--seconds`` each:

1. **add**: ``store.add(scope, text=..., sync=True)``, one memory per call, into the tenants of the fill;
2. **search**: ``store.search(one tenant, question, top_k=10)``.

Reported: calls per second over all clients, and p50/p95 per call (ms), for the embedded server and for 1, 2 and 4
servers on PostgreSQL + Chroma. **Where the time goes**: the CPU seconds each component used during each phase
(memory servers, PostgreSQL backends, the Chroma server, this process's clients), read from ``/proc``; on a
machine with few cores, their sum over the phase's wall time says how close it ran to saturation.

Several servers on one machine oversubscribe its cores with the embedding model's threads; run this with
``OMP_NUM_THREADS=1`` (inherited by the servers) to give each one thread.

Run::

    .venv/bin/python benchmarks/scaleout.py                         # 100k memories (fill: tens of minutes)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scaleout.py --memories 2000 --seconds 10 --clients 4
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.engine import _question, _statement, assign_texts, cached_embedder, distinct, fill_store, log
from memory_plugin import MemoryClient, Scope
from memory_plugin.embedding import local_embedder
from memory_plugin.storage.postgres.keys import PostgresKeyStore
from memory_plugin.storage.sqlite.keys import SQLiteKeyStore
from scripts.throwaway import ThrowawayChroma, ThrowawayPostgres, free_port
from tests.internals import catch_up_index

APP_ID = "bench"
STORE = "scaleout"
CLI = [sys.executable, "-m", "memory_plugin"]
SERVER_COUNTS = (1, 2, 4)


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids(postgres: ThrowawayPostgres) -> list[int]:
    """The postmaster and every backend it started."""
    main = int((postgres.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == main:
                    children.append(int(entry.name))
            except (OSError, ValueError):
                continue
    return [main, *children]


def component_cpu(groups: dict[str, Callable[[], list[int]]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(pid) for pid in pids()) for name, pids in groups.items()}


# The servers' configuration: no request-rate limit (the clients share one access key, and a limit would measure
# itself rather than the servers).
UNLIMITED = "[server]\nrequests_per_second = 1000000\nburst = 1000000\n"


def start_servers(count: int, where: list[str]) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """``count`` memory servers on ``where`` (``--path`` or ``--database``/``--index`` and ``--config``), ready."""
    servers, urls = [], []
    for _ in range(count):
        port = free_port()
        urls.append(f"http://127.0.0.1:{port}")
        servers.append(subprocess.Popen([*CLI, "serve", *where, "--port", str(port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))  # fmt: skip
    for url, server in zip(urls, servers, strict=True):
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"memory server {url} did not start") from None
                time.sleep(0.2)
    return servers, urls


def stop_servers(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.terminate()
    for server in servers:
        server.wait(timeout=120)


def run_phase(
    stores: list[Any], seconds: float, call: Callable[[Any, random.Random], object]
) -> tuple[float, list[float]]:
    """Every client thread calls ``call`` until ``seconds`` have passed; returns calls/s and each call's seconds."""
    latencies: list[list[float]] = [[] for _ in stores]
    stop = time.monotonic() + seconds

    failures: list[BaseException] = []

    def loop(number: int) -> None:
        rng = random.Random(number)
        try:
            while time.monotonic() < stop:
                started = time.perf_counter()
                call(stores[number], rng)
                latencies[number].append(time.perf_counter() - started)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(len(stores))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    every = [s for per_client in latencies for s in per_client]
    return len(every) / elapsed, every


def measure(
    label: str, urls: list[str], key: tuple[str, str], args: argparse.Namespace, tenants: list[str],
    pool: list[str], questions: list[str], cpu: dict[str, Callable[[], list[int]]],
) -> dict[str, Any]:  # fmt: skip
    clients = [MemoryClient(endpoint=urls[n % len(urls)], access_key_id=key[0], access_key_secret=key[1])
               for n in range(args.clients)]  # fmt: skip
    cpu = {**cpu, "clients (this process)": lambda: [os.getpid()]}

    def add(store: Any, rng: random.Random) -> object:
        scope = Scope(app_id=APP_ID, tenant_id=rng.choice(tenants), agent_id="assistant", run_id="bench")
        return store.add(scope, text=rng.choice(pool), sync=True)

    def search(store: Any, rng: random.Random) -> object:
        scope = Scope(app_id=APP_ID, tenant_id=rng.choice(tenants), agent_id="*", run_id="*")
        return store.search(scope, rng.choice(questions), top_k=10)

    result: dict[str, Any] = {"deployment": label}
    try:
        stores = [client.get_memory_store(STORE) for client in clients]
        for number, store in enumerate(stores):  # every server loads its model and opens the store before timing
            search(store, random.Random(-number))
        for phase, call in (("add", add), ("search", search)):
            before, wall = component_cpu(cpu), time.perf_counter()
            rate, seconds = run_phase(stores, args.seconds, call)
            wall = time.perf_counter() - wall
            after = component_cpu(cpu)
            ms = np.asarray(seconds) * 1000
            result[phase] = {
                "per_second": round(rate, 1),
                "p50_ms": round(float(np.percentile(ms, 50)), 1),
                "p95_ms": round(float(np.percentile(ms, 95)), 1),
                "cpu_cores_busy": {name: round((after[name] - before[name]) / wall, 2) for name in cpu},
            }
            log(f"{label} {phase}: {result[phase]}")
    finally:
        for client in clients:
            client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8, help="client threads, spread over the servers")
    parser.add_argument("--seconds", type=float, default=30.0, help="per phase and deployment")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    tenants = [f"tenant-{i:03d}" for i in range(args.tenants)]
    pool = distinct(_statement, 3000, seed=1)
    questions = distinct(_question, 200, seed=2)
    log("embedding the sentence pool once")
    real = local_embedder()
    cache = dict(zip(pool, real.embed_documents(pool), strict=True))
    per_tenant = assign_texts(pool, args.memories, tenants, seed=3)
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="memory-plugin-scaleout-"))
    config = workdir / "server.toml"
    config.write_text(UNLIMITED)
    postgres, chroma = ThrowawayPostgres(), ThrowawayChroma()
    try:
        # The embedded backend: one memory server owning a data folder.
        folder = workdir / "embedded"
        log(f"filling the embedded data folder with {args.memories} memories")
        with MemoryClient(path=folder, embedder=cached_embedder(cache)) as client:
            fill_store(client.create_memory_store(STORE), per_tenant)
            catch_up_index(client)
        with SQLiteKeyStore(folder) as keys:
            record, secret = keys.create(APP_ID, admin=True)
        servers, urls = start_servers(1, ["--path", str(folder), "--config", str(config)])
        try:
            results.append(measure("embedded, 1 server", urls, (record.key_id, secret.reveal()), args, tenants, pool,
                                   questions, {"memory servers": lambda: [s.pid for s in servers]}))  # fmt: skip
        finally:
            stop_servers(servers)

        database = postgres.new_database()
        log(f"filling PostgreSQL + Chroma with {args.memories} memories")
        with MemoryClient(database=database, index=chroma.url, embedder=cached_embedder(cache)) as client:
            fill_store(client.create_memory_store(STORE), per_tenant)
            catch_up_index(client)
        with PostgresKeyStore(database) as shared:
            record, secret = shared.create(APP_ID, admin=True)
        shared_options = ["--database", database, "--index", chroma.url, "--config", str(config)]
        for count in SERVER_COUNTS:
            servers, urls = start_servers(count, shared_options)
            try:
                groups = {"memory servers": lambda: [s.pid for s in servers],  # noqa: B023  (used in this pass)
                          "postgres": lambda: postgres_pids(postgres), "chroma": lambda: [chroma.pid]}  # fmt: skip
                results.append(measure(f"postgres+chroma, {count} server(s)", urls, (record.key_id, secret.reveal()),
                                       args, tenants, pool, questions, groups))  # fmt: skip
            finally:
                stop_servers(servers)
    finally:
        chroma.close()
        postgres.close()
    report = {"config": {**vars(args), "json": None, "cores": os.cpu_count()}, "results": results}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def render(report: dict[str, Any]) -> str:
    lines = [f"scale-out benchmark: {report['config']}", "",
             "| deployment | add/s | add p50 / p95 ms | search/s | search p50 / p95 ms | cores busy (add; search) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in report["results"]:
        add, search = row["add"], row["search"]
        busy = "; ".join(
            ", ".join(f"{k.split(' ')[0]} {v}" for k, v in phase["cpu_cores_busy"].items()) for phase in (add, search)
        )
        lines.append(f"| {row['deployment']} | {add['per_second']} | {add['p50_ms']} / {add['p95_ms']} | "
                     f"{search['per_second']} | {search['p50_ms']} / {search['p95_ms']} | {busy} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Reliability figures: operations per second held under a mixed concurrent load (8 threads, then 100 asyncio
tasks, with background extraction running), SIGKILL crash trials run and survived, acknowledged writes lost
(must be 0), and hostile-input fuzz cases tried.

    .venv/bin/python benchmarks/reliability.py [--seconds 10] [--trials 20]

Uses the deterministic fake embedder of the test suite: these figures are about the engine, not the model.
"""

from __future__ import annotations

import _prelude  # noqa: F401  (first: offline, no telemetry, the repository on sys.path)

# isort: split
import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from memory_plugin import AsyncMemoryClient, MemoryClient
from tests.conftest import make_fake_embedder
from tests.reliability import test_hostile_input as fuzz
from tests.reliability.crash import crash_trial
from tests.reliability.load import Ledger, audited_calls, check_ledger, run_tasks, run_threads


def threaded_load(seconds: float) -> tuple[float, int, int]:
    """(ops/s, acknowledged writes lost, audit records missing) for 8 threads."""
    with tempfile.TemporaryDirectory() as folder, MemoryClient(path=folder, embedder=make_fake_embedder()) as c:
        store = c.create_memory_store("load")
        ledger = Ledger()
        started = time.monotonic()
        run_threads(store, threads=8, seconds=seconds, ledger=ledger)
        rate = ledger.calls / (time.monotonic() - started)
        missing = ledger.calls - audited_calls(store)
        if ledger.errors:
            raise SystemExit(f"unexpected errors under load: {ledger.errors[:3]}")
        return rate, check_ledger(store, ledger), missing


def async_load(seconds: float) -> tuple[float, int, int]:
    """(ops/s, acknowledged writes lost, audit records missing) for 100 asyncio tasks."""
    with tempfile.TemporaryDirectory() as folder:

        async def main() -> tuple[Ledger, float]:
            async with AsyncMemoryClient(path=folder, embedder=make_fake_embedder()) as client:
                store = await client.create_memory_store("load")
                ledger = Ledger()
                started = time.monotonic()
                await run_tasks(store, tasks=100, seconds=seconds, ledger=ledger)
                return ledger, ledger.calls / (time.monotonic() - started)

        ledger, rate = asyncio.run(main())
        if ledger.errors:
            raise SystemExit(f"unexpected errors under load: {ledger.errors[:3]}")
        with MemoryClient(path=folder, embedder=make_fake_embedder()) as client:
            store = client.get_memory_store("load")
            missing = ledger.calls - audited_calls(store)
            return rate, check_ledger(store, ledger), missing


def crash_trials(trials: int, seed: int) -> tuple[int, int, int, int, int]:
    """(run, survived, acknowledged, lost, largest folder size in bytes) over ``trials`` SIGKILLs on one folder."""
    rng = random.Random(seed)
    survived = acknowledged = lost = largest = 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data"
        for trial in range(trials):
            try:
                result = crash_trial(path, rng, kill_repair=trial % 2 == 1)
            except AssertionError as e:
                print(f"  trial {trial}: FAILED {e}", file=sys.stderr)
                continue
            acknowledged += result.acknowledged
            lost += result.lost
            largest = max(largest, result.size)
            survived += result.lost == 0 and result.index_folders == 1
    return trials, survived, acknowledged, lost, largest


def fuzz_cases() -> int:
    with tempfile.TemporaryDirectory() as folder, MemoryClient(path=folder, embedder=make_fake_embedder()) as c:
        store = c.create_memory_store("fuzz")
        store.add(fuzz.SCOPE, text="the user likes green tea")
        fuzz.test_public_methods_raise_only_documented_errors_and_write_nothing_on_failure(store=store)
        fuzz.test_search_answers_any_query_within_the_limit(store=store)
        for query in fuzz.INJECTIONS:
            fuzz.test_fts_and_sql_syntax_in_queries_is_plain_text(store, query)
            fuzz.FUZZ_CASES["count"] += 1
    return fuzz.FUZZ_CASES["count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each mixed load (default 10)")
    parser.add_argument("--trials", type=int, default=20, help="SIGKILL trials (default 20)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    started = time.monotonic()
    rate8, lost8, missing8 = threaded_load(args.seconds)
    print(f"mixed load, 8 threads:          {rate8:8.1f} ops/s held for {args.seconds:g} s "
          f"(acknowledged writes lost {lost8}, audit records missing {missing8})")  # fmt: skip
    rate100, lost100, missing100 = async_load(args.seconds)
    print(f"mixed load, 100 asyncio tasks:  {rate100:8.1f} ops/s held for {args.seconds:g} s "
          f"(acknowledged writes lost {lost100}, audit records missing {missing100})")  # fmt: skip
    run, survived, acknowledged, lost_crash, largest = crash_trials(args.trials, args.seed)
    print(f"crash trials (SIGKILL):         {run} run, {survived} survived, {acknowledged} writes acknowledged "
          f"before the kills, largest data folder {largest / 1e6:.1f} MB")  # fmt: skip
    lost = lost8 + lost100 + lost_crash
    print(f"acknowledged writes lost:       {lost}")
    print(f"fuzz cases tried:               {fuzz_cases()}")
    print(f"total time:                     {time.monotonic() - started:.0f} s")
    if lost or survived != run or missing8 or missing100:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

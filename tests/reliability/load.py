"""A mixed workload shared by the concurrency tests and ``benchmarks/reliability.py``.

Each worker adds (sync and background), searches, lists, gets, updates and deletes in its own tenant and reads
across tenants; it records every call it made and every write the store acknowledged."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from memory_plugin import AsyncMemoryStore, MemoryNotFoundError, MemoryStore, Scope
from memory_plugin.models import every_page

WORDS = ["coffee", "tea", "river", "mountain", "berlin", "piano", "garden", "train"]


@dataclass
class Ledger:
    """What the workers did: calls made, writes acknowledged (memory id -> scope, text), background messages."""

    calls: int = 0
    acked: dict[str, tuple[Scope, str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    background: list[tuple[Scope, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def scope_of(worker: int) -> Scope:
    return Scope(app_id=f"app{worker % 3}", tenant_id=f"t{worker}", agent_id=f"a{worker % 2}", run_id="r1")


async def run_steps(
    call: Callable[..., Awaitable[Any]], worker: int, ledger: Ledger, deadline: float, seed: int
) -> None:
    """One worker's loop; ``call(method_name, *args, **kwargs)`` performs a store call (sync or async)."""
    rng = random.Random(seed)
    scope = scope_of(worker)
    mine: list[str] = []
    step = 0
    while time.monotonic() < deadline:
        step += 1
        text = f"worker {worker} step {step} likes {rng.choice(WORDS)} and {rng.choice(WORDS)}"
        choice = rng.random()
        try:
            if choice < 0.25:
                result = await call("add", scope, text=text)
                with ledger.lock:
                    ledger.acked[result.memories[0].id] = (scope, text)
                mine.append(result.memories[0].id)
            elif choice < 0.35:
                await call("add", scope, messages=[{"role": "user", "content": text}], sync=False)
                with ledger.lock:
                    ledger.background.append((scope, text))
            elif choice < 0.55:
                read = Scope(app_id=scope.app_id, tenant_id="*", agent_id="*", run_id="*")
                for hit in await call("search", read, rng.choice(WORDS), top_k=5):
                    assert hit.memory.scope.app_id == scope.app_id
            elif choice < 0.7:
                for memory in (await call("list", scope, limit=20)).items:
                    assert memory.scope == scope
            elif choice < 0.8 and mine:
                memory_id = rng.choice(mine)
                await call("get", scope, memory_id)
            elif choice < 0.9 and mine:
                memory_id = rng.choice(mine)
                await call("update", scope, memory_id, text=text)
                with ledger.lock:
                    ledger.acked[memory_id] = (scope, text)
            elif mine:
                memory_id = mine.pop(rng.randrange(len(mine)))
                await call("delete", scope, memory_id)
                with ledger.lock:
                    ledger.deleted.add(memory_id)
            else:
                await call("messages", scope)
        except MemoryNotFoundError as e:  # never expected: each worker only touches its own memories
            ledger.errors.append(e)
        except Exception as e:
            ledger.errors.append(e)
        finally:
            with ledger.lock:
                ledger.calls += 1


def run_threads(store: MemoryStore, threads: int, seconds: float, ledger: Ledger) -> None:
    deadline = time.monotonic() + seconds

    async def call(name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(store, name)(*args, **kwargs)

    workers = [
        threading.Thread(target=lambda w=w: asyncio.run(run_steps(call, w, ledger, deadline, w)), daemon=True)
        for w in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
        assert not worker.is_alive(), "deadlock: a worker thread did not finish"


async def run_tasks(store: AsyncMemoryStore, tasks: int, seconds: float, ledger: Ledger, first: int = 100) -> None:
    deadline = time.monotonic() + seconds

    async def call(name: str, *args: Any, **kwargs: Any) -> Any:
        return await getattr(store, name)(*args, **kwargs)

    await asyncio.wait_for(
        asyncio.gather(*(run_steps(call, first + t, ledger, deadline, first + t) for t in range(tasks))),
        timeout=seconds + 120,
    )


def check_ledger(store: MemoryStore, ledger: Ledger) -> int:
    """Every acknowledged write readable, every background message stored and extracted. Returns the number of
    acknowledged writes lost (0 expected). Call after :func:`audited_calls`: these reads are audited too."""
    assert store.flush(timeout=120)
    lost = 0
    for memory_id, (scope, text) in ledger.acked.items():
        if memory_id in ledger.deleted:
            continue
        try:
            lost += store.get(scope, memory_id).text != text
        except MemoryNotFoundError:
            lost += 1
    for scope in {scope for scope, _ in ledger.background}:
        contents = {m.content for m in every_item(store.messages, scope)}
        texts = {m.text for m in every_item(store.list, scope)}
        lost += sum(text not in contents or text not in texts for s, text in ledger.background if s == scope)
    return lost


def every_item(method: Callable[..., Any], scope: Scope) -> list[Any]:
    return [item for page in every_page(lambda cursor: method(scope, limit=100, cursor=cursor)) for item in page.items]


def audited_calls(store: MemoryStore) -> int:
    """Audit records of public calls (background extraction records excluded), through the public API: a listing's
    pages never hold the records its own calls add (they are newer than its cursor)."""
    total = 0
    for app in ("app0", "app1", "app2"):
        read = Scope(app_id=app, tenant_id="*", agent_id="*", run_id="*")
        records = every_item(lambda scope, **page: store.requests(scope, **page), read)
        total += sum(r.operation != "ExtractMemories" for r in records if r.scope is not None)
    # Store-level calls (no scope) show in every app's listing: count them once.
    records = every_item(lambda scope, **page: store.requests(scope, **page), Scope("app0", "*", "*", "*"))
    return total + sum(r.scope is None and r.operation != "ExtractMemories" for r in records)

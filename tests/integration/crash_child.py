"""A child process for durability tests: ``python -m tests.integration.crash_child MODE PATH``.

Prints one line per acknowledged write (``ack <memory or message id> <text>``) and flushes, so the parent knows
exactly what was acknowledged before it sends SIGKILL."""

from __future__ import annotations

import os
import random
import re
import signal
import string
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from memory_plugin import (
    Embedder,
    ExtractionInput,
    MemoryClient,
    MemoryOperation,
    MemoryStore,
    MemoryStoreExistsError,
    Settings,
    TurnExtractor,
)
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder
from tests.internals import catch_up_index


class SlowExtractor(TurnExtractor):
    """Never finishes in time: background jobs stay pending until the process is killed."""

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]:
        time.sleep(600)
        return super().extract(request)


POSITIONS = 3000  # enough memories that Chroma reads its HNSW files (and crashes on damaged ones)


def position_vectors(texts: list[str]) -> list[list[float]]:
    """A random direction per number: ``"note 0007 about rivers"`` and the query ``"code h"`` (h = 7) point the
    same way and share no word, so only the vector index (or the exact scan) can find one from the other."""
    rows = []
    for text in texts:
        coded = re.fullmatch(r"code ([a-z]+)", text)
        number = re.search(r"\d+", text)
        if coded:
            position = sum(string.ascii_lowercase.index(c) * 26**k for k, c in enumerate(reversed(coded[1])))
        else:
            position = int(number[0]) if number else -1
        rows.append(np.random.default_rng(position + 1).standard_normal(16).tolist())
    return rows


def make_position_embedder() -> Embedder:
    return Embedder(position_vectors, name="position-16", dimension=16)


def wait_for(pid: int, timeout: float) -> str:
    """The exit code of child ``pid``, or ``"hung"`` (and it is killed) if it has not exited within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return str(os.waitstatus_to_exitcode(status))
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wal_size(path: str) -> int:
    wal = Path(path) / "memory.db-wal"
    return wal.stat().st_size if wal.exists() else 0


def churn(store: MemoryStore, path: str, rng: random.Random) -> None:
    """Adds, updates, deletes and delete_all (which checkpoints the WAL), announced before (``do``) and
    acknowledged after (``ok <memory id> <WAL size>``), so the parent knows which one a kill interrupted."""
    live: list[str] = []
    i = time.time_ns() // 1000
    scratch = SCOPE.with_(tenant_id="scratch")
    while True:
        roll = rng.random()
        if roll < 0.4 or len(live) < 3:
            text = f"churn memory {i} about topic{i % 11}"
            say(f"do add - {text}")
            memory_id = store.add(SCOPE, text=text).memories[0].id
            live.append(memory_id)
        elif roll < 0.7:
            memory_id, text = rng.choice(live), f"updated memory {i} about topic{i % 11}"
            say(f"do upd {memory_id} {text}")
            store.update(SCOPE, memory_id, text=text)
        elif roll < 0.9:
            memory_id = live.pop(rng.randrange(len(live)))
            say(f"do del {memory_id} -")
            store.delete(SCOPE, memory_id)
        else:
            store.add(scratch, text=f"scratch memory {i}")
            memory_id = "-"
            say("do forget - -")
            store.delete_all(scratch.with_(agent_id="*", run_id="*"))
        say(f"ok {memory_id} {wal_size(path)}")
        i += 1


def store_churn(client: MemoryClient) -> None:
    """Creates stores (with a memory each, searched through the vector index) and deletes older ones."""
    existing: list[str] = []
    while True:
        name = f"s{time.time_ns()}"
        say(f"do create {name} -")
        store = client.create_memory_store(name)
        memory_id = store.add(SCOPE, text=f"the memory of {name}").memories[0].id
        store.search(SCOPE, "memory", top_k=1)
        existing.append(name)
        say(f"ok {name} {memory_id}")
        if len(existing) > 2:
            name = existing.pop(0)
            say(f"do drop {name} -")
            client.delete_memory_store(name)
            say(f"ok {name} -")


def main(mode: str, path: str) -> None:
    extractor = SlowExtractor() if mode == "pending" else None
    embedder = make_position_embedder() if mode == "search" else make_fake_embedder()
    # These modes search through the vector index (Chroma is open while stores come and go, forks happen, ...).
    settings = INDEX_PATH if mode in ("stores", "search", "fork") else Settings()
    client = MemoryClient(path=path, embedder=embedder, extractor=extractor, settings=settings)
    try:
        store = client.create_memory_store("crash", description="durability test")
    except MemoryStoreExistsError:  # a later trial on the same folder
        store = client.get_memory_store("crash")
    if mode == "churn":
        churn(store, path, random.Random(int(os.environ.get("CRASH_SEED", "0"))))
    elif mode == "stores":
        store_churn(client)
    elif mode == "hold":
        say("ready")
        time.sleep(600)
    elif mode == "adds":
        for i in range(100):
            store.add(SCOPE.with_(run_id=f"run-{i % 5}"), text=f"warm up memory {i} about subject {i}")
        catch_up_index(store)  # the index exists on disk before the kill, as in a long-lived process
        say("indexed")
        i = 0
        while True:
            text = f"acknowledged memory {i} about topic {i * 7}"
            memory = store.add(SCOPE, messages=[{"role": "user", "content": text}]).memories[0]
            say(f"ack {memory.id} {text}")
            i += 1
    elif mode == "mixed":  # sync adds and background adds while the worker extracts: killed at a random point
        i = time.time_ns() // 1000  # texts stay unique across trials on one folder
        while True:
            text = f"mixed write {i} about topic{i % 13} and river{i % 7}"
            scope = SCOPE.with_(tenant_id=f"user-{i % 3:03d}")
            if i % 3 == 2:
                result = store.add(scope, messages=[{"role": "user", "content": text}], sync=False)
                say(f"ack msg {scope.tenant_id} {result.message_ids[0]} {text}")
            else:
                memory = store.add(scope, text=text).memories[0]
                say(f"ack mem {scope.tenant_id} {memory.id} {text}")
            i += 1
    elif mode == "repair":  # reopen after a crash: the index repair (and pending extraction) is killed midway
        say("opened")
        catch_up_index(client)
        say("repaired")
        time.sleep(600)
    elif mode == "search":  # reopen a folder whose index may be damaged: search through the index path
        for when in ("at once", "after catch-up"):
            if when == "after catch-up":
                catch_up_index(client)  # the index is sound again
            hits = store.search(SCOPE, "code h", top_k=1)  # h = 7: found by its vector only
            say(f"{when}: {hits[0].memory.text if hits else 'nothing'}")
        client.close()
    elif mode == "fork":  # fork with the client open: each child must leave the parent's folder alone
        store.add(SCOPE, text="written before the forks")
        pid = os.fork()
        if pid == 0:  # a child that never uses the client exits normally: atexit hooks and finalisation run
            sys.exit(0)
        say(f"first child exited: {wait_for(pid, timeout=30)}")
        say("parent waiting")
        sys.stdin.readline()  # the test checks the lock and the record meanwhile
        store.search(SCOPE, "before the forks")  # Chroma is open now
        pid = os.fork()
        if pid == 0:  # a child that tries the client
            try:
                store.search(SCOPE, "anything")
                say("second child: the search worked")
            except Exception as e:
                say(f"second child: {type(e).__name__}: {e}")
            sys.exit(0)
        say(f"second child exited: {wait_for(pid, timeout=30)}")
        store.add(SCOPE, text="written after the forks")
        say("parent: " + ", ".join(sorted(h.memory.text for h in store.search(SCOPE, "written forks", top_k=5))))
        client.close()
    elif mode == "pending":
        for i in range(3):
            text = f"pending message {i} mentions river{i}"
            result = store.add(SCOPE, messages=[{"role": "user", "content": text}], sync=False)
            say(f"ack {result.message_ids[0]} {text}")
        time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

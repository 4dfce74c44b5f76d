"""A child process for durability tests: ``python -m tests.integration.crash_child MODE PATH``.

Prints one line per acknowledged write (``ack <memory or message id> <text>``) and flushes, so the parent knows
exactly what was acknowledged before it sends SIGKILL."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from memory_plugin import ExtractionInput, MemoryClient, MemoryOperation, MemoryStoreExistsError, TurnExtractor
from tests.conftest import SCOPE, make_fake_embedder


class SlowExtractor(TurnExtractor):
    """Never finishes in time: background jobs stay pending until the process is killed."""

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]:
        time.sleep(600)
        return super().extract(request)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(mode: str, path: str) -> None:
    extractor = SlowExtractor() if mode == "pending" else None
    client = MemoryClient(path=path, embedder=make_fake_embedder(), extractor=extractor)
    try:
        store = client.create_memory_store("crash", description="durability test")
    except MemoryStoreExistsError:  # a later trial on the same folder
        store = client.get_memory_store("crash")
    if mode == "hold":
        say("ready")
        time.sleep(600)
    elif mode == "adds":
        for i in range(100):
            store.add(SCOPE.with_(run_id=f"run-{i % 5}"), text=f"warm up memory {i} about subject {i}")
        store._engine.index.catch_up()  # the index exists on disk before the kill, as in a long-lived process
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
        client._engine.index.catch_up()
        say("repaired")
        time.sleep(600)
    elif mode == "pending":
        for i in range(3):
            text = f"pending message {i} mentions river{i}"
            result = store.add(SCOPE, messages=[{"role": "user", "content": text}], sync=False)
            say(f"ack {result.message_ids[0]} {text}")
        time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

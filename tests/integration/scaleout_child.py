"""A memory process of the scaled-out deployment for kill -9 tests:
``python -m tests.integration.scaleout_child MODE DATABASE INDEX``.

``write`` adds memories one after another and prints ``ack <memory id>`` (flushed) for each acknowledged one;
``extract`` queues one background extraction that never finishes here (its extractor sleeps), prints
``ack running`` once this process holds the job, and waits to be killed. (Acknowledging on queueing alone let the
test's own process claim the job first on a loaded machine, and finish it before anyone saw it running.)"""

from __future__ import annotations

import sys
import time

from memory_plugin import MemoryClient, MemoryStoreExistsError, Settings
from tests.conftest import SCOPE, make_fake_embedder, turn
from tests.integration.crash_child import SlowExtractor

LEASE_SECONDS = 3.0  # long enough that a starved child still renews; short enough that hand-off is quick
STORE = "shared"


def main(mode: str, database: str, index: str) -> None:
    extractor = SlowExtractor() if mode == "extract" else None
    settings = Settings(job_lease_seconds=LEASE_SECONDS)
    client = MemoryClient(database=database, index=index, embedder=make_fake_embedder(), extractor=extractor,
                          settings=settings)  # fmt: skip
    try:
        store = client.create_memory_store(STORE)
    except MemoryStoreExistsError:
        store = client.get_memory_store(STORE)
    if mode == "write":
        for number in range(100_000):
            memory = store.add(SCOPE, text=f"note {number} about rivers").memories[0]
            print(f"ack {memory.id}", flush=True)
    elif mode == "extract":
        store.add(SCOPE, messages=[turn("user", "I keep bees"), turn("assistant", "Lovely")], sync=False)
        while not [job for job in store.extraction_status() if job.state == "running"]:
            time.sleep(0.05)
        print("ack running", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""One SIGKILL trial, shared by the fault tests and ``benchmarks/reliability.py``: a child process writes (sync and
background adds while the worker extracts) and is killed at a random point; sometimes the reopen that repairs the
index is killed too; then the parent reopens the folder and checks that every acknowledged write is there."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

from memory_plugin import MemoryClient, MemoryNotFoundError, Scope
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder
from tests.integration.test_durability import folder_size, kill, read_line, start_child
from tests.internals import catch_up_index
from tests.reliability.load import every_item


@dataclass
class TrialResult:
    acknowledged: int
    lost: int
    size: int
    index_folders: int


def crash_trial(path: Path, rng: random.Random, kill_repair: bool) -> TrialResult:
    """Kill a writer after a random number of acknowledged writes (and maybe the repairing reopen), then check."""
    acked: list[list[str]] = []
    child = start_child("mixed", path)
    try:
        for _ in range(rng.randint(3, 30)):
            acked.append(read_line(child).split(" ", 4)[1:])
        time.sleep(rng.random() * 0.05)  # land anywhere: mid-transaction, mid-extraction, mid-index update
    finally:
        kill(child)
    if kill_repair:
        child = start_child("repair", path)
        try:
            assert read_line(child) == "opened"
            time.sleep(rng.random() * 0.3)
        finally:
            kill(child)
    lost = 0
    # Searches take the vector index path: the record answers while the index is rebuilt, then the index does.
    with MemoryClient(path=path, embedder=make_fake_embedder(), settings=INDEX_PATH) as client:
        store = client.get_memory_store("crash")
        assert store.flush(timeout=60)
        for kind, tenant, item_id, text in acked:
            scope = SCOPE.with_(tenant_id=tenant)
            if kind == "mem":
                try:
                    lost += store.get(scope, item_id).text != text
                except MemoryNotFoundError:
                    lost += 1
            else:
                lost += item_id not in [m.id for m in every_item(store.messages, scope)]
                lost += text not in [m.text for m in every_item(store.list, scope)]
        # Nothing half-written: every message memory points at a stored message, every message is extracted once.
        read = Scope(app_id=SCOPE.app_id, tenant_id="*", agent_id="*", run_id="*")
        texts = [m.text for m in every_item(store.list, read)]
        assert len(texts) == len(set(texts)), "a write or an extraction was applied twice"
        catch_up_index(client)  # search through the repaired vector index
        for _, tenant, _item_id, text in acked[-3:]:
            hits = store.search(SCOPE.with_(tenant_id=tenant), text, top_k=3)
            lost += text not in [h.memory.text for h in hits]
        index_folders = len(list(path.glob("index-*")))
    return TrialResult(len(acked), lost, folder_size(path), index_folders)

"""SIGKILL during updates, deletes, delete_all and its WAL checkpoint, and store creation and deletion; and a torn
write-ahead log. The child announces each operation before it starts and acknowledges it after, so the parent
knows the exact state every acknowledged operation left and which one operation the kill may have interrupted:
after a restart the store must hold exactly that state (the interrupted operation either applied or not)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from memory_plugin import MemoryClient, MemoryNotFoundError, MemoryStoreNotFoundError
from tests.conftest import INDEX_PATH, SCOPE, make_fake_embedder
from tests.integration.test_durability import folder_size, kill, read_line, start_child
from tests.internals import catch_up_index
from tests.reliability.load import every_item


@dataclass
class Journal:
    """What the child acknowledged, replayed: the expected state, and the operation in flight at the kill."""

    expected: dict[str, str] = field(default_factory=dict)
    in_flight: list[str] | None = None
    wal_at_last_ack: int = 0

    def replay(self, lines: list[str]) -> None:
        """``do <op> <target> <text>`` announces an operation; ``ok <key> <value>`` acknowledges it (``key`` is
        the memory id or store name it made; ``value`` the WAL size, or the memory id a new store holds)."""
        for line in lines:
            kind, rest = line.split(" ", 1)
            if kind == "do":
                self.in_flight = rest.split(" ", 2)
                continue
            key, value = rest.split(" ")
            assert self.in_flight is not None
            op, target, text = self.in_flight
            if value.isdigit():  # the churn child reports the WAL's size after each acknowledged operation
                self.wal_at_last_ack = int(value)
            if op in ("add", "upd"):
                self.expected[key if op == "add" else target] = text
            elif op == "create":
                self.expected[key] = value
            elif op in ("del", "drop"):
                self.expected.pop(target)
            self.in_flight = None

    def outcomes(self) -> list[dict[str, str]]:
        """Every state the store may be in: the interrupted operation applied, or not."""
        if self.in_flight is None:
            return [self.expected]
        op, target, text = self.in_flight
        applied = dict(self.expected)
        if op == "upd":
            applied[target] = text
        elif op in ("del", "drop"):
            applied.pop(target, None)
        return [self.expected, applied]


def run_child(mode: str, path: Path, rng: random.Random) -> list[str]:
    """Start the child, let it acknowledge a random number of operations, SIGKILL it anywhere, and return every
    line it wrote before it died."""
    child = start_child(mode, path, CRASH_SEED=str(rng.randrange(1 << 30)))
    lines: list[str] = []
    try:
        for _ in range(rng.randint(6, 40)):
            lines.append(read_line(child))
    finally:
        kill(child)
    assert child.stdout is not None
    return lines + child.stdout.read().splitlines()  # what it acknowledged between the last read and the kill


def tear(wal: Path, start: int, rng: random.Random) -> None:
    """A torn write: the log's tail after ``start`` (where it ended at the last acknowledgement) is cut or garbled."""
    size = wal.stat().st_size if wal.exists() else 0
    if size <= start:
        return
    cut = rng.randrange(start, size)
    if rng.random() < 0.5:
        with wal.open("r+b") as handle:
            handle.truncate(cut)
    else:
        with wal.open("r+b") as handle:
            handle.seek(cut)
            handle.write(rng.randbytes(min(4096, size - cut)))


@pytest.mark.parametrize("trial", range(6))
def test_kill_during_updates_deletes_and_checkpoints(tmp_path: Path, trial: int) -> None:
    rng = random.Random(trial)
    path = tmp_path / "data"
    journal = Journal()
    for _ in range(2):  # a second run on the same folder starts from the state the first left
        journal.replay(run_child("churn", path, rng))
        if trial % 2:
            tear(path / "memory.db-wal", journal.wal_at_last_ack, rng)
        with MemoryClient(path=path, embedder=make_fake_embedder(), settings=INDEX_PATH) as client:
            store = client.get_memory_store("crash")
            actual = {m.id: m.text for m in every_item(store.list, SCOPE)}
            if journal.in_flight and journal.in_flight[0] == "add":  # the interrupted add may have committed
                actual = {k: v for k, v in actual.items() if v != journal.in_flight[2]}
            assert actual in journal.outcomes()
            for memory_id, text in actual.items():
                assert store.history(SCOPE, memory_id)[-1].new_text == text  # history agrees with the memory
            journal.expected, journal.in_flight = actual, None
            catch_up_index(client)  # the vector index agrees with the record too
            for memory_id, text in list(actual.items())[-3:]:
                assert memory_id in [h.memory.id for h in store.search(SCOPE, text, top_k=3)]


@pytest.mark.parametrize("trial", range(3))
def test_kill_during_store_creation_and_deletion(tmp_path: Path, trial: int) -> None:
    rng = random.Random(100 + trial)
    path = tmp_path / "data"
    journal = Journal()
    journal.replay(run_child("stores", path, rng))
    with MemoryClient(path=path, embedder=make_fake_embedder(), settings=INDEX_PATH) as client:
        names = {s.name for s in client.list_memory_stores()} - {"crash"}
        if journal.in_flight and journal.in_flight[0] == "create":  # the interrupted creation may have committed
            names.discard(journal.in_flight[1])
        assert names in [set(outcome) for outcome in journal.outcomes()]
        for name in names:
            store = client.get_memory_store(name)
            memory_id = journal.expected[name]
            assert store.get(SCOPE, memory_id).text == f"the memory of {name}"
        for name in set(journal.expected) - names:
            with pytest.raises(MemoryStoreNotFoundError):
                client.get_memory_store(name)
        catch_up_index(client)
        for name in names:
            hits = client.get_memory_store(name).search(SCOPE, "the memory", top_k=5)
            assert [h.memory.id for h in hits] == [journal.expected[name]]  # no memory of a dropped store
        with pytest.raises(MemoryNotFoundError):
            client.get_memory_store("crash").get(SCOPE, "mem_missing")
    assert len(list(path.glob("index-*"))) == 1 and folder_size(path) < 50_000_000

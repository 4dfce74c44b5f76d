"""Crash safety, restart and the one-owner lock, with real child processes and SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory_plugin import Embedder, MemoryClient, StoreLockedError
from memory_plugin import search as search_module
from tests.conftest import SCOPE

ROOT = Path(__file__).resolve().parents[2]


def start_child(mode: str, path: Path, **extra_env: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    path.parent.mkdir(parents=True, exist_ok=True)
    # stderr goes to a file, not a pipe: a full pipe would block the child.
    with open(path.parent / f"{mode}.stderr", "w") as errors:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_child", mode, str(path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )


def read_line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=30)
        logs = "\n".join(p.read_text() for p in Path(child.args[-1]).parent.glob("*.stderr"))  # type: ignore[index]
        raise AssertionError(f"child exited early: {logs}")
    return line.rstrip("\n")


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def test_sigkill_during_adds_loses_nothing_acknowledged(
    tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data"
    child = start_child("adds", path)
    try:
        assert read_line(child) == "indexed"
        acked = [read_line(child).split(" ", 2)[1:] for _ in range(40)]
        size_before = folder_size(path)
    finally:
        kill(child)
    with MemoryClient(path=path, embedder=fake_embedder) as client:
        assert client._engine.unclean_start
        store = client.get_memory_store("crash")
        for memory_id, text in acked:
            assert store.get(SCOPE, memory_id).text == text
            assert memory_id in [h.memory.id for h in store.search(SCOPE.with_(run_id="*"), text, top_k=3)]
        # The vector index is rebuilt from the record: search through it too, not only the exact scan.
        client._engine.index.catch_up()
        monkeypatch.setattr(search_module, "EXACT_SCAN_LIMIT", 0)
        for memory_id, text in acked[-5:]:
            assert memory_id in [h.memory.id for h in store.search(SCOPE.with_(run_id="*"), text, top_k=3)]
        assert len(list(path.glob("index-*"))) == 1
    assert folder_size(path) <= 3 * size_before


def test_pending_background_work_resumes_after_a_crash(tmp_path: Path, fake_embedder: Embedder) -> None:
    path = tmp_path / "data"
    child = start_child("pending", path)
    try:
        acked = [read_line(child).split(" ", 2)[1:] for _ in range(3)]
    finally:
        kill(child)
    with MemoryClient(path=path, embedder=fake_embedder) as client:
        store = client.get_memory_store("crash")
        assert [m.id for m in store.messages(SCOPE).items] == [message_id for message_id, _ in acked]
        assert store.flush(timeout=60) is True
        assert sorted(m.text for m in store.list(SCOPE).items) == sorted(text for _, text in acked)


def test_a_second_process_gets_store_locked_quickly(tmp_path: Path, fake_embedder: Embedder) -> None:
    path = tmp_path / "data"
    child = start_child("hold", path)
    try:
        assert read_line(child) == "ready"
        started = time.monotonic()
        with pytest.raises(StoreLockedError, match=f"process {child.pid}"):
            MemoryClient(path=path, embedder=fake_embedder)
        assert time.monotonic() - started < 5
    finally:
        kill(child)
    # The kernel released the dead owner's lock: the folder opens again.
    with MemoryClient(path=path, embedder=fake_embedder) as client:
        assert [s.name for s in client.list_memory_stores()] == ["crash"]


def test_one_client_per_folder_in_process_too(tmp_path: Path, fake_embedder: Embedder) -> None:
    with (
        MemoryClient(path=tmp_path, embedder=fake_embedder),
        pytest.raises(StoreLockedError, match="already open in this process"),
    ):
        MemoryClient(path=tmp_path, embedder=fake_embedder)
    MemoryClient(path=tmp_path, embedder=fake_embedder).close()


def test_unclean_shutdown_rebuilds_the_index_from_the_record(
    tmp_path: Path, fake_embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "EXACT_SCAN_LIMIT", 0)
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        store = client.create_memory_store("s")
        ids = [store.add(SCOPE, text=f"note {i} about cats {i}").memories[0].id for i in range(10)]
        store.search(SCOPE, "cats")  # builds the index
    # Simulate a crash after the last write: the owner never marked the folder closed, and Chroma's files are junk.
    with sqlite3.connect(tmp_path / "memory.db") as db:
        db.execute("UPDATE meta SET value = 'open' WHERE key = 'owner_state'")
    for index_file in tmp_path.glob("index-*/**/*"):
        if index_file.is_file():
            index_file.write_bytes(b"\x00garbage")
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        assert client._engine.unclean_start
        store = client.get_memory_store("s")
        client._engine.index.catch_up()  # wait for the rebuild (searches meanwhile scan the record exactly)
        found = {h.memory.id for h in store.search(SCOPE, "note about cats", top_k=10)}
        assert found == set(ids)
        assert [p.name for p in tmp_path.glob("index-*")] == ["index-2"]
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        assert not client._engine.unclean_start

"""Crash safety, restart and the one-owner lock, with real child processes and SIGKILL."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory_plugin import Embedder, MemoryClient, StoreLockedError
from tests.conftest import INDEX_PATH, SCOPE
from tests.integration.crash_child import POSITIONS, make_position_embedder
from tests.internals import catch_up_index, index_pending, unclean_start

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
            stdin=subprocess.PIPE,
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
    # Searches take the vector index path: the record answers while the index is rebuilt, then the index does.
    with MemoryClient(path=path, embedder=fake_embedder, settings=INDEX_PATH) as client:
        assert unclean_start(client)
        store = client.get_memory_store("crash")
        for memory_id, text in acked:
            assert store.get(SCOPE, memory_id).text == text
            assert memory_id in [h.memory.id for h in store.search(SCOPE.with_(run_id="*"), text, top_k=3)]
        # The vector index is rebuilt from the record: search through it too, not only the exact scan.
        catch_up_index(client)
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
    with MemoryClient(path=tmp_path, embedder=fake_embedder, settings=INDEX_PATH) as client:
        store = client.create_memory_store("s")
        ids = [store.add(SCOPE, text=f"note {i} about cats {i}").memories[0].id for i in range(10)]
        store.search(SCOPE, "cats")  # builds the index
    # Simulate a crash after the last write: the owner never marked the folder closed, and Chroma's files are junk.
    with sqlite3.connect(tmp_path / "memory.db") as db:
        db.execute("UPDATE meta SET value = 'open' WHERE key = 'owner_state'")
    for index_file in tmp_path.glob("index-*/**/*"):
        if index_file.is_file():
            index_file.write_bytes(b"\x00garbage")
    with MemoryClient(path=tmp_path, embedder=fake_embedder, settings=INDEX_PATH) as client:
        assert unclean_start(client)
        store = client.get_memory_store("s")
        catch_up_index(client)  # wait for the rebuild (searches meanwhile scan the record exactly)
        found = {h.memory.id for h in store.search(SCOPE, "note about cats", top_k=10)}
        assert found == set(ids)
        assert [p.name for p in tmp_path.glob("index-*")] == ["index-2"]
    with MemoryClient(path=tmp_path, embedder=fake_embedder) as client:
        assert not unclean_start(client)


@pytest.fixture(scope="module")
def indexed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 3,000 memories whose Chroma index is built, closed cleanly."""
    path = tmp_path_factory.mktemp("indexed") / "data"
    with MemoryClient(path=path, embedder=make_position_embedder(), settings=INDEX_PATH) as client:
        store = client.create_memory_store("crash")
        for start in range(0, POSITIONS, 100):
            store.add(SCOPE, messages=[{"role": "user", "content": f"note {i:04d} about rivers"}
                                       for i in range(start, start + 100)])  # fmt: skip
        catch_up_index(client)
        assert store.search(SCOPE, "code h", top_k=1)[0].memory.text == "note 0007 about rivers"
    return path


def copy_of(folder: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a data folder (file times kept) and its index folder."""
    path = tmp_path / "data"
    shutil.copytree(folder, path)
    (index,) = path.glob("index-*")
    return path, index


def damage(folder: Path, how: str) -> None:
    if how == "index folder deleted":
        shutil.rmtree(folder)
        return
    name, change = how.split()
    (target,) = folder.glob(name) if name == "chroma.sqlite3" else folder.glob(f"*/{name}")
    size = target.stat().st_size
    assert size > 0
    if change == "truncated":
        os.truncate(target, size // 2)
    else:
        target.write_bytes(random.Random(name).randbytes(size))


# Before the manifest check, on chromadb 1.5: the deleted folder answered nothing; a garbage data_level0.bin and a
# truncated header.bin crashed the process (SIGSEGV); a truncated link_lists.bin and a garbage chroma.sqlite3 raised
# raw chromadb errors; the other damage went unnoticed (and was trusted).
@pytest.mark.parametrize(
    "how",
    [
        "index folder deleted",
        "data_level0.bin truncated",
        "data_level0.bin garbage",
        "header.bin truncated",
        "length.bin truncated",
        "link_lists.bin truncated",
        "chroma.sqlite3 garbage",
    ],
)
def test_a_damaged_index_after_a_clean_close_is_rebuilt_not_trusted(
    indexed_folder: Path, tmp_path: Path, how: str
) -> None:
    path, index = copy_of(indexed_folder, tmp_path)
    damage(index, how)
    child = start_child("search", path)  # a separate process: Chroma crashed the process on some of these files
    try:
        assert read_line(child) == "at once: note 0007 about rivers"  # the record answers while the index rebuilds
        assert read_line(child) == "after catch-up: note 0007 about rivers"  # then the rebuilt index does
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            kill(child)
    assert [p.name for p in path.glob("index-*")] == ["index-2"]  # rebuilt into a fresh folder


def test_an_intact_index_after_a_clean_close_is_used_as_it_is(
    indexed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, index = copy_of(indexed_folder, tmp_path)
    with MemoryClient(path=path, embedder=make_position_embedder(), settings=INDEX_PATH) as client:
        store = client.get_memory_store("crash")
        assert store.search(SCOPE, "code h", top_k=1)[0].memory.text == "note 0007 about rivers"
        assert index_pending(client) == 0
    assert list(path.glob("index-*")) == [index]  # not rebuilt


def test_a_forked_child_leaves_the_parents_folder_alone(tmp_path: Path, fake_embedder: Embedder) -> None:
    """A process with an open client forks twice: a child that exits without using the client, then (with Chroma
    open) a child that tries to use it. Both exit normally; the parent keeps its folder and works on."""
    path = tmp_path / "data"
    child = start_child("fork", path)
    try:
        assert read_line(child) == "first child exited: 0"
        assert read_line(child) == "parent waiting"
        with pytest.raises(StoreLockedError, match=f"process {child.pid}"):  # the parent still owns the folder
            MemoryClient(path=path, embedder=fake_embedder)
        with contextlib.closing(sqlite3.connect(f"file:{path / 'memory.db'}?mode=ro", uri=True)) as db:
            assert db.execute("SELECT value FROM meta WHERE key = 'owner_state'").fetchone()[0] == "open"
        assert child.stdin is not None
        child.stdin.write("go on\n")
        child.stdin.flush()
        assert read_line(child).startswith("second child: ClientClosedError: this client was opened by process")
        assert read_line(child) == "second child exited: 0"  # promptly: not hung in Chroma's shutdown
        assert read_line(child) == "parent: written after the forks, written before the forks"  # it works on
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            kill(child)
    with MemoryClient(path=path, embedder=fake_embedder) as client:
        assert not unclean_start(client)  # the parent closed cleanly


EXIT_WITHOUT_CLOSE = """
import atexit, sys, time
from memory_plugin import MemoryClient
from memory_plugin.service import worker
from tests.conftest import SCOPE, make_fake_embedder

worker.IDLE_WAIT_SECONDS = 0.05  # the idle worker looks for work often, also while the interpreter exits
client = MemoryClient(path=sys.argv[1], embedder=make_fake_embedder())
store = client.create_memory_store("s")
store.add(SCOPE, text="written in the foreground")  # a change for the worker to bring into the index
store.add(SCOPE, messages=[{"role": "user", "content": "extracted in the background"}], sync=False)
atexit.register(time.sleep, 1.0)  # another exit hook takes a moment (it runs before the client's)
"""  # and no client.close()


def test_exiting_without_close_is_clean_and_loses_nothing(tmp_path: Path, fake_embedder: Embedder) -> None:
    path = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", EXIT_WITHOUT_CLOSE, str(path)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0
    assert "Traceback" not in result.stderr and "Exception in thread" not in result.stderr, result.stderr
    with MemoryClient(path=path, embedder=fake_embedder) as client:
        store = client.get_memory_store("s")
        assert store.flush(timeout=30) is True  # done before the exit, or pending and done now
        texts = sorted(m.text for m in store.list(SCOPE).items)
        assert texts == ["extracted in the background", "written in the foreground"]


def test_an_index_that_disagrees_with_the_record_is_rebuilt(
    indexed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index files are as they were closed, but the record holds a memory the index never saw (as after
    restoring a later copy of the record): the first look after Chroma opens counts it, and the index is rebuilt."""
    path, _ = copy_of(indexed_folder, tmp_path)
    text = "note 3001 about rivers"  # "code ell" points at 3001
    vector = make_position_embedder().embed_documents([f"user: {text}"])[0]
    with contextlib.closing(sqlite3.connect(path / "memory.db")) as db, db:
        columns = [c for (_, c, *_) in db.execute("PRAGMA table_info(memories)") if c != "seq"]
        row = db.execute(f"SELECT {', '.join(columns)} FROM memories LIMIT 1").fetchone()
        values = dict(zip(columns, row, strict=True))
        values.update(id="mem_restored", text=text, embedding=vector.tobytes())
        db.execute(f"INSERT INTO memories ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                   list(values.values()))  # fmt: skip
    with MemoryClient(path=path, embedder=make_position_embedder(), settings=INDEX_PATH) as client:
        store = client.get_memory_store("crash")
        assert store.search(SCOPE, "code ell", top_k=1)[0].memory.text == text  # the record answers meanwhile
        catch_up_index(client)
        assert store.search(SCOPE, "code ell", top_k=1)[0].memory.text == text  # and then the rebuilt index
    assert [p.name for p in path.glob("index-*")] == ["index-2"]

"""Shared fixtures. The deterministic fake embedder lives here once; quality and end-to-end tests use the real
local model (``real_embedder``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memory_plugin import AsyncMemoryClient, Embedder, Memory, MemoryClient, Scope, Settings
from memory_plugin.retrieval import stem, terms

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FAKE_DIMENSION = 256


def fake_vectors(texts: list[str]) -> list[list[float]]:
    """Bag of stemmed words hashed into 256 signed buckets: texts sharing words are similar, deterministically."""
    rows = []
    for text in texts:
        vector = np.zeros(FAKE_DIMENSION)
        for term in terms(text) or ["<empty>"]:
            digest = hashlib.md5(stem(term).encode()).digest()
            vector[digest[0]] += 1.0 if digest[1] % 2 else -1.0
        rows.append(vector.tolist())
    return rows


def make_fake_embedder() -> Embedder:
    return Embedder(fake_vectors, name="fake-hash-256", dimension=FAKE_DIMENSION)


@pytest.fixture
def fake_embedder() -> Embedder:
    return make_fake_embedder()


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    from memory_plugin.embedding import local_embedder

    return local_embedder()


SCOPE = Scope(app_id="app-001", tenant_id="user-001", agent_id="assistant", run_id="session-001")
# Texts whose keyword scores tests compare across ways of computing BM25: stems, diacritics and CJK bigrams.
KEYWORD_TEXTS = (
    "The user drinks coffee every morning",
    "Coffee, coffee and more coffee: the user's running joke",
    "Zoë visited the café in Zürich",
    "用户喜欢喝咖啡",
    "用户住在北京",
    "Running shoes were bought for the marathon",
    "The marathon runner drinks water",
)
KEYWORD_QUERIES = ("coffee", "runs marathons", "cafe zurich", "喝咖啡", "drinks water every morning", "nothing matches")


@pytest.fixture
def scope() -> Scope:
    return SCOPE


# The vector paths a search can take: by default exact from the in-memory matrix; SCAN_PATH scans the record (no
# matrix, scopes up to 4,000 memories); INDEX_PATH always asks the vector index (no matrix, no scan).
SCAN_PATH = Settings(vector_memory_limit=0)
INDEX_PATH = Settings(exact_scan_limit=0, vector_memory_limit=0)


@pytest.fixture
def settings() -> Settings:
    """The engine settings of the clients the fixtures open (a test module may override this fixture)."""
    return Settings()


@pytest.fixture(params=["embedded", "http", "postgres+chroma"])
def backend(request: pytest.FixtureRequest) -> str:
    """Where the memory lives: ``embedded`` (a data folder in this process), ``http`` (a memory server on
    loopback, reached with the remote client) or ``postgres+chroma`` (a new database of a throwaway PostgreSQL
    cluster with a throwaway Chroma server, in this process)."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _stop_scaleout_servers() -> Iterator[None]:
    """The throwaway PostgreSQL cluster and Chroma server are started by the first test that needs them and
    stopped when the session ends."""
    yield
    from tests.scaleout_harness import stop_servers

    stop_servers()


@contextmanager
def opened(
    backend: str, path: Path, embedder: Embedder, settings: Settings, aio: bool = False, app_id: str = "app-001"
) -> Iterator[Any]:
    """A sync (or async) client of ``backend`` over the data folder ``path``; a server runs as long as it is open,
    reached with an admin key of ``app_id`` (a key reaches one app)."""
    if backend == "embedded":
        yield (AsyncMemoryClient if aio else MemoryClient)(path=path, embedder=embedder, settings=settings)
        return
    if backend == "postgres+chroma":
        from tests.scaleout_harness import servers

        postgres, chroma = servers()
        where = {"database": postgres.new_database(), "index": chroma.url}
        yield (AsyncMemoryClient if aio else MemoryClient)(**where, embedder=embedder, settings=settings)
        return
    from tests.server_harness import running_server

    with running_server(path, embedder, settings, app_id) as server:
        yield server.async_client() if aio else server.client()


@pytest.fixture
def client(tmp_path: Path, fake_embedder: Embedder, settings: Settings) -> Iterator[MemoryClient]:
    """An embedded client (tests of in-process behaviour: extractors, embedders, the worker, storage faults)."""
    with opened("embedded", tmp_path / "data", fake_embedder, settings) as c, c:
        yield c


class AsyncAsSync:
    """Runs an async object's coroutine methods on a private event loop thread, so the same conformance tests
    drive the sync and the async API."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return asyncio.run_coroutine_threadsafe(result, self._loop).result(timeout=120)
            return result

        return call


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


@pytest.fixture(params=["sync", "async"])
def api(
    request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: Embedder, settings: Settings, backend: str
) -> Iterator[Any]:
    """A memory store named ``conformance`` through the sync API or the async API (same contract), on ``backend``."""
    if request.param == "sync":
        with opened(backend, tmp_path / "data", fake_embedder, settings) as c, c:
            yield c.create_memory_store("conformance", description="sync")
        return
    loop = request.getfixturevalue("event_loop_thread")
    with opened(backend, tmp_path / "data", fake_embedder, settings, aio=True) as aio:
        client = AsyncAsSync(aio, loop)
        yield AsyncAsSync(client.create_memory_store("conformance", description="async"), loop)
        client.close()


def turn(role: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": content, **extra}


def memory_value(text: str, **fields: Any) -> Memory:
    """A :class:`Memory` value for tests of pure logic (no store): in ``SCOPE``, with a fixed id, type and times
    unless ``fields`` say otherwise."""
    when = datetime(2024, 5, 9, 12, 0, tzinfo=timezone.utc)
    defaults = {"id": "mem_1", "scope": SCOPE, "memory_type": "fact", "created_at": when, "updated_at": when}
    return Memory(**{**defaults, "event_time": when, "text": text, **fields})


Factory = Callable[..., Any]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Conformance variants that would only repeat another on ``postgres+chroma`` are not run there: the in-memory
    matrix is the SQLite record's (``memory`` is ``scan`` on PostgreSQL), and bad input is refused before storage
    is touched (one vector path is enough)."""
    repeats = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("backend") != "postgres+chroma":
            continue
        bad_input = item.name.startswith("test_bad_input_is_a_clear_error")
        if params.get("settings") == "memory" or (bad_input and params.get("settings") != "scan"):
            repeats.append(item)
    if repeats:
        config.hook.pytest_deselected(items=repeats)
        dropped = set(repeats)
        items[:] = [item for item in items if item not in dropped]

"""examples/web_app: the chatbot started with ``uvicorn --workers 4`` against one memory server. Facts told to the
bot through every worker are recalled through every worker (so through every other), none lost; no worker ever
recalls another user's fact. Real model, real server, real worker processes."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_plugin.embedding import Embedder
from memory_plugin.server.app import ServerLimits
from tests.server_harness import REPOSITORY, free_port, running_server

pytestmark = pytest.mark.model
WORKERS = 4
EXAMPLE = REPOSITORY / "examples" / "web_app"
ROUNDS = 40  # of WORKERS * 2 requests at once: far more than it takes to meet every worker


def remembered_of() -> Callable[[str], Any]:
    spec = importlib.util.spec_from_file_location("web_app_example", EXAMPLE / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve names through it
    spec.loader.exec_module(module)
    return module.remembered  # type: ignore[no-any-return]


@pytest.fixture
def web_app(tmp_path: Path, real_embedder: Embedder) -> Iterator[str]:
    """The example on ``WORKERS`` uvicorn workers, each with its own remote client to one memory server."""
    # One key for the whole app: its rate limit is the app's, so raise it over what four workers ask for here.
    limits = ServerLimits(requests_per_second=100_000, burst=100_000)
    with running_server(tmp_path / "data", real_embedder, app_id="web-chat", limits=limits) as server:
        port = free_port()
        env = {**os.environ, "MEMORY_PLUGIN_ENDPOINT": server.url, "MEMORY_PLUGIN_ACCESS_KEY_ID": server.key.key_id,
               "MEMORY_PLUGIN_ACCESS_KEY_SECRET": server.secret}  # fmt: skip
        command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE), "--workers", str(WORKERS),
                   "--port", str(port), "--log-level", "warning"]  # fmt: skip
        log = tmp_path / "web_app.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=output, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if httpx.get(url + "/openapi.json", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=60)
        assert "Traceback" not in log.read_text(), log.read_text()


def say(url: str, user: str, session: str, message: str) -> tuple[int, str]:
    """One chat turn on a fresh connection (so any worker may take it): the worker's pid and the reply."""
    response = httpx.post(url + "/chat", json={"user": user, "session": session, "message": message}, timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    return answer["worker"], answer["reply"]


def fact_of(user: str) -> str:
    return f"My locker code is {user.removeprefix('user')}{user.removeprefix('user')}"


def test_turns_written_through_every_worker_are_recalled_through_every_other(web_app: str) -> None:
    remembered = remembered_of()
    writers: dict[str, int] = {}  # user -> the worker that took the user's fact
    with ThreadPoolExecutor(WORKERS * 2) as pool:
        for _ in range(ROUNDS):
            if len(set(writers.values())) == WORKERS:
                break
            users = [f"user{len(writers) + i}" for i in range(WORKERS * 2)]
            answers = pool.map(lambda u: say(web_app, u, "monday", fact_of(u)), users)
            for user, (worker, reply) in zip(users, answers, strict=True):
                assert reply == "Noted."
                writers[user] = worker
        assert len(set(writers.values())) == WORKERS, "the workers never all took a write"

        readers: dict[str, set[int]] = {user: set() for user in writers}
        for _ in range(ROUNDS):
            waiting = [user for user, seen in readers.items() if len(seen) < WORKERS]
            if not waiting:
                break
            asked = (waiting * WORKERS * 2)[: WORKERS * 2]
            answers = pool.map(lambda u: say(web_app, u, "friday", "What do you remember about me?"), asked)
            for user, (worker, reply) in zip(asked, answers, strict=True):
                recalled = remembered(reply)
                assert fact_of(user) in recalled, (user, worker, reply)  # nothing lost
                assert not set(recalled) & {fact_of(other) for other in writers if other != user}  # nor mixed
                readers[user].add(worker)
    missing = {user: WORKERS - len(seen) for user, seen in readers.items() if len(seen) < WORKERS}
    assert not missing, f"facts not yet read through every worker: {missing}"

"""A real memory server for tests: uvicorn on a free loopback port, in a thread of the test process, over a data
folder in a temp dir, with an access key; stopped (drained, then the folder closed) when the block ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from memory_plugin import AsyncMemoryClient, MemoryClient, Settings
from memory_plugin.extraction import Extractor
from memory_plugin.keys import KeyRecord
from memory_plugin.server.app import ServerLimits, create_app
from memory_plugin.service import MemoryService
from memory_plugin.storage.sqlite.keys import SQLiteKeyStore


@dataclass
class RunningServer:
    url: str
    key: KeyRecord
    secret: str
    keys: Any  # a KeyStore
    service: MemoryService

    def client(self, **options: Any) -> MemoryClient:
        return MemoryClient(endpoint=self.url, access_key_id=self.key.key_id, access_key_secret=self.secret, **options)

    def async_client(self, **options: Any) -> AsyncMemoryClient:
        return AsyncMemoryClient(
            endpoint=self.url, access_key_id=self.key.key_id, access_key_secret=self.secret, **options
        )

    def new_key(self, app_id: str, tenants: Collection[str] | None = None, **flags: bool) -> tuple[str, str]:
        record, secret = self.keys.create(app_id, tenants, **flags)
        return record.key_id, secret.reveal()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    folder: Path, embedder: object, settings: Settings | None = None, app_id: str = "app-001",
    limits: ServerLimits | None = None, extractor: Extractor | None = None, console: bool = True,
) -> Iterator[RunningServer]:  # fmt: skip
    """A server on ``folder`` whose stores use ``embedder`` (and ``extractor``, by default one memory per turn);
    its first key is an admin key of ``app_id``."""
    keys = SQLiteKeyStore(folder)
    try:
        service = MemoryService.embedded(folder, settings, embedder, extractor)
        with serving_service(service, keys, app_id, limits, console) as server:
            yield server
    finally:
        keys.close()


@contextmanager
def serving_service(
    service: MemoryService, keys: Any, app_id: str = "app-001", limits: ServerLimits | None = None,
    console: bool = True,
) -> Iterator[RunningServer]:  # fmt: skip
    """A server of ``service`` with the access keys ``keys`` (a new admin key of ``app_id`` first), on a free
    loopback port; the service is closed when the block ends."""
    record, secret = keys.create(app_id, admin=True)
    app = create_app(service, keys, limits, console)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, name="memory-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the memory server did not start"
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{server.config.port}", record, secret.reveal(), keys, service)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        service.close()


REPOSITORY = Path(__file__).resolve().parents[1]
FAKE_STORES = '[stores."*"]\nembedder = "tests.conftest:make_fake_embedder"\n'


@dataclass
class ServedProcess:
    """``memory-plugin serve`` running as a process of its own; its log is in ``log``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as a process manager stops it; the exit code once it has drained and closed the folder."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def start_serve(
    folder: Path, config: str = FAKE_STORES, host: str = "127.0.0.1", env: dict[str, str] | None = None,
    options: Sequence[str] = (),
) -> ServedProcess:  # fmt: skip
    """Start ``python -m memory_plugin serve`` on ``folder`` (from the repository, so ``config`` may name test
    factories such as the fake embedder) with more command-line ``options``, and return at once; :func:`wait_ready`
    waits for it."""
    port = free_port()
    config_file = folder.parent / f"serve-{port}.toml"
    config_file.write_text(config)
    log = folder.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "memory_plugin", "serve", "--path", str(folder), "--host", host,
               "--port", str(port), "--config", str(config_file), *options]  # fmt: skip
    with log.open("wb") as output:  # a file, not a pipe: nothing blocks the server when no one reads its log
        process = subprocess.Popen(
            command, cwd=REPOSITORY, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    return ServedProcess(f"http://127.0.0.1:{port}", process, log)


def wait_ready(served: ServedProcess, timeout: float = 120) -> None:
    """Wait until the served process answers ``/healthz``; fail with its log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert served.process.poll() is None, f"serve exited {served.process.returncode}: {served.log.read_text()}"
        try:
            if httpx.get(served.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"serve did not start: {served.log.read_text()}"
        time.sleep(0.1)


@contextmanager
def serving(folder: Path, config: str = FAKE_STORES, env: dict[str, str] | None = None) -> Iterator[ServedProcess]:
    """A ready ``memory-plugin serve`` process on ``folder``, stopped with SIGTERM when the block ends."""
    served = start_serve(folder, config, env=env)
    try:
        wait_ready(served)
        yield served
    finally:
        if served.process.poll() is None:
            served.terminate()

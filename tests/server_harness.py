"""A real memory server for tests: uvicorn on a free loopback port, in a thread of the test process, over a data
folder in a temp dir, with an access key; stopped (drained, then the folder closed) when the block ends."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from memory_plugin import AsyncMemoryClient, MemoryClient, Settings
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
    limits: ServerLimits | None = None,
) -> Iterator[RunningServer]:  # fmt: skip
    """A server on ``folder`` whose stores use ``embedder``; its first key is an admin key of ``app_id``."""
    keys = SQLiteKeyStore(folder)
    try:
        with serving(MemoryService.embedded(folder, settings, embedder), keys, app_id, limits) as server:
            yield server
    finally:
        keys.close()


@contextmanager
def serving(
    service: MemoryService, keys: Any, app_id: str = "app-001", limits: ServerLimits | None = None
) -> Iterator[RunningServer]:
    """A server of ``service`` with the access keys ``keys`` (a new admin key of ``app_id`` first), on a free
    loopback port; the service is closed when the block ends."""
    record, secret = keys.create(app_id, admin=True)
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, keys, limits), host="127.0.0.1", port=free_port(), log_level="warning")
    )
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

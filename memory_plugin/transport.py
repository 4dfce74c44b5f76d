"""Transports: how a client reaches a service. A call is an operation type and its raw arguments; the transport
delivers it and returns the result (or raises the service's error).

- :class:`LocalTransport` / :class:`AsyncLocalTransport`: the service runs in this process (an embedded data
  folder). The async one runs each call on a worker thread (storage and embedding are blocking work), so the event
  loop is never blocked.

Each transport knows its twin (:meth:`LocalTransport.twin`): the same service reached the other way, so a store
can be used from sync and async code alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import InvalidArgumentError
from .extraction import Extractor
from .models import MemoryStoreInfo
from .ops import Operation
from .service import MemoryService
from .settings import Settings

R = TypeVar("R")
DEFAULT_HOME = ".memory_plugin"
ENDPOINT_ENV = "MEMORY_PLUGIN_ENDPOINT"


def resolve_home(path: str | os.PathLike[str] | None) -> Path:
    """The data folder: ``path``, else ``$MEMORY_PLUGIN_HOME``, else ``./.memory_plugin``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get("MEMORY_PLUGIN_HOME") or DEFAULT_HOME)


class Transport(Protocol):
    """Blocking calls to a service."""

    @property
    def location(self) -> str: ...
    def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R: ...
    def create_store(
        self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None
    ) -> MemoryStoreInfo: ...
    def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo: ...
    def close(self) -> None: ...
    def twin(self) -> AsyncTransport: ...


class AsyncTransport(Protocol):
    """Awaitable calls to a service."""

    @property
    def location(self) -> str: ...
    async def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R: ...
    async def create_store(
        self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None
    ) -> MemoryStoreInfo: ...
    async def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo: ...
    async def close(self) -> None: ...
    def twin(self) -> Transport: ...


def connect(
    path: str | os.PathLike[str] | None = None, *, endpoint: str | None = None, access_key_id: str | None = None,
    access_key_secret: str | None = None, database: str | None = None, index: str | None = None,
    embedder: object = None, extractor: Extractor | None = None, settings: Settings | None = None,
    timeout: float = 60.0,
) -> Transport:  # fmt: skip
    """The transport a client uses: a memory server when ``endpoint`` (or ``$MEMORY_PLUGIN_ENDPOINT``, when no
    ``path`` or ``database`` is given) names one; else a PostgreSQL ``database`` with the Chroma server ``index``,
    in this process; else the data folder ``path`` in this process.

    Raises:
        InvalidArgumentError: more than one of a path, an endpoint and a database, a database without an index, or
            what only an in-process client takes (``embedder``, ``extractor``, ``settings``) with an endpoint.
    """
    endpoint = _remote(path, endpoint, database, index, embedder, extractor, settings)
    if endpoint is not None:
        from .remote import Endpoint, HttpTransport

        return HttpTransport(Endpoint.of(endpoint, access_key_id, access_key_secret, timeout))
    return LocalTransport(_service(path, database, index, settings, embedder, extractor))


def connect_async(
    path: str | os.PathLike[str] | None = None, *, endpoint: str | None = None, access_key_id: str | None = None,
    access_key_secret: str | None = None, database: str | None = None, index: str | None = None,
    embedder: object = None, extractor: Extractor | None = None, settings: Settings | None = None,
    timeout: float = 60.0,
) -> AsyncTransport:  # fmt: skip
    """:func:`connect` for the async client."""
    endpoint = _remote(path, endpoint, database, index, embedder, extractor, settings)
    if endpoint is not None:
        from .remote import AsyncHttpTransport, Endpoint

        return AsyncHttpTransport(Endpoint.of(endpoint, access_key_id, access_key_secret, timeout))
    return AsyncLocalTransport(_service(path, database, index, settings, embedder, extractor))


def _service(
    path: str | os.PathLike[str] | None, database: str | None, index: str | None, settings: Settings | None,
    embedder: object, extractor: Extractor | None,
) -> MemoryService:  # fmt: skip
    if database is not None:
        assert index is not None  # checked by _remote
        return MemoryService.scaled_out(database, index, settings, embedder, extractor)
    return MemoryService.embedded(resolve_home(path), settings, embedder, extractor)


def _remote(
    path: object, endpoint: str | None, database: str | None, index: str | None, embedder: object, extractor: object,
    settings: object,
) -> str | None:  # fmt: skip
    if database is not None or index is not None:
        if database is None or index is None:
            raise InvalidArgumentError(
                "database" if database is None else "index",
                "a PostgreSQL database (database=) goes with a Chroma server (index=): give both",
            )
        if path is not None or endpoint is not None:
            raise InvalidArgumentError("database", "give a data folder (path), a memory server (endpoint) or a "
                                       "database, only one")  # fmt: skip
        return None
    if endpoint is None and path is None:
        endpoint = os.environ.get(ENDPOINT_ENV) or None
    if endpoint is None:
        return None
    if path is not None:
        raise InvalidArgumentError("endpoint", "give a data folder (path) or a memory server (endpoint), not both")
    for name, value in (("embedder", embedder), ("extractor", extractor), ("settings", settings)):
        if value is not None:
            raise InvalidArgumentError(name, "is set in the memory server's --config; a remote client does not take it")
    return endpoint


class LocalTransport:
    """Calls straight into a :class:`MemoryService` of this process."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service

    @property
    def location(self) -> str:
        return self.service.folder.location

    def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R:
        return self.service.execute(op, raw)

    def create_store(self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        return self.service.create_store(raw, embedder, extractor)

    def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        return self.service.open_store(name, embedder, extractor)

    def close(self) -> None:
        self.service.close()

    def twin(self) -> AsyncLocalTransport:
        return AsyncLocalTransport(self.service)


class AsyncLocalTransport:
    """Calls into a :class:`MemoryService` of this process on worker threads (``asyncio.to_thread``)."""

    def __init__(self, service: MemoryService) -> None:
        self.service = service

    @property
    def location(self) -> str:
        return self.service.folder.location

    async def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R:
        return await asyncio.to_thread(self.service.execute, op, raw)

    async def create_store(
        self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None
    ) -> MemoryStoreInfo:
        return await asyncio.to_thread(self.service.create_store, raw, embedder, extractor)

    async def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        return await asyncio.to_thread(self.service.open_store, name, embedder, extractor)

    async def close(self) -> None:
        await asyncio.to_thread(self.service.close)

    def twin(self) -> LocalTransport:
        return LocalTransport(self.service)

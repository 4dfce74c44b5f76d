"""The service: executes every operation on one deployment, holding every rule (validation, scope checks, audit,
transactions) and the background worker, and no storage code.

Every surface reaches it the same way: the in-process transport calls :meth:`MemoryService.execute` with an
operation type and its raw arguments, which are parsed inside the call's audit record (a refused call is audited
too), and every call passes the gate ``close()`` drains (see :mod:`memory_plugin.lifecycle`).
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import InvalidArgumentError, MemoryPluginError
from ..extraction import Extractor, TurnExtractor
from ..lifecycle import OperationGate, track
from ..models import MemoryStoreInfo
from ..ops import (
    CreateStore,
    DeleteStore,
    GetStore,
    ListStores,
    Operation,
    StoreOperation,
    UpdateStore,
)
from ..settings import Settings
from ..storage.base import Deployment
from ..storage.folder import DataFolder
from ..validation import check_store_name
from .audit import AuditRecord
from .catalog import StoreCatalog, StoreSetup
from .ingest import StoreHandle
from .operations import JobSignal, StoreOperations
from .worker import ExtractionWorker

R = TypeVar("R")


class MemoryService:
    """Executes operations on the stores of one deployment: an embedded data folder, or a PostgreSQL database
    with a Chroma server that several services share.

    Build one with :meth:`embedded` or :meth:`scaled_out`. Thread-safe; ``close()`` refuses new calls, waits for
    those in flight, stops the worker and closes the storage.
    """

    def __init__(
        self, folder: Deployment, settings: Settings, embedder: object = None, extractor: Extractor | None = None,
        setup: StoreSetup | None = None,
    ) -> None:  # fmt: skip
        self.folder = folder
        self.settings = settings
        record, index, queue = folder.record, folder.index, folder.queue
        self._gate = OperationGate()
        self._jobs = JobSignal()
        self.catalog = StoreCatalog(record, index, embedder, extractor or TurnExtractor(), self._store_opened, setup)
        self._worker = ExtractionWorker(record, index, queue, settings, self.catalog, self._jobs, self._prune)
        self._operations = StoreOperations(
            record, index, queue, settings, self.catalog, self._jobs, lambda: self._gate.is_open, self._worker.explain
        )
        self._handlers = self._operations.handlers()
        track(self)
        atexit.register(self.close)

    @classmethod
    def embedded(
        cls, path: Path, settings: Settings | None = None, embedder: object = None, extractor: Extractor | None = None,
        setup: StoreSetup | None = None,
    ) -> MemoryService:  # fmt: skip
        """A service owning the data folder ``path`` (SQLite record, embedded Chroma index). ``setup(name)`` gives
        the embedder and extractor of a store opened without explicit ones (a memory server's configuration).

        Raises:
            StoreLockedError: another process (or client) holds the folder.
            StorageError: the folder cannot be created or read.
        """
        settings = settings or Settings()
        return cls(
            DataFolder(path, settings.vector_memory_limit, settings.vector_shortlist_above),
            settings,
            embedder,
            extractor,
            setup,
        )

    @classmethod
    def scaled_out(
        cls, database: str, index: str, settings: Settings | None = None, embedder: object = None,
        extractor: Extractor | None = None, setup: StoreSetup | None = None,
    ) -> MemoryService:  # fmt: skip
        """A service on the PostgreSQL database ``database`` (a libpq connection string or URI) and the Chroma
        server ``index`` (``http://HOST:PORT``), which any number of services share (memory servers behind one
        load balancer). Needs ``memory-plugin[postgres]``.

        Raises:
            StorageError: the database cannot be reached, or its schema is newer than this memory-plugin's.
            InvalidArgumentError: ``index`` is not a Chroma server URL.
        """
        from ..storage.scaleout import SharedDeployment

        service = cls(SharedDeployment(database, index), settings or Settings(), embedder, extractor, setup)
        if setup is not None:  # a memory server runs every store's jobs: those of a server that died too, at once
            service._worker.ensure_started()
        return service

    # ---- calls -------------------------------------------------------------------------------------------------

    def execute(
        self, op_type: type[Operation[R]], raw: Mapping[str, Any], caller: str | None = None,
        request_id: str | None = None,
    ) -> R:  # fmt: skip
        """Parse ``raw`` into an ``op_type`` operation and execute it; store operations are audited, refusals too,
        with ``caller`` (the access key of a call through a memory server) and ``request_id`` (the id a memory
        server gave the HTTP request, so its answer, its log and its audit record share one id; default: a new one).

        Raises:
            InvalidArgumentError, InvalidScopeError: bad input (nothing is written).
            MemoryPluginError: whatever the operation raises (see the client's methods).
        """
        with self._gate.call():
            if issubclass(op_type, StoreOperation):
                return cast(R, self._store_call(op_type, raw, caller, request_id))
            return cast(R, self._store_lifecycle(op_type.from_raw(raw)))

    def create_store(
        self, raw: Mapping[str, Any], embedder: object = None, extractor: Extractor | None = None
    ) -> MemoryStoreInfo:
        """Create a store (``raw`` as :class:`CreateStore` takes it) that runs with this embedder and extractor."""
        with self._gate.call():
            op = CreateStore.from_raw(raw)
            return self.catalog.info_of(self.catalog.create(op, embedder, extractor))

    def open_store(self, name: object, embedder: object = None, extractor: Extractor | None = None) -> MemoryStoreInfo:
        """Open an existing store with this embedder and extractor (or the ones it is open with already)."""
        with self._gate.call():
            return self.catalog.info_of(self.catalog.open(name, embedder, extractor))

    def check_ready(self) -> None:
        """Raise unless the service answers: open, and its record readable (a server's readiness)."""
        with self._gate.call(), self.folder.record.read() as reader:
            reader.stores()

    def unfinished_jobs(self) -> dict[str, int]:
        """Each store's background extraction jobs not finished yet (pending or running), by store name."""
        with self._gate.call(), self.folder.record.read() as reader:
            return {row.info.name: reader.unfinished_jobs(row.id) for row in reader.stores()}

    def _store_lifecycle(self, op: Operation[Any]) -> Any:
        if isinstance(op, CreateStore):
            return self.catalog.info_of(self.catalog.create(op))
        if isinstance(op, GetStore):
            return self.catalog.info_of(self.catalog.open(op.name))
        if isinstance(op, ListStores):
            return self.catalog.all()
        if isinstance(op, UpdateStore):
            return self.catalog.update(op)
        if isinstance(op, DeleteStore):
            return self.catalog.delete(op)
        raise InvalidArgumentError("operation", f"unknown operation {type(op).__name__}")

    def _store_call(
        self, op_type: type[StoreOperation[Any]], raw: Mapping[str, Any], caller: str | None, request_id: str | None
    ) -> Any:
        store = self.catalog.open(check_store_name(raw.get("store"), "store"))
        audit = AuditRecord(store.id, op_type.NAME or op_type.__name__, raw.get("scope"), key_id=caller)
        if request_id is not None:
            audit.request_id = request_id
        with self._audited(audit):
            return self._handlers[op_type](store, op_type.from_raw(raw), audit)

    @contextmanager
    def _audited(self, audit: AuditRecord) -> Iterator[None]:
        """Record one call: outcome, latency, counts (a handler that writes records it in its own transaction)."""
        try:
            yield
        except BaseException as e:
            outcome = type(e).__name__ if isinstance(e, Exception) else "Interrupted"
            if isinstance(e, MemoryPluginError):
                e.request_id = audit.request_id
            try:
                with self.folder.record.write() as tx:
                    audit.write(tx, outcome, str(e)[:500])
            except MemoryPluginError:
                pass  # the original error matters more than a failed audit write (e.g. the disk is full)
            raise
        if not audit.written:
            with self.folder.record.write() as tx:
                audit.write(tx)

    def _prune(self, store: StoreHandle) -> object:
        """The worker's hourly prune of one store: audited only when it removed something."""
        with self._gate.call():
            audit = AuditRecord(store.id, "PruneStore", None)
            with self._audited(audit):
                return self._operations.prune(store, None, audit)

    def _store_opened(self) -> None:
        self._worker.ensure_started()
        self._jobs.notify()

    # ---- lifecycle (see lifecycle.py) --------------------------------------------------------------------------

    def close(self) -> None:
        """Refuse new calls, wait for those in flight (up to ``settings.close_wait_seconds``), stop the worker,
        close the index and record cleanly and release the folder. Safe to call twice; does nothing in a forked
        child."""
        if not self._gate.close(self.settings.close_wait_seconds):
            return
        atexit.unregister(self.close)
        self._worker.stop()
        self.folder.close()

    def disarm_after_fork(self, parent: int) -> None:
        """In a child forked after this service opened: refuse every call, and leave the parent's folder alone."""
        self._gate.disarm_after_fork(parent)
        atexit.unregister(self.close)
        self.folder.abandon_after_fork()

"""The memory stores of one service: created, opened, listed, changed and deleted, each open store with the one
embedder and extractor it runs with (its :class:`StoreHandle`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..embedding import Embedder, check_embedder_matches
from ..errors import InvalidArgumentError, MemoryStoreExistsError, MemoryStoreNotFoundError
from ..extraction import Extractor
from ..models import MemoryStoreInfo
from ..ops import CreateStore, DeleteStore, UpdateStore
from ..storage.base import RecordStore, StoreRow, VectorIndex
from ..validation import check_store_name
from .ingest import StoreHandle

# A memory server's configuration: the embedder and extractor a store runs with, by store name.
StoreSetup = Callable[[str], tuple[object, Extractor | None]]


class StoreCatalog:
    """Stores by name. Opening a store checks that the embedder is the one that built it and warms it up (a model
    loads here, not inside the first audited call). A store open in a service keeps its extractor: its queued jobs
    run with it, so opening it again with another one is refused rather than swapping it in under them."""

    def __init__(
        self, record: RecordStore, index: VectorIndex, default_embedder: object, default_extractor: Extractor,
        on_open: Callable[[], None], setup: StoreSetup | None = None,
    ) -> None:  # fmt: skip
        self._record = record
        self._index = index
        self._default_embedder = default_embedder
        self._default_extractor = default_extractor
        self._on_open = on_open
        # A store opened or created without an explicit embedder and extractor runs with what ``setup(name)`` names
        # (a memory server's configuration), else with the defaults.
        self._setup = setup or (lambda name: (None, None))
        self._configured = setup is not None
        self._handles: dict[int, StoreHandle] = {}
        self._lock = threading.Lock()

    def _embedder(self, embedder: object) -> Embedder:
        return Embedder.from_any(embedder if embedder is not None else self._default_embedder)

    def create(self, op: CreateStore, embedder: object = None, extractor: Extractor | None = None) -> StoreHandle:
        if embedder is None and extractor is None:
            embedder, extractor = self._setup(op.name)
        resolved = self._embedder(embedder)
        dimension = resolved.dimension
        resolved.warm_up()
        with self._record.write() as tx:
            if tx.store(op.name) is not None:
                raise MemoryStoreExistsError(f"memory store {op.name!r} already exists; use get_memory_store")
            row = tx.create_store(
                op.name, op.description, resolved.name, dimension, op.audit_retention_days, op.history_retention_days
            )
        return self._register(row, resolved, extractor)

    def open(self, name: object, embedder: object = None, extractor: Extractor | None = None) -> StoreHandle:
        """The handle of an existing store, opening it with these (or the default) embedder and extractor.

        The record is asked every time: another process sharing it may have deleted the store (or deleted it and
        created another of the same name), and a handle of a store that is gone must not be used."""
        checked = check_store_name(name)
        with self._record.read() as reader:
            row = reader.store(checked)
        with self._lock:
            handle = next((h for h in self._handles.values() if h.name == checked), None)
            if handle is not None and (row is None or row.id != handle.id):
                del self._handles[handle.id]  # deleted elsewhere
                handle = None
        if row is None:
            raise MemoryStoreNotFoundError(f"no memory store named {checked!r}; create it with create_memory_store")
        if handle is not None and embedder is None and extractor is None:
            return handle
        if handle is None and embedder is None and extractor is None:
            embedder, extractor = self._setup(checked)
        resolved = self._embedder(embedder) if handle is None or embedder is not None else handle.embedder
        check_embedder_matches(checked, row.info.embedder, row.info.dimension, resolved)
        resolved.warm_up()
        return self._register(row, resolved, extractor)

    def _register(self, row: StoreRow, embedder: Embedder, extractor: Extractor | None) -> StoreHandle:
        with self._lock:
            handle = self._handles.get(row.id)
            if handle is None:
                handle = StoreHandle(row.id, row.info.name, embedder, extractor or self._default_extractor)
                self._handles[row.id] = handle
            elif extractor is not None and extractor is not handle.extractor:
                name = row.info.name
                raise InvalidArgumentError(
                    "extractor",
                    f"memory store {name!r} is already open in this client with extractor "
                    f"{type(handle.extractor).__qualname__}; a store runs with one extractor: call "
                    f"get_memory_store({name!r}) without extractor= to use it, or close this client and open the "
                    "store with the other extractor in a new one",
                )
        self._on_open()
        return handle

    def info(self, name: object) -> MemoryStoreInfo:
        checked = check_store_name(name)
        with self._record.read() as reader:
            row = reader.store(checked)
        if row is None:
            raise MemoryStoreNotFoundError(f"no memory store named {checked!r}")
        return row.info

    def info_of(self, handle: StoreHandle) -> MemoryStoreInfo:
        with self._record.read() as reader:
            row = reader.store_by_id(handle.id)
        if row is None:
            raise MemoryStoreNotFoundError(f"memory store {handle.name!r} was deleted")
        return row.info

    def all(self) -> list[MemoryStoreInfo]:
        with self._record.read() as reader:
            return [row.info for row in reader.stores()]

    def update(self, op: UpdateStore) -> MemoryStoreInfo:
        with self._record.write() as tx:
            row = tx.store(op.name)
            if row is None:
                raise MemoryStoreNotFoundError(f"no memory store named {op.name!r}")
            return tx.update_store(row.id, op.changes).info

    def delete(self, op: DeleteStore) -> None:
        """Delete a store and everything in it (memories, messages, history, audit, jobs, index entries)."""
        with self._record.write() as tx:
            row = tx.store(op.name)
            if row is None:
                raise MemoryStoreNotFoundError(f"no memory store named {op.name!r}")
            tx.delete_store(row.id)
            self._index.note_store_dropped(tx, row.id)  # its index collection goes too, even if it is not open now
        with self._lock:
            self._handles.pop(row.id, None)
        self._index.drop_store(row.id)
        self._on_open()

    def by_id(self, store_id: int) -> StoreHandle | None:
        return self._handles.get(store_id)

    def claimable_ids(self) -> list[int] | None:
        """The stores whose background jobs this service runs: every store (``None``) when a configuration says
        what each runs with (a memory server: it takes over the jobs of a server that died), else the open ones
        (an embedded client runs a store's jobs with the extractor it was opened with)."""
        return None if self._configured else self.open_ids()

    def for_job(self, store_id: int) -> StoreHandle | None:
        """The handle a job of ``store_id`` runs with: the open store's, or (configured) the store opened now."""
        handle = self._handles.get(store_id)
        if handle is not None or not self._configured:
            return handle
        with self._record.read() as reader:
            row = reader.store_by_id(store_id)
        return None if row is None else self.open(row.info.name)

    def open_ids(self) -> list[int]:
        return list(self._handles)

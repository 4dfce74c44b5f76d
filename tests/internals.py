"""Reaching behind the public API, in one place, for what only a test needs to see or force: the vector index
brought up to date, whether the last owner closed cleanly, how many rows the record holds. Each goes through the
service and the storage seam (every backend implements them), never through a backend's own files."""

from __future__ import annotations

import sqlite3
from typing import Any

from memory_plugin import AsyncMemoryClient, AsyncMemoryStore, MemoryClient, MemoryStore, Settings
from memory_plugin.service import MemoryService
from memory_plugin.storage.sqlite import SqliteRecord


def service(owner: MemoryClient | MemoryStore | AsyncMemoryClient | AsyncMemoryStore | Any) -> MemoryService:
    """The in-process service behind a client or store."""
    transport = owner.transport
    found: MemoryService = transport.service
    return found


def catch_up_index(owner: Any) -> None:
    """Apply every pending change to the vector index now (rebuilding it first if it needs it)."""
    service(owner).folder.index.catch_up()


def index_pending(owner: Any) -> int:
    return service(owner).folder.index.pending


def unclean_start(owner: Any) -> bool:
    """Whether the folder's last owner died without closing it."""
    return service(owner).folder.unclean_start


def totals(owner: Any) -> dict[str, int]:
    """Rows the record holds: memories, messages, history, requests, jobs."""
    with service(owner).folder.record.read() as reader:
        return reader.totals()


def wake_worker(owner: Any) -> None:
    service(owner)._jobs.notify()


def use_settings(owner: Any, settings: Settings) -> None:
    """Run the service behind ``owner`` with other settings from now on (e.g. the vector index path for some
    searches and the exact scan for others, within one test)."""
    found = service(owner)
    found.settings = settings
    found._operations.settings = settings
    found._worker._settings = settings


def sqlite_writer(owner: Any) -> sqlite3.Connection:
    """The writer connection of an embedded record, to inject faults SQLite itself reports (a full disk, a
    read-only file)."""
    record = service(owner).folder.record
    assert isinstance(record, SqliteRecord)
    return record.connections._conn

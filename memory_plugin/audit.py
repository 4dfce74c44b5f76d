"""Audit records: one row per public call on a memory store (and per background extraction), written once."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field

from .errors import MemoryPluginError
from .scope import Scope
from .storage.record import dumps, now, segment_text
from .writes import new_id


@dataclass
class AuditRecord:
    """The audit record of one call, written once: inside the call's own transaction for writes, or after the
    call for reads and failures. Rows are never changed afterwards."""

    store_id: int
    operation: str
    scope: object
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    counts: dict[str, int] = field(default_factory=dict)
    written: bool = False

    def write(self, conn: sqlite3.Connection, outcome: str = "ok", error: str | None = None) -> None:
        try:
            parsed: Scope | None = None if self.scope is None else Scope.parse(self.scope)
        except MemoryPluginError:
            parsed = None  # the scope itself was the bad input: the record keeps no scope
        segments = [None] * 4 if parsed is None else [segment_text(v) for v in parsed.segments().values()]
        conn.execute(
            "INSERT INTO requests (request_id, store_id, operation, app_id, tenant_id, agent_id, run_id, outcome,"
            " error, latency_ms, time, counts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.request_id, self.store_id, self.operation, *segments, outcome, error,
             (time.perf_counter() - self.started) * 1000, now(), dumps(self.counts)),
        )  # fmt: skip
        self.written = True

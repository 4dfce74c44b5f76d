"""Audit records: one per public call on a memory store (and per background extraction), written once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..clock import new_id
from ..errors import MemoryPluginError
from ..scope import Scope
from ..storage.base import AuditEntry, RecordWriter


@dataclass
class AuditRecord:
    """The audit record of one call, written once: inside the call's own transaction for writes, or after the
    call for reads and failures. Rows are never changed afterwards. ``scope`` is the scope as the caller gave it;
    the record keeps none when it was unusable."""

    store_id: int
    operation: str
    scope: object
    request_id: str = field(default_factory=lambda: new_id("req"))
    started: float = field(default_factory=time.perf_counter)
    counts: dict[str, int] = field(default_factory=dict)
    written: bool = False
    key_id: str | None = None

    def write(self, tx: RecordWriter, outcome: str = "ok", error: str | None = None) -> None:
        try:
            parsed: Scope | None = None if self.scope is None else Scope.parse(self.scope)
        except MemoryPluginError:
            parsed = None  # the scope itself was the bad input: the record keeps no scope
        tx.audit(
            AuditEntry(
                request_id=self.request_id,
                store_id=self.store_id,
                operation=self.operation,
                scope=parsed,
                outcome=outcome,
                error=error,
                latency_ms=(time.perf_counter() - self.started) * 1000,
                counts=dict(self.counts),
                key_id=self.key_id,
            )
        )
        self.written = True

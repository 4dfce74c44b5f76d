"""Summaries of a store for the people looking after it: the scopes it holds with their counts, counts over a
scope, and the calls per minute. Read-only; each is one audited call like any other."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timezone

from .. import clock, models, ops
from ..storage.base import RecordStore
from ..validation import encode_text_cursor
from .audit import AuditRecord
from .ingest import StoreHandle


def scopes(
    record: RecordStore, store: StoreHandle, op: ops.ListScopes, audit: AuditRecord
) -> models.Page[models.ScopeSummary]:
    with record.read() as reader:
        found = reader.scopes(store.id, op.scope, op.level, op.cursor, op.limit + 1)
    audit.counts["items"] = min(len(found), op.limit)
    more = len(found) > op.limit
    page = found[: op.limit]
    return models.Page(items=page, next_cursor=encode_text_cursor(page[-1].id) if more else None)


def stats(record: RecordStore, store: StoreHandle, op: ops.StoreStats, audit: AuditRecord) -> models.StoreStats:
    with record.read() as reader:
        return reader.stats(store.id, op.scope)


def _percentile(sorted_values: list[float], share: float) -> float:
    """The nearest-rank percentile of values already sorted."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def activity(
    record: RecordStore, store: StoreHandle, op: ops.ActivityStats, audit: AuditRecord
) -> list[models.ActivityBucket]:
    """One bucket per minute that had calls, oldest first, over the last ``op.minutes``."""
    since = clock.now() - op.minutes * 60
    with record.read() as reader:
        calls = reader.calls_since(store.id, op.scope, since)
    by_minute: dict[int, list[tuple[str, str, float]]] = defaultdict(list)
    for moment, operation, outcome, latency in calls:
        by_minute[int(moment // 60)].append((operation, outcome, latency))
    buckets = []
    for minute in sorted(by_minute):
        entries = by_minute[minute]
        latencies = sorted(latency for _, _, latency in entries)
        buckets.append(
            models.ActivityBucket(
                minute=datetime.fromtimestamp(minute * 60, tz=timezone.utc),
                requests=len(entries),
                errors=sum(outcome != "ok" for _, outcome, _ in entries),
                p50_ms=_percentile(latencies, 0.5),
                p95_ms=_percentile(latencies, 0.95),
                operations=dict(Counter(operation for operation, _, _ in entries)),
            )
        )
    audit.counts["items"] = len(buckets)
    return buckets

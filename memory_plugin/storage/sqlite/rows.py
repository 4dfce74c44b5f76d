"""Rows of the record as the domain's values, and the encodings the record uses (the PostgreSQL record keeps the
same columns and encodings, and maps its rows here too)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from ...clock import to_datetime
from ...models import (
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Metadata,
    RequestRecord,
    ScopeSummary,
    StoreStats,
)
from ...scope import Scope
from ..base import CandidateRow, Job, MemoryRow, StoreRow
from .schema import LIST_MARK


class Row(Protocol):
    """A row as both records return it: columns by name (``sqlite3.Row``, or a dict from psycopg)."""

    def __getitem__(self, key: str, /) -> Any: ...


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def segment_text(value: str | tuple[str, ...]) -> str:
    """How an audit record stores a read-scope segment: the id, ``*``, or :data:`LIST_MARK` and a JSON list."""
    return value if isinstance(value, str) else LIST_MARK + dumps(list(value))


def _segment_value(text: str) -> str | list[str]:
    if text.startswith(LIST_MARK):
        ids: list[str] = json.loads(text[len(LIST_MARK) :])
        return ids
    return text


def embedding_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def embedding_matrix(blobs: list[bytes], dimension: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)


def row_scope(row: Row) -> Scope:
    return stored_scope(row["app_id"], row["tenant_id"], row["agent_id"], row["run_id"])


@functools.lru_cache(maxsize=4096)
def stored_scope(app_id: str, tenant_id: str, agent_id: str, run_id: str) -> Scope:
    """The scope of a stored row. Cached: a search reads about a hundred rows from a few scopes, and building a
    Scope validates every segment."""
    return Scope(app_id=app_id, tenant_id=tenant_id, agent_id=agent_id, run_id=run_id)


def row_memory(row: Row) -> Memory:
    return Memory(
        id=row["id"],
        text=row["text"],
        scope=row_scope(row),
        memory_type=row["memory_type"],
        speaker=row["speaker"],
        metadata=json.loads(row["metadata"]),
        created_at=to_datetime(row["created_at"]),
        updated_at=to_datetime(row["updated_at"]),
        event_time=to_datetime(row["event_time"]),
        source_message_ids=json.loads(row["source_message_ids"]),
    )


def row_message(row: Row) -> Message:
    return Message(
        id=row["id"],
        scope=row_scope(row),
        role=row["role"],
        content=row["content"],
        name=row["name"],
        timestamp=to_datetime(row["timestamp"]),
        metadata=json.loads(row["metadata"]),
    )


def _optional_metadata(text: str | None) -> Metadata | None:
    return None if text is None else json.loads(text)


def row_history(row: Row) -> HistoryEvent:
    return HistoryEvent(
        memory_id=row["memory_id"],
        event=row["event"],
        old_text=row["old_text"],
        new_text=row["new_text"],
        old_metadata=_optional_metadata(row["old_metadata"]),
        new_metadata=_optional_metadata(row["new_metadata"]),
        time=to_datetime(row["time"]),
        request_id=row["request_id"],
        source_message_ids=json.loads(row["source_message_ids"]),
    )


def row_request(row: Row) -> RequestRecord:
    scope = None
    if row["app_id"] is not None:
        scope = Scope(
            app_id=row["app_id"],
            tenant_id=_segment_value(row["tenant_id"]),  # type: ignore[arg-type]
            agent_id=_segment_value(row["agent_id"]),  # type: ignore[arg-type]
            run_id=_segment_value(row["run_id"]),  # type: ignore[arg-type]
        )
    return RequestRecord(
        request_id=row["request_id"],
        operation=row["operation"],
        scope=scope,
        outcome=row["outcome"],
        error=row["error"],
        latency_ms=row["latency_ms"],
        time=to_datetime(row["time"]),
        counts=json.loads(row["counts"]),
        key_id=row["key_id"],
    )


def row_store(row: Row) -> StoreRow:
    return StoreRow(int(row["id"]), row_store_info(row))


def row_store_info(row: Row) -> MemoryStoreInfo:
    return MemoryStoreInfo(
        name=row["name"],
        description=row["description"],
        embedder=row["embedder"],
        dimension=row["dimension"],
        created_at=to_datetime(row["created_at"]),
        audit_retention_days=row["audit_retention_days"],
        history_retention_days=row["history_retention_days"],
    )


def row_job(row: Row) -> ExtractionJob:
    return ExtractionJob(
        job_id=row["seq"],
        scope=row_scope(row),
        state=row["state"],
        attempts=row["attempts"],
        error=row["error"],
        raw_output=row["raw_output"],
        message_ids=json.loads(row["payload"])["message_ids"],
        request_id=row["request_id"],
        created_at=to_datetime(row["created_at"]),
    )


def row_memory_row(row: Row) -> MemoryRow:
    """A full memory row: the memory, its position, store, search context and embedding."""
    return MemoryRow(
        position=int(row["seq"]),
        store_id=int(row["store_id"]),
        memory=row_memory(row),
        context=row["context"],
        embedding=np.frombuffer(row["embedding"], dtype=np.float32),
    )


# The columns :func:`row_candidate` reads.
CANDIDATE_COLUMNS = "m.seq, m.text, m.memory_type, m.speaker, m.event_time, m.source_message_ids, m.embedding"


def row_candidate(row: Row) -> CandidateRow:
    """A memory as ranking reads it (the columns of :data:`CANDIDATE_COLUMNS`)."""
    return CandidateRow(
        position=int(row["seq"]),
        text=row["text"],
        memory_type=row["memory_type"],
        speaker=row["speaker"],
        event_time=float(row["event_time"]),
        source_message_ids=json.loads(row["source_message_ids"]),
        embedding=np.frombuffer(row["embedding"], dtype=np.float32),
    )


def row_claimed_job(row: Row, lease: int = 0) -> Job:
    """A ``jobs`` row as the queue hands the job out, under the claim number ``lease``."""
    payload = json.loads(row["payload"])
    return Job(
        position=int(row["seq"]),
        store_id=int(row["store_id"]),
        scope=row_scope(row),
        message_ids=list(payload["message_ids"]),
        text=payload["text"],
        metadata=payload["metadata"],
        timestamp=to_datetime(payload["timestamp"]),
        request_id=row["request_id"],
        attempts=int(row["attempts"]),
        lease=lease,
    )


def scope_summaries(counted: Iterable[tuple[str, str, int, float | None]], limit: int) -> list[ScopeSummary]:
    """The first ``limit`` scope summaries in id order, from ``(kind, id, count, last time)`` rows, ``kind``
    being ``memories`` or ``messages``."""
    found: dict[str, dict[str, Any]] = {}
    for kind, value, count, last in counted:
        entry = found.setdefault(value, {"id": value, "memories": 0, "messages": 0, "last_active": None})
        entry[kind] = count
        if last is not None and (entry["last_active"] is None or last > entry["last_active"]):
            entry["last_active"] = last
    chosen = [found[value] for value in sorted(found)[:limit]]
    for entry in chosen:
        entry["last_active"] = None if entry["last_active"] is None else to_datetime(entry["last_active"])
    return [ScopeSummary(**entry) for entry in chosen]


def store_stats(types: dict[str, int], jobs: dict[str, int], messages: int, tenants: int) -> StoreStats:
    """A scope's counts from its memories per type and its jobs per state, as either record counts them."""
    return StoreStats(
        memories=sum(types.values()),
        messages=messages,
        tenants=tenants,
        memory_types=types,
        pending_jobs=jobs.get("pending", 0),
        running_jobs=jobs.get("running", 0),
        failed_jobs=jobs.get("failed", 0),
    )

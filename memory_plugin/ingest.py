"""The write path of ``add``: validated messages in, extraction, embedding, and operations applied in one
transaction. Used by the engine for ``sync=True`` calls and by the worker for background jobs."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from .audit import AuditRecord
from .embedding import Embedder
from .errors import ExtractionError, InvalidArgumentError, MemoryPluginError
from .extraction import (
    ExtractionInput,
    Extractor,
    MemoryDeletion,
    MemoryOperation,
    MemoryUnchanged,
    MemoryUpdate,
    NewMemory,
)
from .filters import ReadFilter, scope_sql
from .models import Memory, Message, Metadata
from .retrieval import embedding_text
from .scope import Scope, check_id
from .search import hybrid_search
from .storage.record import Record, dumps, now, row_message, to_datetime
from .storage.vector_index import VectorIndex
from .validation import (
    MAX_METADATA_KEYS,
    MAX_TEXT_LENGTH,
    MessageInput,
    check_memory_id,
    check_memory_type,
    check_metadata,
    check_text,
)
from .writes import delete_memory, insert_memory, new_id, note_unchanged, update_memory

RECENT_CONTEXT_MESSAGES = 20


@dataclass
class StoreHandle:
    """A memory store opened in an engine, with the embedder and extractor it runs with."""

    id: int
    name: str
    embedder: Embedder
    extractor: Extractor


@dataclass(frozen=True)
class Prepared:
    """One extractor operation, validated, with the embedding of its new text if it has one."""

    operation: MemoryOperation
    embedding: np.ndarray | None


def build_messages(
    scope: Scope, messages: list[MessageInput], call_metadata: Metadata, when: datetime
) -> list[Message]:
    """Give each validated incoming message an id, its time (default ``when``) and merged metadata."""
    result = []
    for i, given in enumerate(messages):
        merged = {**call_metadata, **given.metadata}
        if len(merged) > MAX_METADATA_KEYS:
            raise InvalidArgumentError(
                f"messages[{i}].metadata", f"with the call's metadata it has more than {MAX_METADATA_KEYS} keys"
            )
        result.append(
            Message(
                id=new_id("msg"),
                scope=scope,
                role=given.role,  # type: ignore[arg-type]
                content=given.content,
                name=given.name,
                timestamp=given.timestamp or when,
                metadata=merged,
            )
        )
    return result


def insert_messages(conn: sqlite3.Connection, store_id: int, messages: list[Message]) -> None:
    conn.executemany(
        "INSERT INTO messages (id, store_id, app_id, tenant_id, agent_id, run_id, role, content, name, timestamp,"
        " metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (m.id, store_id, m.scope.app_id, m.scope.tenant_id, m.scope.agent_id, m.scope.run_id, m.role,
             m.content, m.name, m.timestamp.timestamp(), dumps(m.metadata))
            for m in messages
        ],
    )  # fmt: skip


def enqueue_extraction(
    conn: sqlite3.Connection, store_id: int, scope: Scope, messages: list[Message], text: str | None,
    metadata: Metadata, when: datetime, request_id: str,
) -> None:  # fmt: skip
    """Store a background extraction job; it survives a crash and runs when the store is open."""
    payload = {"message_ids": [m.id for m in messages], "text": text, "metadata": metadata,
               "timestamp": when.timestamp()}  # fmt: skip
    conn.execute(
        "INSERT INTO jobs (store_id, app_id, tenant_id, agent_id, run_id, payload, state, request_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, dumps(payload), request_id, now()),
    )


def extraction_input(
    record: Record, index: VectorIndex, store: StoreHandle, scope: Scope, messages: list[Message],
    text: str | None, metadata: dict[str, Any], when: datetime, before_seq: int | None = None,
) -> ExtractionInput:  # fmt: skip
    """What the extractor sees: the new messages, the run's recent messages, and a search of the tenant."""
    clauses, params = scope_sql(scope, "m")
    if before_seq is not None:
        clauses.append("m.seq < ?")
        params.append(before_seq)
    with record.reading() as conn:
        rows = conn.execute(
            f"SELECT * FROM messages m WHERE m.store_id = ? AND {' AND '.join(clauses)} ORDER BY m.seq DESC LIMIT ?",
            [store.id, *params, RECENT_CONTEXT_MESSAGES],
        ).fetchall()
    tenant = ReadFilter(store.id, scope.with_(agent_id="*", run_id="*"))

    def related(query: str, k: int) -> list[Memory]:
        found = hybrid_search(record, index, tenant, query, store.embedder.embed_query(query), k, True)
        return [memory for memory, _ in found.hits]

    def similar(text: str, k: int) -> list[tuple[Memory, float]]:
        # Compared with stored document embeddings, so embedded as a document too (asymmetric embedders).
        vector = np.asarray(store.embedder.embed_documents([text])[0], dtype=np.float32).reshape(-1)
        memories = [m for m, _ in hybrid_search(record, index, tenant, text, vector, k, True).hits]
        return [(m, s) for m, s in zip(memories, _cosines(record, vector, [m.id for m in memories]), strict=True)]

    return ExtractionInput(scope=scope, messages=messages, text=text, metadata=metadata, timestamp=when,
                           recent=[row_message(r) for r in reversed(rows)], related=related,
                           similar=similar)  # fmt: skip


def _cosines(record: Record, vector: np.ndarray, memory_ids: list[str]) -> list[float]:
    """Cosine similarity of ``vector`` with the stored embeddings of memories (0.0 for one that is gone)."""
    if not memory_ids:
        return []
    with record.reading() as conn:
        marks = ",".join("?" * len(memory_ids))
        blobs = dict(conn.execute(f"SELECT id, embedding FROM memories WHERE id IN ({marks})", memory_ids).fetchall())
    result = []
    for memory_id in memory_ids:
        blob = blobs.get(memory_id)
        stored = np.frombuffer(blob, dtype=np.float32) if blob is not None else None
        if stored is None or stored.shape != vector.shape:
            result.append(0.0)
            continue
        norm = float(np.linalg.norm(stored) * np.linalg.norm(vector))
        result.append(float(stored @ vector) / norm if norm else 0.0)
    return result


def _check_operation(op: object) -> None:
    if isinstance(op, NewMemory):
        check_text("memory.text", op.text)
        check_memory_type(op.memory_type)
        check_metadata(op.metadata)
        if op.speaker is not None:
            check_id("memory.speaker", op.speaker)
        if len(op.context) > MAX_TEXT_LENGTH or "\x00" in op.context:
            raise InvalidArgumentError("memory.context", f"must be at most {MAX_TEXT_LENGTH} characters, no NUL")
    elif isinstance(op, MemoryUpdate):
        check_memory_id(op.memory_id)
        if op.text is not None:
            check_text("memory.text", op.text)
        check_metadata(op.metadata)
    elif isinstance(op, (MemoryDeletion, MemoryUnchanged)):
        check_memory_id(op.memory_id)
    else:
        raise InvalidArgumentError("operation", f"unknown extractor operation {type(op).__name__}")


def extract(record: Record, store: StoreHandle, request: ExtractionInput) -> list[Prepared]:
    """Run the store's extractor, validate what it returned, and embed every new text in one batch.

    Raises:
        ExtractionError: the extractor raised or returned an invalid operation.
        EmbeddingError: the embedder failed.
    """
    try:
        operations = list(store.extractor.extract(request))
    except MemoryPluginError:
        raise
    except Exception as e:  # the extractor is user code (an LLM call): one documented error
        raise ExtractionError(f"extractor {type(store.extractor).__name__} failed: {type(e).__name__}: {e}") from e
    try:
        for op in operations:
            _check_operation(op)
    except InvalidArgumentError as e:
        raise ExtractionError(f"extractor returned an invalid operation: {e}") from e
    speakers = _speakers(record, [op.memory_id for op in operations if isinstance(op, MemoryUpdate) and op.text])
    texts = [_embedding_input(op, speakers) for op in operations]
    vectors = iter(store.embedder.embed_documents([t for t in texts if t is not None]))
    return [Prepared(op, None if t is None else next(vectors)) for op, t in zip(operations, texts, strict=True)]


def _speakers(record: Record, memory_ids: list[str]) -> dict[str, str | None]:
    """The speakers of memories an extractor updates: their new text is embedded as said by the same speaker."""
    if not memory_ids:
        return {}
    with record.reading() as conn:
        marks = ",".join("?" * len(memory_ids))
        return dict(conn.execute(f"SELECT id, speaker FROM memories WHERE id IN ({marks})", memory_ids).fetchall())


def _embedding_input(op: MemoryOperation, speakers: dict[str, str | None]) -> str | None:
    if isinstance(op, NewMemory):
        return embedding_text(op.text, op.speaker)
    if isinstance(op, MemoryUpdate) and op.text is not None:
        return embedding_text(op.text, speakers.get(op.memory_id))
    return None


def apply(
    conn: sqlite3.Connection, store_id: int, scope: Scope, prepared: list[Prepared], when: datetime,
    request_id: str,
) -> list[Memory]:  # fmt: skip
    """Apply extracted operations; updates and deletions reach only memories of the same app and tenant, and
    ids the extractor made up or that are gone are skipped. Returns the memories created or updated."""
    memories: list[Memory] = []
    for item in prepared:
        op = item.operation
        if isinstance(op, NewMemory):
            assert item.embedding is not None
            memories.append(insert_memory(
                conn, store_id, scope, text=op.text, memory_type=op.memory_type, metadata=dict(op.metadata),
                event_time=op.event_time or when, source_message_ids=list(op.source_message_ids),
                embedding=item.embedding, request_id=request_id, speaker=op.speaker, context=op.context,
            ))  # fmt: skip
            continue
        row = conn.execute(
            "SELECT * FROM memories WHERE id = ? AND store_id = ? AND app_id = ? AND tenant_id = ?",
            (op.memory_id, store_id, scope.app_id, scope.tenant_id),
        ).fetchone()
        if row is None:
            continue
        if isinstance(op, MemoryUpdate):
            metadata = None if op.metadata is None else dict(op.metadata)
            memories.append(update_memory(conn, row, text=op.text, metadata=metadata, event_time=op.event_time,
                                          embedding=item.embedding, request_id=request_id,
                                          source_message_ids=list(op.source_message_ids)))  # fmt: skip
        elif isinstance(op, MemoryUnchanged):
            note_unchanged(conn, row, request_id, list(op.source_message_ids))
        else:
            delete_memory(conn, row, request_id, list(op.source_message_ids))
    return memories


def run_job(record: Record, index: VectorIndex, store: StoreHandle, job: sqlite3.Row) -> None:
    """Extract one background job and apply it, removing the job in the same transaction."""
    payload = json.loads(job["payload"])
    scope = Scope(app_id=job["app_id"], tenant_id=job["tenant_id"], agent_id=job["agent_id"], run_id=job["run_id"])
    ids: list[str] = payload["message_ids"]
    with record.reading() as conn:
        marks = ",".join("?" * len(ids))
        rows = conn.execute(f"SELECT * FROM messages WHERE id IN ({marks}) ORDER BY seq", ids).fetchall()
    when = to_datetime(payload["timestamp"])
    first_seq = int(rows[0]["seq"]) if rows else None
    request = extraction_input(record, index, store, scope, [row_message(r) for r in rows], payload["text"],
                               payload["metadata"], when, first_seq)  # fmt: skip
    # The extraction is audited as its own record under the request id of the AddMemories call that queued it.
    audit = AuditRecord(store.id, "ExtractMemories", scope, request_id=job["request_id"])
    try:
        prepared = extract(record, store, request)
    except Exception as e:
        audit.counts.update(request.usage)  # a failed attempt cost tokens too
        with record.transaction() as conn:
            audit.write(conn, type(e).__name__, str(e)[:500])
        raise
    with record.transaction() as conn:
        if conn.execute("SELECT 1 FROM jobs WHERE seq = ?", (job["seq"],)).fetchone() is None:
            return  # the store was deleted while extracting: nothing to write
        memories = apply(conn, store.id, scope, prepared, when, job["request_id"])
        audit.counts.update(request.usage, memories=len(memories))
        audit.write(conn)
        conn.execute("DELETE FROM jobs WHERE seq = ?", (job["seq"],))

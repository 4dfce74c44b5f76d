"""The write path of ``add``: validated messages in, extraction, embedding, and operations applied in one
transaction. Used by the service for ``sync=True`` calls and by the worker for background jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from .. import extraction
from ..clock import new_id
from ..embedding import Embedder
from ..errors import ExtractionError, InvalidArgumentError, MemoryPluginError
from ..filters import ReadFilter
from ..models import Memory, Message, Metadata
from ..retrieval import embedding_text
from ..scope import Scope, check_id
from ..settings import Settings
from ..storage.base import Job, JobQueue, NewMemoryRecord, RecordStore, RecordWriter, Vector, VectorIndex
from ..validation import (
    MAX_METADATA_KEYS,
    MAX_TEXT_LENGTH,
    MessageInput,
    check_memory_id,
    check_memory_type,
    check_metadata,
    check_text,
)
from .audit import AuditRecord
from .search import hybrid_search

RECENT_CONTEXT_MESSAGES = 20


@dataclass
class StoreHandle:
    """A memory store opened in a service, with the embedder and extractor it runs with."""

    id: int
    name: str
    embedder: Embedder
    extractor: extraction.Extractor


@dataclass(frozen=True)
class Prepared:
    """One extractor operation, validated, with the embedding of its new text if it has one."""

    operation: extraction.MemoryOperation
    embedding: Vector | None


def build_messages(
    scope: Scope, messages: Sequence[MessageInput], call_metadata: Metadata, when: datetime
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


def extraction_input(
    record: RecordStore, index: VectorIndex, settings: Settings, store: StoreHandle, scope: Scope,
    messages: list[Message], text: str | None, metadata: dict[str, Any], when: datetime,
    before_position: int | None = None,
) -> extraction.ExtractionInput:  # fmt: skip
    """What the extractor sees: the new messages, the run's recent messages, and a search of the tenant."""
    with record.read() as reader:
        recent = reader.recent_messages(store.id, scope, before_position, RECENT_CONTEXT_MESSAGES)
    tenant = ReadFilter(store.id, scope.with_(agent_id="*", run_id="*"))

    def related(query: str, k: int) -> list[Memory]:
        vector = store.embedder.embed_query(query)
        found = hybrid_search(record, index, tenant, query, vector, k, True, settings)
        return [memory for memory, _ in found.hits]

    def similar(text: str, k: int) -> list[tuple[Memory, float]]:
        # Compared with stored document embeddings, so embedded as a document too (asymmetric embedders).
        vector = np.asarray(store.embedder.embed_documents([text])[0], dtype=np.float32).reshape(-1)
        memories = [m for m, _ in hybrid_search(record, index, tenant, text, vector, k, True, settings).hits]
        return [(m, s) for m, s in zip(memories, _cosines(record, vector, [m.id for m in memories]), strict=True)]

    return extraction.ExtractionInput(scope=scope, messages=messages, text=text, metadata=metadata, timestamp=when,
                           recent=recent, related=related, similar=similar)  # fmt: skip


def _cosines(record: RecordStore, vector: Vector, memory_ids: list[str]) -> list[float]:
    """Cosine similarity of ``vector`` with the stored embeddings of memories (0.0 for one that is gone)."""
    if not memory_ids:
        return []
    with record.read() as reader:
        rows = reader.memories_by_id(memory_ids)
    result = []
    for memory_id in memory_ids:
        row = rows.get(memory_id)
        stored = None if row is None else row.embedding
        if stored is None or stored.shape != vector.shape:
            result.append(0.0)
            continue
        norm = float(np.linalg.norm(stored) * np.linalg.norm(vector))
        result.append(float(stored @ vector) / norm if norm else 0.0)
    return result


def _check_operation(op: object) -> None:
    if isinstance(op, extraction.NewMemory):
        check_text("memory.text", op.text)
        check_memory_type(op.memory_type)
        check_metadata(op.metadata)
        if op.speaker is not None:
            check_id("memory.speaker", op.speaker)
        if len(op.context) > MAX_TEXT_LENGTH or "\x00" in op.context:
            raise InvalidArgumentError("memory.context", f"must be at most {MAX_TEXT_LENGTH} characters, no NUL")
    elif isinstance(op, extraction.MemoryUpdate):
        check_memory_id(op.memory_id)
        if op.text is not None:
            check_text("memory.text", op.text)
        check_metadata(op.metadata)
    elif isinstance(op, (extraction.MemoryDeletion, extraction.MemoryUnchanged)):
        check_memory_id(op.memory_id)
    else:
        raise InvalidArgumentError("operation", f"unknown extractor operation {type(op).__name__}")


def extract(record: RecordStore, store: StoreHandle, request: extraction.ExtractionInput) -> list[Prepared]:
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
    updated = [op.memory_id for op in operations if isinstance(op, extraction.MemoryUpdate) and op.text]
    with record.read() as reader:
        # Updated text is embedded as said by the same speaker as before.
        speakers = {i: row.memory.speaker for i, row in reader.memories_by_id(updated).items()} if updated else {}
    texts = [_embedding_input(op, speakers) for op in operations]
    vectors = iter(store.embedder.embed_documents([t for t in texts if t is not None]))
    return [Prepared(op, None if t is None else next(vectors)) for op, t in zip(operations, texts, strict=True)]


def _embedding_input(op: extraction.MemoryOperation, speakers: dict[str, str | None]) -> str | None:
    if isinstance(op, extraction.NewMemory):
        return embedding_text(op.text, op.speaker)
    if isinstance(op, extraction.MemoryUpdate) and op.text is not None:
        return embedding_text(op.text, speakers.get(op.memory_id))
    return None


def apply(
    tx: RecordWriter, store_id: int, scope: Scope, prepared: list[Prepared], when: datetime, request_id: str
) -> list[Memory]:
    """Apply extracted operations; updates and deletions reach only memories of the same app and tenant, and
    ids the extractor made up or that are gone are skipped. Returns the memories created or updated."""
    memories: list[Memory] = []
    for item in prepared:
        op = item.operation
        if isinstance(op, extraction.NewMemory):
            assert item.embedding is not None
            new = NewMemoryRecord(
                text=op.text, memory_type=op.memory_type, metadata=dict(op.metadata),
                event_time=op.event_time or when, source_message_ids=list(op.source_message_ids),
                embedding=item.embedding, speaker=op.speaker, context=op.context,
            )  # fmt: skip
            memories.append(tx.insert_memory(store_id, scope, new, request_id))
            continue
        row = tx.tenant_memory(store_id, scope, op.memory_id)
        if row is None:
            continue
        if isinstance(op, extraction.MemoryUpdate):
            metadata = None if op.metadata is None else dict(op.metadata)
            memories.append(tx.update_memory(row, text=op.text, metadata=metadata, event_time=op.event_time,
                                             embedding=item.embedding, request_id=request_id,
                                             source_message_ids=list(op.source_message_ids)))  # fmt: skip
        elif isinstance(op, extraction.MemoryUnchanged):
            tx.note_unchanged(row, request_id, list(op.source_message_ids))
        else:
            tx.delete_memory(row, request_id, list(op.source_message_ids))
    return memories


def run_job(
    record: RecordStore, index: VectorIndex, queue: JobQueue, settings: Settings, store: StoreHandle, job: Job
) -> None:
    """Extract one background job and apply it, removing the job in the same transaction. The extraction is
    audited as its own record under the request id of the ``AddMemories`` call that queued it."""
    with record.read() as reader:
        found = reader.messages_by_id(job.message_ids)
    first = found[0][0] if found else None
    request = extraction_input(record, index, settings, store, job.scope, [m for _, m in found], job.text,
                               dict(job.metadata), job.timestamp, first)  # fmt: skip
    audit = AuditRecord(store.id, "ExtractMemories", job.scope, request_id=job.request_id)
    try:
        prepared = extract(record, store, request)
    except Exception as e:
        audit.counts.update(request.usage)  # a failed attempt cost tokens too
        with record.write() as tx:
            audit.write(tx, type(e).__name__, str(e)[:500])
        raise
    with record.write() as tx:
        if not queue.finish(tx, job):
            return  # the store or the tenant was deleted while extracting: nothing to write
        memories = apply(tx, store.id, job.scope, prepared, job.timestamp, job.request_id)
        audit.counts.update(request.usage, memories=len(memories))
        audit.write(tx)

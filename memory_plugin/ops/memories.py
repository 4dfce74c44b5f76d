"""Operations on the memories, messages, audit and background work of one store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import models
from ..errors import InvalidArgumentError
from ..scope import Scope, check_id
from ..validation import (
    MessageInput,
    check_bool,
    check_idempotency_key,
    check_messages,
    check_metadata,
    check_optional_time,
    check_query,
    check_text,
    check_top_k,
)
from .base import (
    OPERATION_NAMES,
    MemoryOperation,
    ReadOperation,
    SearchResultsCodec,
    StoreOperation,
    WholeStoreOperation,
    concrete_scope,
    missing_field,
    page_fields,
    require_one_tenant,
    scope_field,
    store_field,
)


@dataclass(frozen=True)
class Add(StoreOperation[models.AddResult], route="add", audit="AddMemories", writes=True):
    """Add messages (kept as short-term memory, long-term memories extracted from them) or a text, to one run."""

    scope: Scope
    messages: tuple[MessageInput, ...] | None = None
    text: str | None = None
    metadata: models.Metadata = dataclasses.field(default_factory=dict)
    sync: bool = True
    timestamp: datetime | None = None
    idempotency_key: str | None = None

    @classmethod
    def parse(cls, **raw: Any) -> Add:
        store, scope = store_field(raw), concrete_scope(raw, "add")
        messages, text = raw.get("messages"), raw.get("text")
        if (messages is None) == (text is None):
            raise InvalidArgumentError("messages", "give exactly one of messages= or text=")
        return cls(
            store=store,
            scope=scope,
            messages=None if messages is None else tuple(check_messages(messages)),
            text=None if text is None else check_text("text", text),
            metadata=check_metadata(raw.get("metadata")),
            sync=check_bool("sync", raw.get("sync", True)),
            timestamp=check_optional_time("timestamp", raw.get("timestamp")),
            idempotency_key=check_idempotency_key(raw.get("idempotency_key")),
        )


@dataclass(frozen=True)
class Search(ReadOperation[models.SearchResults], route="search", audit="SearchMemories", result=SearchResultsCodec()):
    """The memories of a read scope best matching ``query``, with their scores."""

    query: str = ""
    top_k: int = 10
    rerank: bool = True
    explain: bool = False

    @classmethod
    def parse(cls, **raw: Any) -> Search:
        fields = cls._read_fields(raw)
        if "query" not in raw:
            raise missing_field("query")
        return cls(
            **fields,
            query=check_query(raw["query"]),
            top_k=check_top_k(raw.get("top_k", 10)),
            rerank=check_bool("rerank", raw.get("rerank", True)),
            explain=check_bool("explain", raw.get("explain", False)),
        )


@dataclass(frozen=True)
class ListMemories(ReadOperation[models.Page[models.Memory]], route="list", audit="ListMemories"):
    """One page of the memories of a read scope, oldest first."""

    limit: int = 20
    cursor: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> ListMemories:
        return cls(**cls._read_fields(raw), **page_fields(cls, raw))


@dataclass(frozen=True)
class GetMemory(MemoryOperation[models.Memory], route="get", audit="GetMemory"):
    """One memory of a concrete scope."""


@dataclass(frozen=True)
class UpdateMemory(MemoryOperation[models.Memory], route="update", audit="UpdateMemory", writes=True):
    """Change the text and/or metadata of one memory."""

    text: str | None = None
    metadata: models.Metadata | None = None

    @classmethod
    def parse(cls, **raw: Any) -> UpdateMemory:
        fields = cls._memory_fields(raw, "update")
        text, metadata = raw.get("text"), raw.get("metadata")
        if text is None and metadata is None:
            raise InvalidArgumentError("text", "give text=, metadata= or both to update")
        return cls(
            **fields,
            text=None if text is None else check_text("text", text),
            metadata=None if metadata is None else check_metadata(metadata),
        )


@dataclass(frozen=True)
class DeleteMemory(MemoryOperation[None], route="delete", audit="DeleteMemory", writes=True):
    """Delete one memory."""


@dataclass(frozen=True)
class GetHistory(MemoryOperation[list[models.HistoryEvent]], route="history", audit="GetHistory"):
    """What happened to one memory, oldest first."""


@dataclass(frozen=True)
class ListMessages(StoreOperation[models.Page[models.Message]], route="messages", audit="ListMessages"):
    """One page of the raw messages of one run, in order."""

    scope: Scope
    limit: int = 100
    cursor: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> ListMessages:
        return cls(store=store_field(raw), scope=concrete_scope(raw, "messages"), **page_fields(cls, raw))


@dataclass(frozen=True)
class DeleteMessages(StoreOperation[int], route="clear_messages", audit="DeleteMessages", writes=True):
    """Delete the raw messages of one run; long-term memories stay."""

    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteMessages:
        return cls(store=store_field(raw), scope=concrete_scope(raw, "clear_messages"))


@dataclass(frozen=True)
class DeleteAll(StoreOperation[models.DeleteAllResult], route="delete_all", audit="DeleteAll", writes=True):
    """Erase everything of one tenant's read scope: memories, history, messages, extraction jobs."""

    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteAll:
        return cls(store=store_field(raw), scope=require_one_tenant(scope_field(raw)))


@dataclass(frozen=True)
class ListRequests(StoreOperation[models.Page[models.RequestRecord]], route="requests", audit="ListRequests"):
    """One page of the audit records of a read scope, newest first."""

    scope: Scope
    operation: str | None = None
    limit: int = 50
    cursor: int | None = None
    outcome: str | None = None  # "ok", "error" (any failure) or an error's class name
    key_id: str | None = None  # the access key that made the calls (memory server)

    @classmethod
    def parse(cls, **raw: Any) -> ListRequests:
        operation, outcome, key_id = raw.get("operation"), raw.get("outcome"), raw.get("key_id")
        if operation is not None and operation not in OPERATION_NAMES:
            raise InvalidArgumentError(
                "operation", f"must be one of {list(OPERATION_NAMES)} or None, got {operation!r:.60}"
            )
        if outcome is not None and (not isinstance(outcome, str) or not outcome.isidentifier()):
            raise InvalidArgumentError("outcome", "must be 'ok', 'error' or an error class name, or None")
        return cls(
            store=store_field(raw),
            scope=scope_field(raw),
            operation=operation,
            outcome=outcome,
            key_id=None if key_id is None else check_id("key_id", key_id),
            **page_fields(cls, raw),
        )


@dataclass(frozen=True)
class Flush(StoreOperation[bool], route="flush", audit="Flush"):
    """Wait until the store's background extraction is done (at most ``timeout`` seconds)."""

    timeout: float | None = None

    @classmethod
    def parse(cls, **raw: Any) -> Flush:
        timeout = raw.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < 10**9
        ):
            raise InvalidArgumentError("timeout", "must be None or a number of seconds >= 0")
        return cls(store=store_field(raw), timeout=None if timeout is None else float(timeout))


@dataclass(frozen=True)
class ListExtractionJobs(
    WholeStoreOperation[list[models.ExtractionJob]], route="extraction_status", audit="ListExtractionJobs"
):
    """The store's unfinished background extraction jobs."""


@dataclass(frozen=True)
class RetryExtraction(WholeStoreOperation[int], route="retry_failed", audit="RetryExtraction", writes=True):
    """Queue the store's failed extraction jobs again."""


@dataclass(frozen=True)
class PruneStore(WholeStoreOperation[models.PruneResult], route="prune", audit="PruneStore", writes=True):
    """Delete what is older than the store's retention."""

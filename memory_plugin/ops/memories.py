"""Operations on the memories, messages, audit and background work of one store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import InvalidArgumentError
from ..models import (
    AddResult,
    DeleteAllResult,
    ExtractionJob,
    HistoryEvent,
    Memory,
    Message,
    Metadata,
    Page,
    PruneResult,
    RequestRecord,
    SearchResults,
)
from ..scope import Scope
from ..validation import (
    MessageInput,
    check_bool,
    check_cursor,
    check_idempotency_key,
    check_limit,
    check_messages,
    check_metadata,
    check_optional_time,
    check_query,
    check_text,
    check_top_k,
)
from .base import (
    OPERATION_NAMES,
    Codec,
    MemoryOperation,
    ReadOperation,
    SearchResultsCodec,
    StoreOperation,
    WholeStoreOperation,
    concrete_scope,
    cursor_json,
    missing_field,
    require_one_tenant,
    scope_field,
    store_field,
)


@dataclass(frozen=True)
class Add(StoreOperation[AddResult]):
    NAME = "AddMemories"
    ROUTE = "add"
    RESULT = Codec(AddResult)
    WRITES = True
    scope: Scope
    messages: tuple[MessageInput, ...] | None = None
    text: str | None = None
    metadata: Metadata = dataclasses.field(default_factory=dict)
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
class Search(ReadOperation[SearchResults]):
    NAME = "SearchMemories"
    ROUTE = "search"
    RESULT = SearchResultsCodec()
    query: str = ""
    top_k: int = 10
    rerank: bool = True

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
        )


@dataclass(frozen=True)
class ListMemories(ReadOperation[Page[Memory]]):
    NAME = "ListMemories"
    ROUTE = "list"
    RESULT = Codec(Page[Memory])
    limit: int = 20
    cursor: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> ListMemories:
        return cls(
            **cls._read_fields(raw),
            limit=check_limit(raw.get("limit", 20)),
            cursor=check_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": cursor_json(self.cursor)}


@dataclass(frozen=True)
class GetMemory(MemoryOperation[Memory]):
    NAME = "GetMemory"
    ROUTE = "get"
    RESULT = Codec(Memory)


@dataclass(frozen=True)
class UpdateMemory(MemoryOperation[Memory]):
    NAME = "UpdateMemory"
    ROUTE = "update"
    RESULT = Codec(Memory)
    WRITES = True
    text: str | None = None
    metadata: Metadata | None = None

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
class DeleteMemory(MemoryOperation[None]):
    NAME = "DeleteMemory"
    ROUTE = "delete"
    RESULT = Codec(None)
    WRITES = True


@dataclass(frozen=True)
class GetHistory(MemoryOperation[list[HistoryEvent]]):
    NAME = "GetHistory"
    ROUTE = "history"
    RESULT = Codec(list[HistoryEvent])


@dataclass(frozen=True)
class ListMessages(StoreOperation[Page[Message]]):
    NAME = "ListMessages"
    ROUTE = "messages"
    RESULT = Codec(Page[Message])
    scope: Scope
    limit: int = 100
    cursor: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> ListMessages:
        return cls(
            store=store_field(raw),
            scope=concrete_scope(raw, "messages"),
            limit=check_limit(raw.get("limit", 100)),
            cursor=check_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": cursor_json(self.cursor)}


@dataclass(frozen=True)
class DeleteMessages(StoreOperation[int]):
    NAME = "DeleteMessages"
    ROUTE = "clear_messages"
    RESULT = Codec(int)
    WRITES = True
    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteMessages:
        return cls(store=store_field(raw), scope=concrete_scope(raw, "clear_messages"))


@dataclass(frozen=True)
class DeleteAll(StoreOperation[DeleteAllResult]):
    NAME = "DeleteAll"
    ROUTE = "delete_all"
    RESULT = Codec(DeleteAllResult)
    WRITES = True
    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteAll:
        return cls(store=store_field(raw), scope=require_one_tenant(scope_field(raw)))


@dataclass(frozen=True)
class ListRequests(StoreOperation[Page[RequestRecord]]):
    NAME = "ListRequests"
    ROUTE = "requests"
    RESULT = Codec(Page[RequestRecord])
    scope: Scope
    operation: str | None = None
    limit: int = 50
    cursor: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> ListRequests:
        operation = raw.get("operation")
        if operation is not None and operation not in OPERATION_NAMES:
            raise InvalidArgumentError(
                "operation", f"must be one of {list(OPERATION_NAMES)} or None, got {operation!r:.60}"
            )
        return cls(
            store=store_field(raw),
            scope=scope_field(raw),
            operation=operation,
            limit=check_limit(raw.get("limit", 50)),
            cursor=check_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": cursor_json(self.cursor)}


@dataclass(frozen=True)
class Flush(StoreOperation[bool]):
    NAME = "Flush"
    ROUTE = "flush"
    RESULT = Codec(bool)
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
class ListExtractionJobs(WholeStoreOperation[list[ExtractionJob]]):
    NAME = "ListExtractionJobs"
    ROUTE = "extraction_status"
    RESULT = Codec(list[ExtractionJob])


@dataclass(frozen=True)
class RetryExtraction(WholeStoreOperation[int]):
    NAME = "RetryExtraction"
    ROUTE = "retry_failed"
    RESULT = Codec(int)
    WRITES = True


@dataclass(frozen=True)
class PruneStore(WholeStoreOperation[PruneResult]):
    NAME = "PruneStore"
    ROUTE = "prune"
    RESULT = Codec(PruneResult)
    WRITES = True

"""Operations as values: one typed request per public operation, validated once, with JSON codecs for the request
and for its result.

Every surface (the sync and async clients, the HTTP server, the CLI, the adapters through the clients) sends the same
operations. A call travels as the operation's type and its raw arguments; the service parses them with
:meth:`Operation.parse` inside the call's audit record, so a refused call is audited too, and past that point every
field has its real type (a :class:`~memory_plugin.scope.Scope`, a ``datetime``, an ``int``). Over HTTP the raw
arguments travel as JSON (:func:`raw_json`) and are parsed the same way on the server.

Example:
    >>> op = Search.parse(store="s", scope="app/u1/*/*", query="coffee", top_k=3)
    >>> op.top_k, str(op.scope)
    (3, 'app/u1/*/*')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import TypeAdapter

from .errors import InvalidArgumentError
from .forgetting import require_one_tenant
from .models import (
    AddResult,
    DeleteAllResult,
    ExtractionJob,
    HistoryEvent,
    Memory,
    MemoryStoreInfo,
    Message,
    Metadata,
    MetadataValue,
    Page,
    PruneResult,
    RequestRecord,
    SearchHit,
    SearchResults,
    Usage,
)
from .scope import Scope
from .validation import (
    MessageInput,
    check_bool,
    check_cursor,
    check_description,
    check_filters,
    check_idempotency_key,
    check_limit,
    check_memory_id,
    check_memory_types,
    check_messages,
    check_metadata,
    check_optional_time,
    check_query,
    check_retention_days,
    check_store_name,
    check_text,
    check_time_range,
    check_top_k,
    encode_cursor,
    message_json,
)

R = TypeVar("R")

# The audit's operation names, as Tablestore spells them; ``requests(operation=...)`` accepts these.
OPERATION_NAMES = (
    "AddMemories",
    "SearchMemories",
    "ListMemories",
    "GetMemory",
    "UpdateMemory",
    "DeleteMemory",
    "GetHistory",
    "ListMessages",
    "DeleteMessages",
    "DeleteAll",
    "PruneStore",
    "ListRequests",
    "Flush",
    "ExtractMemories",
    "ListExtractionJobs",
    "RetryExtraction",
)


class Codec(Generic[R]):
    """Turns one result type into JSON-ready data and back."""

    def __init__(self, kind: Any) -> None:
        self._adapter: TypeAdapter[R] = TypeAdapter(kind)

    def encode(self, value: R) -> Any:
        return self._adapter.dump_python(value, mode="json")

    def decode(self, data: Any) -> R:
        return self._adapter.validate_python(data)


class _SearchResultsCodec(Codec[SearchResults]):
    """Search results are a list with a request id and usage: ``{"hits": [...], "request_id", "usage"}``."""

    def __init__(self) -> None:
        self._hits: TypeAdapter[list[SearchHit]] = TypeAdapter(list[SearchHit])

    def encode(self, value: SearchResults) -> Any:
        return {
            "hits": self._hits.dump_python(list(value), mode="json"),
            "request_id": value.request_id,
            "usage": value.usage.model_dump(mode="json"),
        }

    def decode(self, data: Any) -> SearchResults:
        return SearchResults(
            self._hits.validate_python(data["hits"]), data["request_id"], Usage.model_validate(data["usage"])
        )


def _jsonable(value: Any) -> Any:
    """Typed field values as JSON data: scopes as mappings, times as ISO text, messages as dicts."""
    if isinstance(value, Scope):
        return {k: v if isinstance(v, str) else list(v) for k, v in value.segments().items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, MessageInput):
        return message_json(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Operation(Generic[R]):
    """One public operation. ``NAME`` is how the audit records it (``None``: not audited), ``ROUTE`` its HTTP path
    segment, ``RESULT`` the codec of what it returns, ``WRITES`` whether it changes data."""

    NAME: ClassVar[str | None] = None
    ROUTE: ClassVar[str]
    RESULT: ClassVar[Codec[Any]]
    WRITES: ClassVar[bool] = False

    @classmethod
    def parse(cls, **raw: Any) -> Operation[R]:
        """Validate raw arguments (as a caller gave them, or as JSON) into this operation.

        Raises:
            InvalidArgumentError, InvalidScopeError: a field is missing, unknown or invalid; the message names it.
        """
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: object) -> Operation[R]:
        """Parse a JSON object of raw arguments; unknown fields are refused."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("body", f"must be a JSON object, got {type(data).__name__}")
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise InvalidArgumentError(unknown[0], f"is not a field of {cls.__name__}; allowed: {sorted(allowed)}")
        return cls.parse(**{str(k): v for k, v in data.items()})

    def to_json(self) -> dict[str, Any]:
        """This operation's fields as JSON data; :meth:`from_json` reads them back into an equal operation."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _missing(field: str) -> InvalidArgumentError:
    return InvalidArgumentError(field, "is required")


def _store(raw: Mapping[str, Any]) -> str:
    if "store" not in raw:
        raise _missing("store")
    return check_store_name(raw["store"])


def _scope(raw: Mapping[str, Any]) -> Scope:
    if "scope" not in raw:
        raise _missing("scope")
    return Scope.parse(raw["scope"])


def _concrete(raw: Mapping[str, Any], operation: str) -> Scope:
    return _scope(raw).require_concrete(operation)


# ---- stores -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateStore(Operation[MemoryStoreInfo]):
    ROUTE = "stores.create"
    RESULT = Codec(MemoryStoreInfo)
    WRITES = True
    name: str
    description: str = ""
    audit_retention_days: int | None = None
    history_retention_days: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> CreateStore:
        return cls(
            name=check_store_name(raw.get("name")),
            description=check_description(raw.get("description", "")),
            audit_retention_days=check_retention_days("audit_retention_days", raw.get("audit_retention_days")),
            history_retention_days=check_retention_days("history_retention_days", raw.get("history_retention_days")),
        )


@dataclass(frozen=True)
class GetStore(Operation[MemoryStoreInfo]):
    ROUTE = "stores.get"
    RESULT = Codec(MemoryStoreInfo)
    name: str

    @classmethod
    def parse(cls, **raw: Any) -> GetStore:
        return cls(name=check_store_name(raw.get("name")))


@dataclass(frozen=True)
class ListStores(Operation[list[MemoryStoreInfo]]):
    ROUTE = "stores.list"
    RESULT = Codec(list[MemoryStoreInfo])

    @classmethod
    def parse(cls, **raw: Any) -> ListStores:
        return cls()


STORE_SETTINGS = ("description", "audit_retention_days", "history_retention_days")


@dataclass(frozen=True)
class UpdateStore(Operation[MemoryStoreInfo]):
    """Change some of a store's settings; ``changes`` holds only the settings named by the caller."""

    ROUTE = "stores.update"
    RESULT = Codec(MemoryStoreInfo)
    WRITES = True
    name: str
    changes: Mapping[str, str | int | None]

    @classmethod
    def parse(cls, **raw: Any) -> UpdateStore:
        changes = raw.get("changes") or {}
        if not isinstance(changes, Mapping):
            raise InvalidArgumentError("changes", f"must be a mapping of settings, got {type(changes).__name__}")
        checked: dict[str, str | int | None] = {}
        for key, value in changes.items():
            if key == "description":
                checked[key] = check_description(value)
            elif key in STORE_SETTINGS:
                checked[key] = check_retention_days(key, value)
            else:
                raise InvalidArgumentError(str(key), f"is not a store setting; allowed: {list(STORE_SETTINGS)}")
        return cls(name=check_store_name(raw.get("name")), changes=checked)


@dataclass(frozen=True)
class DeleteStore(Operation[None]):
    ROUTE = "stores.delete"
    RESULT = Codec(None)
    WRITES = True
    name: str

    @classmethod
    def parse(cls, **raw: Any) -> DeleteStore:
        return cls(name=check_store_name(raw.get("name")))


# ---- memories -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreOperation(Operation[R]):
    """An operation on one memory store, named by ``store``."""

    store: str


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
        store, scope = _store(raw), _concrete(raw, "add")
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
class ReadOperation(StoreOperation[R]):
    """A read over a scope (``*`` and id lists allowed) with the optional filters ``search`` and ``list`` share."""

    scope: Scope
    memory_types: tuple[str, ...] = ()
    filters: Mapping[str, tuple[MetadataValue, ...]] = dataclasses.field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "memory_types": list(self.memory_types) or None}

    @staticmethod
    def _read_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
        start, end = check_time_range(raw.get("start_time"), raw.get("end_time"))
        return {
            "store": _store(raw),
            "scope": _scope(raw),
            "memory_types": check_memory_types(raw.get("memory_types")),
            "filters": check_filters(raw.get("filters")),
            "start_time": start,
            "end_time": end,
        }


@dataclass(frozen=True)
class Search(ReadOperation[SearchResults]):
    NAME = "SearchMemories"
    ROUTE = "search"
    RESULT = _SearchResultsCodec()
    query: str = ""
    top_k: int = 10
    rerank: bool = True

    @classmethod
    def parse(cls, **raw: Any) -> Search:
        fields = cls._read_fields(raw)
        if "query" not in raw:
            raise _missing("query")
        return cls(
            **fields,
            query=check_query(raw["query"]),
            top_k=check_top_k(raw.get("top_k", 10)),
            rerank=check_bool("rerank", raw.get("rerank", True)),
        )


def _cursor_json(position: int | None) -> str | None:
    return None if position is None else encode_cursor(position)


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
        return {**super().to_json(), "cursor": _cursor_json(self.cursor)}


@dataclass(frozen=True)
class MemoryOperation(StoreOperation[R]):
    """An operation on one memory of one concrete scope."""

    scope: Scope
    memory_id: str

    @classmethod
    def _memory_fields(cls, raw: Mapping[str, Any], operation: str) -> dict[str, Any]:
        if "memory_id" not in raw:
            raise _missing("memory_id")
        return {
            "store": _store(raw),
            "scope": _concrete(raw, operation),
            "memory_id": check_memory_id(raw["memory_id"]),
        }

    @classmethod
    def parse(cls, **raw: Any) -> MemoryOperation[R]:
        return cls(**cls._memory_fields(raw, cls.ROUTE))


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
            store=_store(raw),
            scope=_concrete(raw, "messages"),
            limit=check_limit(raw.get("limit", 100)),
            cursor=check_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": _cursor_json(self.cursor)}


@dataclass(frozen=True)
class DeleteMessages(StoreOperation[int]):
    NAME = "DeleteMessages"
    ROUTE = "clear_messages"
    RESULT = Codec(int)
    WRITES = True
    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteMessages:
        return cls(store=_store(raw), scope=_concrete(raw, "clear_messages"))


@dataclass(frozen=True)
class DeleteAll(StoreOperation[DeleteAllResult]):
    NAME = "DeleteAll"
    ROUTE = "delete_all"
    RESULT = Codec(DeleteAllResult)
    WRITES = True
    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> DeleteAll:
        return cls(store=_store(raw), scope=require_one_tenant(_scope(raw)))


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
            store=_store(raw),
            scope=_scope(raw),
            operation=operation,
            limit=check_limit(raw.get("limit", 50)),
            cursor=check_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": _cursor_json(self.cursor)}


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
        return cls(store=_store(raw), timeout=None if timeout is None else float(timeout))


@dataclass(frozen=True)
class _WholeStore(StoreOperation[R]):
    @classmethod
    def parse(cls, **raw: Any) -> _WholeStore[R]:
        return cls(store=_store(raw))


@dataclass(frozen=True)
class ListExtractionJobs(_WholeStore[list[ExtractionJob]]):
    NAME = "ListExtractionJobs"
    ROUTE = "extraction_status"
    RESULT = Codec(list[ExtractionJob])


@dataclass(frozen=True)
class RetryExtraction(_WholeStore[int]):
    NAME = "RetryExtraction"
    ROUTE = "retry_failed"
    RESULT = Codec(int)
    WRITES = True


@dataclass(frozen=True)
class PruneStore(_WholeStore[PruneResult]):
    NAME = "PruneStore"
    ROUTE = "prune"
    RESULT = Codec(PruneResult)
    WRITES = True


STORE_LIFECYCLE: tuple[type[Operation[Any]], ...] = (CreateStore, GetStore, ListStores, UpdateStore, DeleteStore)
STORE_OPERATIONS: tuple[type[StoreOperation[Any]], ...] = (
    Add,
    Search,
    ListMemories,
    GetMemory,
    UpdateMemory,
    DeleteMemory,
    GetHistory,
    ListMessages,
    DeleteMessages,
    DeleteAll,
    ListRequests,
    Flush,
    ListExtractionJobs,
    RetryExtraction,
    PruneStore,
)
BY_ROUTE: dict[str, type[Operation[Any]]] = {op.ROUTE: op for op in (*STORE_LIFECYCLE, *STORE_OPERATIONS)}


def raw_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Raw call arguments as JSON data, for a transport that sends them elsewhere to be parsed: scopes, times and
    message objects (LangChain, LlamaIndex) become plain data; nothing is validated here.

    Raises:
        InvalidArgumentError: an argument holds something JSON cannot carry (the field is named).
    """
    result: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "messages" and isinstance(value, (list, tuple)):
            value = [message_json(m) for m in value]
        try:
            result[key] = _plain(value)
        except TypeError as e:
            raise InvalidArgumentError(key, str(e)) from None
    return result


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (Scope, datetime, MessageInput)):
        return _jsonable(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    raise TypeError(f"cannot be sent as JSON: {type(value).__name__}")

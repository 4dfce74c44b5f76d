"""The base of every operation value: raw arguments parsed once into typed fields, a JSON codec for the request
and one for its result, and the parsing helpers the operations share."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin

from pydantic import TypeAdapter

from ..errors import InvalidArgumentError, InvalidScopeError
from ..models import MetadataValue, SearchHit, SearchResults, Usage
from ..scope import WILDCARD, Scope
from ..validation import (
    MessageInput,
    check_cursor,
    check_filters,
    check_limit,
    check_memory_id,
    check_memory_types,
    check_store_name,
    check_time_range,
    encode_cursor,
    message_json,
)

R = TypeVar("R")
Op = TypeVar("Op", bound="Operation[Any]")

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
    "ListScopes",
    "StoreStats",
    "ActivityStats",
)


class Codec(Generic[R]):
    """Turns one result type into JSON-ready data and back."""

    def __init__(self, kind: Any) -> None:
        self._adapter: TypeAdapter[R] = TypeAdapter(kind)

    def encode(self, value: R) -> Any:
        return self._adapter.dump_python(value, mode="json")

    def decode(self, data: Any) -> R:
        return self._adapter.validate_python(data)

    def json_schema(self) -> dict[str, Any]:
        return self._adapter.json_schema()


class SearchResultsCodec(Codec[SearchResults]):
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


def jsonable(value: Any) -> Any:
    """Typed field values as JSON data: scopes as mappings, times as ISO text, messages as dicts."""
    if isinstance(value, Scope):
        return {k: v if isinstance(v, str) else list(v) for k, v in value.segments().items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, MessageInput):
        return message_json(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Operation(Generic[R]):
    """One public operation, returning ``R``. Each operation says in its class line what it is:

    - ``route``: its HTTP path segment (``ROUTE``);
    - ``audit``: how the audit records it (``NAME``; none: not audited);
    - ``writes``: whether it changes data (``WRITES``);
    - ``result``: the codec of what it returns (``RESULT``), when not the plain one of ``R``.

    Example:
        >>> @dataclass(frozen=True)  # doctest: +SKIP
        ... class DeleteMessages(StoreOperation[int], route="clear_messages", audit="DeleteMessages", writes=True):
        ...     scope: Scope
    """

    NAME: ClassVar[str | None] = None
    ROUTE: ClassVar[str]
    RESULT: ClassVar[Codec[Any]]
    WRITES: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        route: str | None = None,
        audit: str | None = None,
        writes: bool = False,
        result: Codec[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if route is None:  # a kind of operation (StoreOperation, ReadOperation ...), not one a caller sends
            return
        cls.ROUTE, cls.NAME, cls.WRITES = route, audit, writes
        cls.RESULT = result or Codec(_result_type(cls))

    @classmethod
    def parse(cls, **raw: Any) -> Operation[R]:
        """Validate raw arguments (as a caller gave them, or as JSON) into this operation.

        Raises:
            InvalidArgumentError, InvalidScopeError: a field is missing, unknown or invalid; the message names it.
        """
        raise NotImplementedError

    @classmethod
    def from_raw(cls: type[Op], raw: Mapping[str, Any]) -> Op:
        """:meth:`parse`, refusing arguments that are not fields of this operation (a misspelt ``topk`` must not
        be silently ignored)."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            raise InvalidArgumentError(unknown[0], f"is not a field of {cls.__name__}; allowed: {sorted(allowed)}")
        return cast(Op, cls.parse(**{str(k): v for k, v in raw.items()}))

    @classmethod
    def from_json(cls: type[Op], data: object) -> Op:
        """Parse a JSON object of raw arguments; unknown fields are refused."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("body", f"must be a JSON object, got {type(data).__name__}")
        return cls.from_raw(data)

    def to_json(self) -> dict[str, Any]:
        """This operation's fields as JSON data; :meth:`from_json` reads them back into an equal operation."""
        data = {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}
        if data.get("cursor") is not None:  # a page's cursor travels as the opaque text callers hold
            data["cursor"] = encode_cursor(data["cursor"])
        return data


def _result_type(op: type[Operation[Any]]) -> Any:
    """``R`` of ``class Op(SomeOperation[R])``."""
    for base in getattr(op, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Operation):
            return get_args(base)[0]
    raise TypeError(f"{op.__name__} must name what it returns: class {op.__name__}(StoreOperation[Result], ...)")


def require_one_tenant(scope: Scope) -> Scope:
    """The scope of ``delete_all``: one concrete tenant (``agent_id`` / ``run_id`` may be ``*`` or id lists), so one
    call can never erase several users."""
    if not isinstance(scope.tenant_id, str) or scope.tenant_id == WILDCARD:
        raise InvalidScopeError(
            "scope.tenant_id", "delete_all needs one concrete tenant id; '*' and id lists are refused there"
        )
    return scope


def missing_field(field: str) -> InvalidArgumentError:
    return InvalidArgumentError(field, "is required")


def store_field(raw: Mapping[str, Any]) -> str:
    if "store" not in raw:
        raise missing_field("store")
    return check_store_name(raw["store"], "store")


def scope_field(raw: Mapping[str, Any]) -> Scope:
    if "scope" not in raw:
        raise missing_field("scope")
    return Scope.parse(raw["scope"])


def concrete_scope(raw: Mapping[str, Any], operation: str) -> Scope:
    return scope_field(raw).require_concrete(operation)


def page_fields(op: type[Operation[Any]], raw: Mapping[str, Any]) -> dict[str, Any]:
    """``limit`` (by default the operation's own) and ``cursor`` of a read that returns one page."""
    default = op.__dataclass_fields__["limit"].default
    return {"limit": check_limit(raw.get("limit", default)), "cursor": check_cursor(raw.get("cursor"))}


@dataclass(frozen=True)
class StoreOperation(Operation[R]):
    """An operation on one memory store, named by ``store``."""

    store: str


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
            "store": store_field(raw),
            "scope": scope_field(raw),
            "memory_types": check_memory_types(raw.get("memory_types")),
            "filters": check_filters(raw.get("filters")),
            "start_time": start,
            "end_time": end,
        }


@dataclass(frozen=True)
class MemoryOperation(StoreOperation[R]):
    """An operation on one memory of one concrete scope."""

    scope: Scope
    memory_id: str

    @classmethod
    def _memory_fields(cls, raw: Mapping[str, Any], operation: str) -> dict[str, Any]:
        if "memory_id" not in raw:
            raise missing_field("memory_id")
        return {
            "store": store_field(raw),
            "scope": concrete_scope(raw, operation),
            "memory_id": check_memory_id(raw["memory_id"]),
        }

    @classmethod
    def parse(cls, **raw: Any) -> MemoryOperation[R]:
        return cls(**cls._memory_fields(raw, cls.ROUTE))


@dataclass(frozen=True)
class WholeStoreOperation(StoreOperation[R]):
    @classmethod
    def parse(cls, **raw: Any) -> WholeStoreOperation[R]:
        return cls(store=store_field(raw))


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
            result[key] = plain_json(value)
        except TypeError as e:
            raise InvalidArgumentError(key, str(e)) from None
    return result


def plain_json(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (Scope, datetime, MessageInput)):
        return jsonable(value)
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    raise TypeError(f"cannot be sent as JSON: {type(value).__name__}")

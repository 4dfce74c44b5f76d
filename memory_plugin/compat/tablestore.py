"""The Tablestore memory store SDK's dict API over memory_plugin: :class:`OTSClient` and :class:`AsyncOTSClient`.

Code written for the seed SDK runs unchanged but for the import and the client construction::

    from memory_plugin.compat.tablestore import OTSClient

    client = OTSClient.over(MemoryClient(path="./agent-memory"))   # embedded, or any MemoryClient
    client = OTSClient(endpoint, access_key_id, access_key_secret, instance_name)  # a memory server (issue 14)

    client.add_memories({"memoryStoreName": "agent_memory", "scope": {"appId": ..., "tenantId": ...,
                         "agentId": ..., "runId": ...}, "text": "..."})

Requests are dicts with the seed's camelCase fields; a field the operation does not know is refused, not ignored,
and errors name fields as the seed spells them (``topK``, ``scope.tenantId``). Responses are dicts: camelCase at
the top, the memory units inside in snake_case (``Memory.model_dump(mode="json")``). Per method, its request
fields (required ones first, then ``;`` and the optional ones) and its response:

- ``create_memory_store``: memoryStoreName; description -> memoryStoreName, description
- ``get_memory_store``: memoryStoreName -> memoryStoreName, description, embedder, dimension, createdAt, ...
- ``list_memory_stores``: (none) -> memoryStores
- ``update_memory_store``: memoryStoreName; description, auditRetentionDays, historyRetentionDays -> the store
- ``delete_memory_store``: memoryStoreName -> {}
- ``add_memories``: memoryStoreName, scope; messages or text, metadata, sync, timestamp, idempotencyKey
  -> requestId, pending, messageIds, memories
- ``search_memories``: memoryStoreName, scope, query; topK, enableRerank, memoryTypes, metadata, startTime, endTime
  -> results (a list of {unit, score}), requestId, usage
- ``list_memories``: memoryStoreName, scope; limit, nextToken, memoryTypes, metadata, startTime, endTime
  -> memories, nextToken
- ``get_memory``, ``update_memory`` (text, metadata), ``delete_memory``: memoryStoreName, memoryId, scope
  -> memory ({} for delete)
- ``list_memory_store_messages``: memoryStoreName, scope; limit, nextToken -> messages, nextToken
- ``list_memory_store_requests``: memoryStoreName, scope; operation, limit, nextToken -> requests, nextToken

Differences from our own API, as the seed defines them: ``add_memories`` defaults to ``sync=False`` (store the
messages, extract in the background); in ``search_memories`` and ``list_memories``, ``metadata`` is an exact-match
filter (our ``filters``). ``nextToken`` is our page cursor. Errors are memory_plugin's own exception classes.

The translation is pure (:func:`to_call` and each operation's response function); the two classes only call the
client, so the sync and async paths cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..aio import AsyncMemoryClient
from ..client import MemoryClient
from ..errors import InvalidArgumentError, MemoryStoreNotFoundError
from ..keys import Secret
from ..models import AddResult, Memory, MemoryStoreInfo, Page, SearchResults
from ..scope import Scope
from .fields import read_request, seed_field_names

Response = dict[str, Any]
ClientT = TypeVar("ClientT", MemoryClient, AsyncMemoryClient)

# The seed's request fields -> our keyword arguments (operations may override one, see ``metadata``).
_FIELDS = {
    "memoryStoreName": "name",
    "description": "description",
    "auditRetentionDays": "audit_retention_days",
    "historyRetentionDays": "history_retention_days",
    "scope": "scope",
    "messages": "messages",
    "text": "text",
    "metadata": "metadata",
    "sync": "sync",
    "timestamp": "timestamp",
    "idempotencyKey": "idempotency_key",
    "query": "query",
    "topK": "top_k",
    "enableRerank": "rerank",
    "memoryTypes": "memory_types",
    "startTime": "start_time",
    "endTime": "end_time",
    "limit": "limit",
    "nextToken": "cursor",
    "memoryId": "memory_id",
    "operation": "operation",
}
_SCOPE_FIELDS = {"appId": "app_id", "tenantId": "tenant_id", "agentId": "agent_id", "runId": "run_id"}
_READ_FILTERS = ("memoryTypes", "metadata", "startTime", "endTime")


@dataclass(frozen=True)
class Call:
    """One call on our API: ``method`` of the store ``store`` (``on_store``) or of the client, with arguments."""

    method: str
    store: str | None
    on_store: bool
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Operation:
    """How one seed method maps onto our API: fields, the method it calls, and how its result is answered."""

    name: str  # the seed's API name, e.g. "SearchMemories"
    method: str  # ours: a MemoryStore method if ``on_store``, else a MemoryClient method
    on_store: bool
    required: tuple[str, ...]
    optional: tuple[str, ...]
    respond: Callable[[Any, Call], Response]
    positional: tuple[str, ...] = ()  # required fields passed positionally (after the scope, for store methods)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # the seed's defaults where they differ from ours
    overrides: Mapping[str, str] = field(default_factory=dict)  # seed field -> our argument, for this operation

    @property
    def fields(self) -> dict[str, str]:
        return {**_FIELDS, **self.overrides}

    @property
    def error_names(self) -> dict[str, str]:
        """Our field names -> the seed's, to name fields in errors as the caller wrote them."""
        names = {ours: seed for seed, ours in self.fields.items() if seed in (*self.required, *self.optional)}
        for seed, ours in _SCOPE_FIELDS.items():
            names[ours] = names[f"scope.{ours}"] = f"scope.{seed}"
        return names


def to_call(operation: Operation, request: object) -> Call:
    """The call on our API that serves ``request`` (a seed request dict); raises :class:`InvalidArgumentError`
    (field names in our spelling: run it inside ``seed_field_names(operation.error_names)``)."""
    given = read_request(request, operation.name, operation.required, operation.optional)
    fields = operation.fields
    store = given.get("memoryStoreName")
    args: list[Any] = [Scope.parse(given.pop("scope"))] if operation.on_store else []
    args += [given.pop(seed) for seed in operation.positional]
    given.pop("memoryStoreName", None)  # a store method is called on the store; a client method got it above
    kwargs = {fields[seed]: value for seed, value in {**operation.defaults, **given}.items()}
    return Call(operation.method, store, operation.on_store, tuple(args), kwargs)


# ---------------------------------------------------------------- our results -> the seed's response dicts


def memory_unit(memory: Memory) -> Response:
    """A memory as the seed's ``unit``: snake_case fields, times in ISO 8601, the scope as a dict."""
    return memory.model_dump(mode="json")


def store_response(info: MemoryStoreInfo) -> Response:
    return {
        "memoryStoreName": info.name,
        "description": info.description,
        "embedder": info.embedder,
        "dimension": info.dimension,
        "createdAt": info.created_at.isoformat(),
        "auditRetentionDays": info.audit_retention_days,
        "historyRetentionDays": info.history_retention_days,
    }


def _created(_: object, call: Call) -> Response:
    return {"memoryStoreName": call.store, "description": call.kwargs.get("description", "")}


def _found_store(stores: list[MemoryStoreInfo], call: Call) -> Response:
    for info in stores:
        if info.name == call.store:
            return store_response(info)
    raise MemoryStoreNotFoundError(f"no memory store named {call.store!r}; create it with create_memory_store")


def _stores(stores: list[MemoryStoreInfo], _: Call) -> Response:
    return {"memoryStores": [store_response(info) for info in stores]}


def _empty(_: object, __: Call) -> Response:
    return {}


def add_response(result: AddResult, _: Call | None = None) -> Response:
    return {
        "requestId": result.request_id,
        "pending": result.pending,
        "messageIds": list(result.message_ids),
        "memories": [memory_unit(m) for m in result.memories],
    }


def search_response(results: SearchResults, _: Call | None = None) -> Response:
    return {
        "results": [{"unit": memory_unit(hit.memory), "score": hit.score} for hit in results],
        "requestId": results.request_id,
        "usage": {"queryTokens": results.usage.query_tokens, "candidates": results.usage.candidates},
    }


def _page(key: str) -> Callable[[Page[Any], Call], Response]:
    def respond(page: Page[Any], _: Call) -> Response:
        return {key: [item.model_dump(mode="json") for item in page.items], "nextToken": page.next_cursor}

    return respond


def _memory(memory: Memory, _: Call) -> Response:
    return {"memory": memory_unit(memory)}


_KEYED = ("memoryStoreName", "memoryId", "scope")
_NAME = ("memoryStoreName",)
OPERATIONS: dict[str, Operation] = {
    "create_memory_store": Operation(
        "CreateMemoryStore", "create_memory_store", False, _NAME, ("description",), _created, positional=_NAME
    ),
    "get_memory_store": Operation("GetMemoryStore", "list_memory_stores", False, _NAME, (), _found_store),
    "list_memory_stores": Operation("ListMemoryStores", "list_memory_stores", False, (), (), _stores),
    "update_memory_store": Operation(
        "UpdateMemoryStore",
        "update_memory_store",
        False,
        _NAME,
        ("description", "auditRetentionDays", "historyRetentionDays"),
        lambda info, _: store_response(info),
        positional=_NAME,
    ),
    "delete_memory_store": Operation(
        "DeleteMemoryStore", "delete_memory_store", False, _NAME, (), _empty, positional=_NAME
    ),
    "add_memories": Operation(
        "AddMemories",
        "add",
        True,
        ("memoryStoreName", "scope"),
        ("messages", "text", "metadata", "sync", "timestamp", "idempotencyKey"),
        add_response,
        defaults={"sync": False},
    ),
    "search_memories": Operation(
        "SearchMemories",
        "search",
        True,
        ("memoryStoreName", "scope", "query"),
        ("topK", "enableRerank", *_READ_FILTERS),
        search_response,
        positional=("query",),
        overrides={"metadata": "filters"},
    ),
    "list_memories": Operation(
        "ListMemories",
        "list",
        True,
        ("memoryStoreName", "scope"),
        ("limit", "nextToken", *_READ_FILTERS),
        _page("memories"),
        overrides={"metadata": "filters"},
    ),
    "get_memory": Operation("GetMemory", "get", True, _KEYED, (), _memory, positional=("memoryId",)),
    "update_memory": Operation(
        "UpdateMemory", "update", True, _KEYED, ("text", "metadata"), _memory, positional=("memoryId",)
    ),
    "delete_memory": Operation("DeleteMemory", "delete", True, _KEYED, (), _empty, positional=("memoryId",)),
    "list_memory_store_messages": Operation(
        "ListMemoryStoreMessages",
        "messages",
        True,
        ("memoryStoreName", "scope"),
        ("limit", "nextToken"),
        _page("messages"),
    ),
    "list_memory_store_requests": Operation(
        "ListMemoryStoreRequests",
        "requests",
        True,
        ("memoryStoreName", "scope"),
        ("operation", "limit", "nextToken"),
        _page("requests"),
    ),
}


# ---------------------------------------------------------------- the clients


class _Connection(Generic[ClientT]):
    """How an OTS client reaches memory_plugin: a client it was given (kept open on close), or a remote client
    it builds on first use (closed on close)."""

    def __init__(self, build: Callable[[], ClientT], owned: bool, description: str) -> None:
        self._build: Callable[[], ClientT] = build
        self.owned = owned
        self.description = description
        self.built: ClientT | None = None

    def client(self) -> ClientT:
        if self.built is None:
            self.built = self._build()
        return self.built


def _key_part(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(name, "must be a non-empty string (`memory-plugin keys create` prints both)")
    return value


def _remote(
    factory: type[ClientT], endpoint: object, access_key_id: object, access_key_secret: object, instance_name: object
) -> _Connection[ClientT]:
    """A connection to a memory server, built on first use; validates the seed constructor's arguments now."""
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise InvalidArgumentError("endpoint", "must be the memory server's URL, e.g. http://127.0.0.1:8080")
    key_id = _key_part("access_key_id", access_key_id)
    secret = Secret(_key_part("access_key_secret", access_key_secret))  # kept out of every repr
    if not isinstance(instance_name, str):
        raise InvalidArgumentError("instance_name", f"must be a string, got {type(instance_name).__name__}")

    def build() -> ClientT:
        return factory(endpoint=endpoint, access_key_id=key_id, access_key_secret=secret.reveal())

    return _Connection(build, True, f"endpoint={endpoint!r}, access_key_id={key_id!r}")


class OTSClient:
    """The seed SDK's ``OTSClient`` (memory store methods) over a :class:`~memory_plugin.MemoryClient`.

    ``OTSClient(endpoint, access_key_id, access_key_secret, instance_name)`` talks to a memory server (one server
    is one instance: ``instance_name`` is kept but not needed); :meth:`over` wraps any client you have, e.g. an
    embedded one. Each method takes the seed's request dict and returns its response dict (see the module).

    Example:
        >>> client = OTSClient.over(MemoryClient(path="./agent-memory"))  # doctest: +SKIP
        >>> client.search_memories({"memoryStoreName": "agent_memory", "scope": {...}, "query": "coffee"})
    """

    _connection: _Connection[MemoryClient]

    def __init__(self, endpoint: str, access_key_id: str, access_key_secret: str, instance_name: str = "") -> None:
        self._connection = _remote(MemoryClient, endpoint, access_key_id, access_key_secret, instance_name)
        self.instance_name = instance_name

    @classmethod
    def over(cls, client: MemoryClient) -> OTSClient:
        """An OTSClient calling ``client`` (any object with MemoryClient's API); closing it leaves ``client`` open."""
        self = cls.__new__(cls)
        self._connection = _Connection(lambda: client, False, f"over={client!r}")
        self.instance_name = ""
        return self

    def _run(self, name: str, request: object) -> Response:
        operation = OPERATIONS[name]
        with seed_field_names(operation.error_names):
            call = to_call(operation, request)
            client = self._connection.client()
            target: Any = client.get_memory_store(call.store) if call.store and call.on_store else client
            return operation.respond(getattr(target, call.method)(*call.args, **call.kwargs), call)

    def create_memory_store(self, request: Mapping[str, Any]) -> Response:
        """CreateMemoryStore: ``{"memoryStoreName", "description"}``."""
        return self._run("create_memory_store", request)

    def get_memory_store(self, request: Mapping[str, Any]) -> Response:
        """GetMemoryStore: ``{"memoryStoreName"}``."""
        return self._run("get_memory_store", request)

    def list_memory_stores(self, request: Mapping[str, Any] | None = None) -> Response:
        """ListMemoryStores."""
        return self._run("list_memory_stores", request or {})

    def update_memory_store(self, request: Mapping[str, Any]) -> Response:
        """UpdateMemoryStore: ``{"memoryStoreName", "description", ...}``."""
        return self._run("update_memory_store", request)

    def delete_memory_store(self, request: Mapping[str, Any]) -> Response:
        """DeleteMemoryStore: ``{"memoryStoreName"}``; deletes everything the store holds."""
        return self._run("delete_memory_store", request)

    def add_memories(self, request: Mapping[str, Any]) -> Response:
        """AddMemories: ``messages`` or ``text`` into a concrete ``scope``; ``sync`` defaults to False."""
        return self._run("add_memories", request)

    def search_memories(self, request: Mapping[str, Any]) -> Response:
        """SearchMemories: ``query`` within ``scope`` (``*`` allowed); ``topK`` 1-50, ``enableRerank``."""
        return self._run("search_memories", request)

    def list_memories(self, request: Mapping[str, Any]) -> Response:
        """ListMemories: a page of ``limit`` memories; pass ``nextToken`` back for the next one."""
        return self._run("list_memories", request)

    def get_memory(self, request: Mapping[str, Any]) -> Response:
        """GetMemory: ``memoryId`` in a concrete ``scope``."""
        return self._run("get_memory", request)

    def update_memory(self, request: Mapping[str, Any]) -> Response:
        """UpdateMemory: new ``text`` and/or ``metadata`` for ``memoryId`` in a concrete ``scope``."""
        return self._run("update_memory", request)

    def delete_memory(self, request: Mapping[str, Any]) -> Response:
        """DeleteMemory: ``memoryId`` in a concrete ``scope``."""
        return self._run("delete_memory", request)

    def list_memory_store_messages(self, request: Mapping[str, Any]) -> Response:
        """ListMemoryStoreMessages: the raw messages of a concrete ``scope``, oldest first."""
        return self._run("list_memory_store_messages", request)

    def list_memory_store_requests(self, request: Mapping[str, Any]) -> Response:
        """ListMemoryStoreRequests: the audit of ``scope``, newest first, optionally of one ``operation``."""
        return self._run("list_memory_store_requests", request)

    def close(self) -> None:
        """Close the remote client this built; a client given to :meth:`over` stays open."""
        if self._connection.owned and self._connection.built is not None:
            self._connection.built.close()

    def __enter__(self) -> OTSClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._connection.description})"


class AsyncOTSClient:
    """The seed SDK's ``AsyncOTSClient``: :class:`OTSClient`'s methods, awaited, over an
    :class:`~memory_plugin.AsyncMemoryClient`; usable as ``async with``."""

    _connection: _Connection[AsyncMemoryClient]

    def __init__(self, endpoint: str, access_key_id: str, access_key_secret: str, instance_name: str = "") -> None:
        self._connection = _remote(AsyncMemoryClient, endpoint, access_key_id, access_key_secret, instance_name)
        self.instance_name = instance_name

    @classmethod
    def over(cls, client: AsyncMemoryClient) -> AsyncOTSClient:
        """An AsyncOTSClient calling ``client``; closing it leaves ``client`` open."""
        self = cls.__new__(cls)
        self._connection = _Connection(lambda: client, False, f"over={client!r}")
        self.instance_name = ""
        return self

    async def _run(self, name: str, request: object) -> Response:
        operation = OPERATIONS[name]
        with seed_field_names(operation.error_names):
            call = to_call(operation, request)
            client = self._connection.client()
            target: Any = await client.get_memory_store(call.store) if call.store and call.on_store else client
            return operation.respond(await getattr(target, call.method)(*call.args, **call.kwargs), call)

    async def create_memory_store(self, request: Mapping[str, Any]) -> Response:
        return await self._run("create_memory_store", request)

    async def get_memory_store(self, request: Mapping[str, Any]) -> Response:
        return await self._run("get_memory_store", request)

    async def list_memory_stores(self, request: Mapping[str, Any] | None = None) -> Response:
        return await self._run("list_memory_stores", request or {})

    async def update_memory_store(self, request: Mapping[str, Any]) -> Response:
        return await self._run("update_memory_store", request)

    async def delete_memory_store(self, request: Mapping[str, Any]) -> Response:
        return await self._run("delete_memory_store", request)

    async def add_memories(self, request: Mapping[str, Any]) -> Response:
        return await self._run("add_memories", request)

    async def search_memories(self, request: Mapping[str, Any]) -> Response:
        return await self._run("search_memories", request)

    async def list_memories(self, request: Mapping[str, Any]) -> Response:
        return await self._run("list_memories", request)

    async def get_memory(self, request: Mapping[str, Any]) -> Response:
        return await self._run("get_memory", request)

    async def update_memory(self, request: Mapping[str, Any]) -> Response:
        return await self._run("update_memory", request)

    async def delete_memory(self, request: Mapping[str, Any]) -> Response:
        return await self._run("delete_memory", request)

    async def list_memory_store_messages(self, request: Mapping[str, Any]) -> Response:
        return await self._run("list_memory_store_messages", request)

    async def list_memory_store_requests(self, request: Mapping[str, Any]) -> Response:
        return await self._run("list_memory_store_requests", request)

    async def close(self) -> None:
        """Close the remote client this built; a client given to :meth:`over` stays open."""
        if self._connection.owned and self._connection.built is not None:
            await self._connection.built.close()

    async def __aenter__(self) -> AsyncOTSClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._connection.description})"

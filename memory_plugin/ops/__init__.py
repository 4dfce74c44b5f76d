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

from typing import Any

from .base import (
    OPERATION_NAMES,
    Codec,
    MemoryOperation,
    Operation,
    ReadOperation,
    StoreOperation,
    raw_json,
    require_one_tenant,
)
from .insights import ActivityStats, ListScopes, StoreStats
from .memories import (
    Add,
    DeleteAll,
    DeleteMemory,
    DeleteMessages,
    Flush,
    GetHistory,
    GetMemory,
    ListExtractionJobs,
    ListMemories,
    ListMessages,
    ListRequests,
    PruneStore,
    RetryExtraction,
    Search,
    UpdateMemory,
)
from .stores import STORE_SETTINGS, CreateStore, DeleteStore, GetStore, ListStores, NamedStoreOperation, UpdateStore

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
    ListScopes,
    StoreStats,
    ActivityStats,
)
BY_ROUTE: dict[str, type[Operation[Any]]] = {op.ROUTE: op for op in (*STORE_LIFECYCLE, *STORE_OPERATIONS)}


__all__ = [
    "ActivityStats",
    "BY_ROUTE",
    "ListScopes",
    "StoreStats",
    "OPERATION_NAMES",
    "STORE_LIFECYCLE",
    "STORE_OPERATIONS",
    "STORE_SETTINGS",
    "Add",
    "Codec",
    "CreateStore",
    "DeleteAll",
    "DeleteMemory",
    "DeleteMessages",
    "DeleteStore",
    "Flush",
    "GetHistory",
    "GetMemory",
    "GetStore",
    "ListExtractionJobs",
    "ListMemories",
    "ListMessages",
    "ListRequests",
    "ListStores",
    "MemoryOperation",
    "NamedStoreOperation",
    "Operation",
    "PruneStore",
    "ReadOperation",
    "RetryExtraction",
    "Search",
    "StoreOperation",
    "UpdateMemory",
    "UpdateStore",
    "raw_json",
    "require_one_tenant",
]

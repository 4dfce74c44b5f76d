"""How each operation travels over HTTP: its method and path, and which raw arguments go in the path and which in
the JSON body. The memory server builds its routes from this table and the remote client its requests, so the two
cannot disagree.

- Store lifecycle: ``GET /v1/stores``, ``POST /v1/stores``, ``GET|PATCH|DELETE /v1/stores/{name}``.
- Every operation on a store: ``POST /v1/stores/{store}/{route}`` with the operation's other arguments as a JSON
  object, e.g. ``POST /v1/stores/agent_memory/search`` with ``{"scope": ..., "query": "...", "top_k": 5}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import InvalidArgumentError
from .base import Operation, StoreOperation, raw_json
from .stores import CreateStore, DeleteStore, GetStore, ListStores, UpdateStore

PREFIX = "/v1"


@dataclass(frozen=True)
class HttpRoute:
    """``method`` and ``path`` (with ``{name}`` or ``{store}`` for the path parameter), the raw argument the path
    parameter carries, and the raw argument the whole JSON body is (``None``: the body holds the other arguments)."""

    method: str
    path: str
    parameter: str | None = None
    body_argument: str | None = None

    @property
    def has_body(self) -> bool:
        return self.method in ("POST", "PATCH")


LIFECYCLE_ROUTES: dict[type[Operation[Any]], HttpRoute] = {
    ListStores: HttpRoute("GET", f"{PREFIX}/stores"),
    CreateStore: HttpRoute("POST", f"{PREFIX}/stores"),
    GetStore: HttpRoute("GET", f"{PREFIX}/stores/{{name}}", "name"),
    UpdateStore: HttpRoute("PATCH", f"{PREFIX}/stores/{{name}}", "name", body_argument="changes"),
    DeleteStore: HttpRoute("DELETE", f"{PREFIX}/stores/{{name}}", "name"),
}


def route_of(op: type[Operation[Any]]) -> HttpRoute:
    """The HTTP shape of an operation."""
    if op in LIFECYCLE_ROUTES:
        return LIFECYCLE_ROUTES[op]
    if issubclass(op, StoreOperation):
        return HttpRoute("POST", f"{PREFIX}/stores/{{store}}/{op.ROUTE}", "store")
    raise TypeError(f"{op.__name__} has no HTTP route")


def request_for(op: type[Operation[Any]], raw: Mapping[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """The client side: method, path and JSON body (``None`` for none) that carry ``raw`` to a memory server.

    Raises:
        InvalidArgumentError: an argument holds something JSON cannot carry.
    """
    route = route_of(op)
    arguments = dict(raw)
    path = route.path
    if route.parameter is not None:
        value = arguments.pop(route.parameter, "")
        path = path.replace("{" + route.parameter + "}", quote(str(value), safe=""))
    if not route.has_body:
        return route.method, path, None
    if route.body_argument is not None:
        return (
            route.method,
            path,
            raw_json({route.body_argument: arguments.get(route.body_argument) or {}})[route.body_argument],
        )
    return route.method, path, raw_json(arguments)


def raw_from(op: type[Operation[Any]], parameter: str | None, body: object) -> dict[str, Any]:
    """The server side: the raw arguments of ``op`` from its path parameter and its JSON body (the service parses
    and validates them). A body that is not a JSON object is passed on as is, to be refused by name."""
    route = route_of(op)
    if route.body_argument is not None:
        raw: dict[str, Any] = {route.body_argument: body}
    elif isinstance(body, Mapping):
        raw = {str(k): v for k, v in body.items() if k != route.parameter}  # the path says which store
    elif body is None:
        raw = {}
    else:
        raise InvalidArgumentError("body", f"must be a JSON object, got {type(body).__name__}")
    if route.parameter is not None:
        raw[route.parameter] = parameter
    return raw

"""The memory server's HTTP API (FastAPI): one route per operation, built from :mod:`memory_plugin.ops.http`.

Every ``/v1`` and ``/api`` request, in this order: the body is capped (413), the access key is verified (signed
request or Bearer, 401), the key's rate is checked (429), the scope is authorised and perhaps narrowed to the key's
tenants (403), then the operation runs on a worker thread (the event loop never waits for the model or SQLite),
bounded by the request timeout (503). Errors are ``{"code", "message", "field", "request_id"}`` with the status
each error class declares; an unexpected error is a bare 500 whose details stay in the server's log.
``/healthz`` (alive), ``/readyz`` (the storage answers) and ``/metrics`` (Prometheus) need no key.
``GET /v1/whoami`` tells a caller its own key's binding (the console shapes its views by it); ``/console`` serves the
web console (:mod:`.console`), which calls this same API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..clock import new_id
from ..errors import InvalidArgumentError, MemoryPluginError, RateLimitedError
from ..keys import CredentialSource, KeyRecord
from ..models import ExtractionJob, Page, RequestRecord
from ..ops import (
    STORE_LIFECYCLE,
    STORE_OPERATIONS,
    ListExtractionJobs,
    ListRequests,
    Operation,
    Search,
)
from ..ops.http import PREFIX, raw_from, route_of
from ..scope import Scope
from ..service import MemoryService
from ..signing import ReplayCache, verify
from .authorization import OperationKind, authorize
from .console import mount_console
from .limits import (
    DEFAULT_BURST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_RATE,
    RateLimiter,
    check_body_size,
    check_content_length,
)
from .metrics import Metrics
from .openapi import SECURITY_SCHEMES, STORE_NAME_SCHEMA, operation_responses, request_schema, viking_openapi
from .vikingdb import ROUTE as VIKING_ROUTE
from .vikingdb import error_response, parse_search, search_response

log = logging.getLogger("memory_plugin.server")
KIND: dict[str, OperationKind] = {
    "CreateStore": "store-admin",
    "UpdateStore": "store-admin",
    "DeleteStore": "store-admin",
    "PruneStore": "store-admin",
    "RetryExtraction": "store-admin",
    "Add": "write",
    "UpdateMemory": "write",
    "DeleteMemory": "write",
    "DeleteMessages": "write",
    "DeleteAll": "write",
}


@dataclass(frozen=True)
class ServerLimits:
    """Abuse limits: the largest request body, each key's request rate and burst, how long one request may run."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    requests_per_second: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    request_timeout_seconds: float = 120.0


@dataclass
class Caller:
    key: KeyRecord
    request_id: str


class RequestFailed(Exception):
    """Carries a ready error response out of the request pipeline."""

    def __init__(self, response: Response) -> None:
        self.response = response


def error_body(error: MemoryPluginError, request_id: str) -> dict[str, Any]:
    """The JSON an error is answered with."""
    return {
        "code": type(error).__name__,
        "message": str(error),
        "field": getattr(error, "field", None),
        "request_id": error.request_id or request_id,
    }


class MemoryServer:
    """The state one app serves from: the service, the key store, the limits, the replay cache and the metrics."""

    def __init__(self, service: MemoryService, keys: CredentialSource, limits: ServerLimits) -> None:
        self.service = service
        self.keys = keys
        self.limits = limits
        self.replay = ReplayCache()
        self.rate = RateLimiter(rate=limits.requests_per_second, burst=limits.burst)
        self.metrics = Metrics()

    # ---- the request pipeline ----------------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        """The body, refused (413) from its Content-Length, or as soon as the bytes received pass the cap: a body
        sent without a length (chunked) is never read whole before it is counted."""
        limit = self.limits.max_body_bytes
        check_content_length(request.headers.get("content-length"), limit)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            check_body_size(size, limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _authenticate(self, request: Request, body: bytes) -> KeyRecord:
        key = verify(
            request.method,
            request.scope.get("raw_path") or request.url.path.encode(),
            request.scope.get("query_string", b""),
            request.headers.items(),
            body,
            keys=self.keys,
            now=datetime.now(timezone.utc),
            replay=self.replay,
        )
        self.rate.require(key.key_id)
        return key

    @staticmethod
    def _json(body: bytes) -> object:
        """The body's JSON; anything else (not UTF-8, not JSON, nested past the parser's depth, an integer of
        thousands of digits, a lone surrogate escape such as ``\\ud800``) is refused naming ``body``."""
        if not body:
            return None
        try:
            data = json.loads(body)
        except RecursionError:
            raise InvalidArgumentError("body", "must be JSON nested less deeply") from None
        except ValueError as e:  # UnicodeDecodeError, JSONDecodeError, an int over Python's digit limit
            raise InvalidArgumentError("body", f"must be JSON: {e}") from None
        if not _valid_text(data):
            raise InvalidArgumentError("body", "must be valid Unicode: a lone surrogate escape such as \\ud800 is not")
        return data

    async def _run(self, work: Callable[[], Any]) -> Any:
        """``work`` on a worker thread, within the request timeout (the thread finishes what it started)."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(work), self.limits.request_timeout_seconds)
        except TimeoutError:
            raise TimeoutRefusal(self.limits.request_timeout_seconds) from None

    async def respond(
        self, request: Request, name: str, handle: Callable[[Caller, object], Awaitable[Response]]
    ) -> Response:
        """Run one authenticated request and account for it; every failure becomes its error response."""
        started = time.perf_counter()
        request_id = new_id("req")
        try:
            body = await self._body(request)
            key = self._authenticate(request, body)
            response = await handle(Caller(key, request_id), self._json(body))
        except RequestFailed as e:
            response = e.response
        except MemoryPluginError as e:
            response = JSONResponse(error_body(e, request_id), status_code=e.http_status)
            if isinstance(e, RateLimitedError):
                response.headers["Retry-After"] = str(e.retry_after)
        except Exception:  # a bug: the details stay in the log, the caller gets an id to quote
            log.exception("memory_plugin server: request %s failed", request_id)
            response = JSONResponse(
                {"code": "InternalError", "message": "internal error", "field": None, "request_id": request_id},
                status_code=500,
            )
        response.headers["X-Request-Id"] = request_id
        self.metrics.observe(name, response.status_code, time.perf_counter() - started)
        return response

    # ---- operations --------------------------------------------------------------------------------------------

    def operation_handler(self, op: type[Operation[Any]]) -> Callable[[Request], Awaitable[Response]]:
        route = route_of(op)
        kind: OperationKind = KIND.get(op.__name__, "read")

        async def endpoint(request: Request) -> Response:
            parameter = None if route.parameter is None else request.path_params.get(route.parameter)

            async def handle(caller: Caller, body: object) -> Response:
                raw = self._authorised(caller.key, kind, raw_from(op, parameter, body))
                result = await self._run(lambda: self.service.execute(op, raw, caller.key.key_id, caller.request_id))
                if op is ListExtractionJobs:
                    result = self._visible_jobs(caller.key, result)
                elif op is ListRequests:
                    result = self._visible_requests(caller.key, result)
                return JSONResponse(op.RESULT.encode(result))

            return await self.respond(request, op.NAME or op.__name__, handle)

        return endpoint

    @staticmethod
    def _authorised(key: KeyRecord, kind: OperationKind, raw: dict[str, Any]) -> dict[str, Any]:
        """``raw`` with its scope authorised for ``key`` (narrowed to the key's tenants where allowed). A scope that
        does not parse is left for the service to refuse, and audit: nothing is read with it."""
        if "scope" not in raw:
            authorize(key, kind)
            return raw
        try:
            scope = Scope.parse(raw["scope"])
        except MemoryPluginError:
            authorize(key, kind)
            return raw
        return {**raw, "scope": authorize(key, kind, scope)}

    @staticmethod
    def _visible_jobs(key: KeyRecord, jobs: list[ExtractionJob]) -> list[ExtractionJob]:
        """A store's jobs are of every app and tenant: a key sees only those of its app and tenants."""
        return [
            job
            for job in jobs
            if job.scope.app_id == key.app_id and (key.tenant_ids is None or job.scope.tenant_id in key.tenant_ids)
        ]

    @staticmethod
    def _visible_requests(key: KeyRecord, page: Page[RequestRecord]) -> Page[RequestRecord]:
        """The audit's records without a scope (store-level calls, calls whose scope was unusable) are listed
        with every scope; a key that is not an admin key sees only its own among them, never another app's or
        tenant's calls. (A page may then hold fewer items than asked for; its cursor still leads on.)"""
        if key.admin:
            return page
        items = [record for record in page.items if record.scope is not None or record.key_id == key.key_id]
        return page if len(items) == len(page.items) else Page(items=items, next_cursor=page.next_cursor)

    async def whoami(self, request: Request) -> Response:
        """The calling key's binding, never its secret: what the console needs to shape its views."""

        async def handle(caller: Caller, body: object) -> Response:
            key = caller.key
            tenants = None if key.tenant_ids is None else sorted(key.tenant_ids)
            return JSONResponse({"key_id": key.key_id, "app_id": key.app_id, "tenant_ids": tenants,
                                 "read_only": key.read_only, "admin": key.admin})  # fmt: skip

        return await self.respond(request, "WhoAmI", handle)

    # ---- the VikingDB search -------------------------------------------------------------------------------------

    async def viking_search(self, request: Request) -> Response:
        async def handle(caller: Caller, body: object) -> Response:
            try:
                search = parse_search(body, caller.key.app_id)
            except InvalidArgumentError as e:
                raise RequestFailed(
                    JSONResponse(error_response(400, str(e), caller.request_id, e.field), 400)
                ) from None
            search = dataclasses.replace(search, scope=authorize(caller.key, "read", search.scope))
            raw = {"store": search.collection_name, "scope": search.scope, "query": search.query,
                   **search.search_kwargs()}  # fmt: skip
            results = await self._run(lambda: self.service.execute(Search, raw, caller.key.key_id, caller.request_id))
            return JSONResponse(search_response(search, results))

        response = await self.respond(request, "VikingSearch", handle)
        return _viking_error(response) if response.status_code >= 400 else response


def _valid_text(data: object) -> bool:
    """True if every string (and key) in JSON ``data`` is valid Unicode: encodable as UTF-8, so it can be stored
    and answered. A JSON ``\\ud800`` escape decodes to a lone surrogate, which is not."""
    pending = [data]
    while pending:  # iterative: the parser has already bounded the depth, not the breadth
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _viking_error(response: Response) -> Response:
    """Our error body in VikingDB's shape (``code``, ``message``, ``request_id``), keeping the HTTP status."""
    body = json.loads(bytes(response.body))
    if isinstance(body.get("code"), int):  # refused by the VikingDB parser: in its shape already
        return response
    shaped = error_response(response.status_code, body.get("message", ""), body.get("request_id"), body.get("field"))
    shaped_response = JSONResponse(shaped, status_code=response.status_code)
    for name in ("Retry-After", "X-Request-Id"):
        if name in response.headers:
            shaped_response.headers[name] = response.headers[name]
    return shaped_response


# What the framework answers before any route runs (no route for the path, or not for the method), as our codes.
_FRAMEWORK_CODES = {404: "RouteNotFound", 405: "MethodNotAllowed"}


async def _http_error(request: Request, error: Exception) -> Response:
    """The framework's own refusals (an unknown path, a method a route does not take) in our error shape."""
    assert isinstance(error, StarletteHTTPException)
    request_id = new_id("req")
    message = (
        f"no route {request.method} {request.url.path[:200]}; the routes are in /openapi.json"
        if error.status_code in _FRAMEWORK_CODES
        else str(error.detail)
    )
    body = {"code": _FRAMEWORK_CODES.get(error.status_code, "HTTPError"), "message": message, "field": None,
            "request_id": request_id}  # fmt: skip
    response = JSONResponse(body, status_code=error.status_code, headers=dict(error.headers or {}))
    response.headers["X-Request-Id"] = request_id
    return response


class TimeoutRefusal(MemoryPluginError):
    """The operation did not finish within the server's request timeout (it may still complete)."""

    http_status = 503

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the operation did not finish within {seconds:g} s; it may still complete (retry an add with the same "
            "idempotency_key to be sure it is applied once)"
        )


def _document_security(app: FastAPI) -> None:
    """The OpenAPI document names the two ways to authenticate, required by every /v1 and /api route."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            document["security"] = [{name: []} for name in SECURITY_SCHEMES]
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    service: MemoryService, keys: CredentialSource, limits: ServerLimits | None = None, console: bool = True
) -> FastAPI:
    """The memory server's ASGI app over ``service``, with the web console at ``/console`` unless ``console`` is
    false; closing the app (its shutdown) closes the service."""
    server = MemoryServer(service, keys, limits or ServerLimits())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        await asyncio.to_thread(service.close)  # after uvicorn drained the requests in flight

    app = FastAPI(
        title="memory-plugin",
        version=__version__,
        description="Long-term and short-term memory for LLM agents: the memory server's API.",
        lifespan=lifespan,
    )
    app.state.server = server
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for op in (*STORE_LIFECYCLE, *STORE_OPERATIONS):
        route = route_of(op)
        extra: dict[str, Any] = {"responses": operation_responses(op)}
        if route.parameter is not None:
            extra["parameters"] = [
                {"name": route.parameter, "in": "path", "required": True, "schema": STORE_NAME_SCHEMA}
            ]
        if route.has_body:
            extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema(op)}}}
        app.add_api_route(
            route.path,
            server.operation_handler(op),
            methods=[route.method],
            name=op.__name__,
            summary=(op.__doc__ or op.__name__).strip().split("\n")[0],
            openapi_extra=extra,
        )
    app.add_api_route(VIKING_ROUTE, server.viking_search, methods=["POST"], name="VikingSearch",
                      summary="VikingDB memory search (the seed's request and response shapes)",
                      openapi_extra=viking_openapi())  # fmt: skip
    app.add_api_route(f"{PREFIX}/whoami", server.whoami, methods=["GET"], name="WhoAmI",
                      summary="The calling access key's binding: key id, app, tenants, read-only, admin")  # fmt: skip
    _document_security(app)
    if console:
        mount_console(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        try:
            await asyncio.wait_for(asyncio.to_thread(service.check_ready), 5)
        except (MemoryPluginError, TimeoutError) as e:
            return JSONResponse({"status": "unavailable", "reason": str(e) or "timed out"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        pending = await asyncio.to_thread(service.unfinished_jobs)
        return PlainTextResponse(server.metrics.render(pending), media_type="text/plain; version=0.0.4")

    return app

"""The remote transports: a memory server reached over HTTP with an access key, behind the same client API.

Each call is one request (:mod:`memory_plugin.ops.http`), signed with the key (HMAC-SHA256, see
:mod:`memory_plugin.signing`) over a pooled connection. The server's errors come back as the same exception
classes. Calls that cannot change anything twice are retried on a lost connection, a 503 or a 429 (after its
``Retry-After``): reads, and an ``add`` with an ``idempotency_key``; other writes are never retried (a write whose
answer was lost may have been applied).

Needs ``httpx`` (``pip install "memory-plugin[remote]"``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import ConnectionFailedError, InvalidArgumentError, MemoryPluginError, RateLimitedError, error_class
from .extraction import Extractor
from .keys import Secret
from .models import MemoryStoreInfo
from .ops import Add, CreateStore, Flush, GetStore, Operation
from .ops.http import request_for
from .signing import sign
from .transport import ENDPOINT_ENV

R = TypeVar("R")
KEY_ID_ENV = "MEMORY_PLUGIN_ACCESS_KEY_ID"
SECRET_ENV = "MEMORY_PLUGIN_ACCESS_KEY_SECRET"
RETRIES = 3
BACKOFF_SECONDS = 0.2
MAX_RETRY_AFTER_SECONDS = 30.0
UNICODE_PROBLEM = "must be valid Unicode (a lone surrogate such as \\ud800 is not)"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as e:
        raise ImportError('the remote client needs httpx: pip install "memory-plugin[remote]"') from e
    return httpx


@dataclass(frozen=True)
class Endpoint:
    """Where a memory server is and the access key to reach it with (``secret`` never shows in a ``repr``)."""

    url: str
    key_id: str
    secret: Secret
    timeout: float = 60.0

    @classmethod
    def of(cls, url: str | None, key_id: str | None, secret: str | None, timeout: float = 60.0) -> Endpoint:
        """From arguments, else ``$MEMORY_PLUGIN_ENDPOINT``, ``$MEMORY_PLUGIN_ACCESS_KEY_ID`` and
        ``$MEMORY_PLUGIN_ACCESS_KEY_SECRET``.

        Raises:
            InvalidArgumentError: the URL is not http(s), or a key id or secret is missing.
        """
        url = url or os.environ.get(ENDPOINT_ENV)
        key_id = key_id or os.environ.get(KEY_ID_ENV)
        secret = secret or os.environ.get(SECRET_ENV)
        parts = urlsplit(url or "")
        if url is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise InvalidArgumentError(
                "endpoint", f"must be an http(s) URL such as http://127.0.0.1:8080, got {url!r:.80}"
            )
        if not key_id:
            raise InvalidArgumentError("access_key_id", f"is required with an endpoint (or set ${KEY_ID_ENV})")
        if not secret:
            raise InvalidArgumentError("access_key_secret", f"is required with an endpoint (or set ${SECRET_ENV})")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise InvalidArgumentError("timeout", "must be a number of seconds > 0")
        return cls(url.rstrip("/"), key_id, Secret(secret), float(timeout))

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@dataclass(frozen=True)
class Prepared:
    """One call as an HTTP request, ready to be signed (afresh for every attempt) and sent."""

    method: str
    url: str
    path: str
    content: bytes
    retryable: bool
    timeout: float | None

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        headers = {"Host": endpoint.host, "Accept": "application/json"}
        if self.content:
            headers["Content-Type"] = "application/json"
        now = datetime.now(timezone.utc)
        return headers | sign(self.method, self.path, "", headers, self.content, endpoint.key_id, endpoint.secret, now)


def prepare(endpoint: Endpoint, op: type[Operation[Any]], raw: Mapping[str, Any]) -> Prepared:
    method, path, body = request_for(op, raw)
    url = endpoint.url + path
    retryable = not op.WRITES or (op is Add and raw.get("idempotency_key") is not None)
    timeout: float | None = endpoint.timeout
    if op is Flush:  # waits as long as it was asked to, and then answers
        wait = raw.get("timeout")
        timeout = None if wait is None else endpoint.timeout + float(wait)
    return Prepared(method, url, urlsplit(url).path, _content(body), retryable, timeout)


def _content(body: Any) -> bytes:
    """The JSON body's bytes; text that is not valid Unicode (a lone surrogate) is refused naming the argument, as
    the embedded client refuses it, instead of failing to encode."""
    if body is None:
        return b""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        for name, value in body.items() if isinstance(body, dict) else [("body", body)]:
            try:
                json.dumps(value, ensure_ascii=False).encode()
            except UnicodeEncodeError:
                raise InvalidArgumentError(name, UNICODE_PROBLEM) from None
        raise


def error_from(status: int, body: bytes, headers: Mapping[str, str]) -> MemoryPluginError:
    """The exception a server's error answer stands for: the same class, message, field and request id."""
    try:
        data = json.loads(body)
        code, message = str(data["code"]), str(data["message"])
        field, request_id = data.get("field"), data.get("request_id")
    except (ValueError, KeyError, TypeError):
        return ConnectionFailedError(f"the memory server answered HTTP {status} without an error body")
    kind = error_class(code)
    error = kind.__new__(kind)  # the classes' own constructors want their parts, not a message
    Exception.__init__(error, message)
    if isinstance(error, InvalidArgumentError):
        error.field = str(field or "")
        error.problem = message.removeprefix(f"{field}: ")
    if isinstance(error, RateLimitedError):
        error.retry_after = int(headers.get("retry-after", "1") or 1)
    error.request_id = request_id
    return error


def _delay(attempt: int, response: Any) -> float:
    if response is not None and response.status_code == 429:
        try:
            return min(MAX_RETRY_AFTER_SECONDS, float(str(response.headers.get("retry-after", "1"))))
        except ValueError:
            return 1.0
    return BACKOFF_SECONDS * 2.0**attempt * (0.5 + random.random())


def _result(op: type[Operation[R]], response: Any) -> R:
    if response.status_code >= 400:
        raise error_from(response.status_code, response.content, response.headers)
    decoded: R = op.RESULT.decode(response.json())
    return decoded


def _local_only(embedder: object, extractor: Extractor | None) -> None:
    for name, value in (("embedder", embedder), ("extractor", extractor)):
        if value is not None:
            raise InvalidArgumentError(
                name, "a remote client uses the memory server's embedder and extractor: set them in its --config"
            )


def _retry_now(prepared: Prepared, attempt: int, response: Any) -> bool:
    return prepared.retryable and attempt < RETRIES and (response is None or response.status_code in (429, 503))


class HttpTransport:
    """Blocking calls to a memory server (an ``httpx.Client`` with pooled connections)."""

    def __init__(self, endpoint: Endpoint) -> None:
        httpx = _httpx()
        self.endpoint = endpoint
        self._errors = httpx.TransportError
        self._http = httpx.Client(timeout=httpx.Timeout(endpoint.timeout, connect=10.0))

    @property
    def location(self) -> str:
        return self.endpoint.url

    def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R:
        prepared = prepare(self.endpoint, op, raw)
        for attempt in range(RETRIES + 1):
            response = None
            try:
                response = self._http.request(
                    prepared.method, prepared.url, content=prepared.content,
                    headers=prepared.headers(self.endpoint), timeout=prepared.timeout,
                )  # fmt: skip
            except self._errors as e:
                if not _retry_now(prepared, attempt, None):
                    raise ConnectionFailedError(f"memory server at {self.location}: {type(e).__name__}: {e}") from e
            if response is not None and not _retry_now(prepared, attempt, response):
                return _result(op, response)
            time.sleep(_delay(attempt, response))
        raise AssertionError("unreachable")

    def create_store(self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        _local_only(embedder, extractor)
        return self.call(CreateStore, raw)

    def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        _local_only(embedder, extractor)
        return self.call(GetStore, {"name": name})

    def close(self) -> None:
        self._http.close()

    def twin(self) -> AsyncHttpTransport:
        return AsyncHttpTransport(self.endpoint)


class AsyncHttpTransport:
    """Awaitable calls to a memory server (an ``httpx.AsyncClient`` with pooled connections, one per event loop).

    A pooled connection belongs to the event loop that opened it: reused from another loop (a second
    ``asyncio.run``, a framework running each call on a loop of its own) it fails with "Event loop is closed".
    So each event loop that calls gets its own pool, dropped with the loop.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._errors = _httpx().TransportError
        self._pools: dict[asyncio.AbstractEventLoop, Any] = {}

    @property
    def _http(self) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            # The pools of closed loops cannot be closed any more (that needs their loop): let them go.
            self._pools = {other: p for other, p in self._pools.items() if not other.is_closed()}
            httpx = _httpx()
            pool = self._pools[loop] = httpx.AsyncClient(timeout=httpx.Timeout(self.endpoint.timeout, connect=10.0))
        return pool

    @property
    def location(self) -> str:
        return self.endpoint.url

    async def call(self, op: type[Operation[R]], raw: Mapping[str, Any]) -> R:
        prepared = prepare(self.endpoint, op, raw)
        for attempt in range(RETRIES + 1):
            response = None
            try:
                response = await self._http.request(
                    prepared.method, prepared.url, content=prepared.content,
                    headers=prepared.headers(self.endpoint), timeout=prepared.timeout,
                )  # fmt: skip
            except self._errors as e:
                if not _retry_now(prepared, attempt, None):
                    raise ConnectionFailedError(f"memory server at {self.location}: {type(e).__name__}: {e}") from e
            if response is not None and not _retry_now(prepared, attempt, response):
                return _result(op, response)
            await asyncio.sleep(_delay(attempt, response))
        raise AssertionError("unreachable")

    async def create_store(
        self, raw: Mapping[str, Any], embedder: object, extractor: Extractor | None
    ) -> MemoryStoreInfo:
        _local_only(embedder, extractor)
        return await self.call(CreateStore, raw)

    async def open_store(self, name: str, embedder: object, extractor: Extractor | None) -> MemoryStoreInfo:
        _local_only(embedder, extractor)
        return await self.call(GetStore, {"name": name})

    async def close(self) -> None:
        """Close the pool of the running loop; those of other loops went (or go) with their loops."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        self._pools.clear()
        if pool is not None:
            await pool.aclose()

    def twin(self) -> HttpTransport:
        return HttpTransport(self.endpoint)

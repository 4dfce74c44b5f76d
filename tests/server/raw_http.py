"""Raw HTTP calls to a memory server, as a client written in another language would make them: the request is
built by hand, signed with :func:`memory_plugin.signing.sign` (or sent with a Bearer token), and may be changed
after it was signed, to show what the server refuses.

Every answer is checked on the way back: an error is ``{"code", "message", "field", "request_id"}`` whose
``request_id`` is the ``X-Request-Id`` header, and no secret this module has seen appears in a body or a header.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import httpx

from memory_plugin.signing import sign

ERROR_FIELDS = {"code", "message", "field", "request_id"}
SECRETS: set[str] = set()  # every secret a test made; none may ever come back from the server


@dataclass(frozen=True)
class RawRequest:
    """One request exactly as it goes on the wire: ``path`` percent-encoded, ``query`` without ``?``."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def with_header(self, name: str, value: str) -> RawRequest:
        return replace(self, headers={**self.headers, name: value})


def body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, ensure_ascii=False).encode()


@dataclass
class Credentials:
    key_id: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        SECRETS.add(self.secret)

    @property
    def bearer(self) -> str:
        return f"Bearer {self.key_id}.{self.secret}"


class RawClient:
    """Hand-made requests to the server at ``url``, as ``credentials`` by default."""

    def __init__(self, url: str, credentials: Credentials) -> None:
        self.url = url
        self.credentials = credentials
        self.host = url.removeprefix("http://")
        self.http = httpx.Client(timeout=60)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, body: object = None, query: str = "") -> RawRequest:
        content = body_bytes(body)
        headers = {"Host": self.host}
        if content:
            headers["Content-Type"] = "application/json"
        return RawRequest(method, path, query, headers, content)

    def signed(self, raw: RawRequest, as_: Credentials | None = None, now: datetime | None = None) -> RawRequest:
        who = as_ or self.credentials
        signature = sign(
            raw.method, raw.path, raw.query, raw.headers, raw.body, who.key_id, who.secret,
            now or datetime.now(timezone.utc),
        )  # fmt: skip
        return replace(raw, headers={**raw.headers, **signature})

    def send(self, raw: RawRequest, content: bytes | Iterable[bytes] | None = None) -> httpx.Response:
        """Send ``raw`` byte for byte (``content`` replaces the body, e.g. with chunks sent without a length)."""
        url = httpx.URL(self.url).copy_with(raw_path=(raw.path + (f"?{raw.query}" if raw.query else "")).encode())
        response = self.http.request(
            raw.method, url, headers=raw.headers, content=raw.body if content is None else content
        )
        check_response(response)
        return response

    # ---- shortcuts ----

    def call(
        self, method: str, path: str, body: object = None, *, as_: Credentials | None = None, query: str = ""
    ) -> httpx.Response:
        """A correctly signed call."""
        return self.send(self.signed(self.request(method, path, body, query), as_))

    def bearer(self, method: str, path: str, body: object = None, *, as_: Credentials | None = None) -> httpx.Response:
        raw = self.request(method, path, body)
        return self.send(raw.with_header("Authorization", (as_ or self.credentials).bearer))

    def ok(self, method: str, path: str, body: object = None, *, as_: Credentials | None = None) -> Any:
        response = self.call(method, path, body, as_=as_)
        assert response.status_code == 200, response.text
        return response.json()


def check_response(response: httpx.Response) -> None:
    """What every answer must be: no secret anywhere, and an error in our one shape."""
    seen = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    leaked = [s for s in SECRETS if s in seen]
    assert not leaked, f"a secret came back in {response.request.method} {response.request.url}"
    if response.status_code >= 400 and not response.request.url.path.startswith("/api/"):
        body = response.json()
        assert set(body) == ERROR_FIELDS, body
        assert isinstance(body["code"], str) and isinstance(body["message"], str) and body["message"]
        assert body["field"] is None or isinstance(body["field"], str)
        assert body["request_id"] == response.headers["x-request-id"], body


def refused(response: httpx.Response, status: int, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is the error ``status`` (and ``code`` / ``field`` if given); returns its body."""
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def chunks(size: int, piece: int = 65536) -> Iterator[bytes]:
    """``size`` bytes of a JSON string in pieces, sent without a Content-Length (chunked)."""
    yield b'{"text": "'
    sent = 0
    while sent < size:
        n = min(piece, size - sent)
        yield b"x" * n
        sent += n
    yield b'"}'


Tamper = Callable[[RawRequest], RawRequest]

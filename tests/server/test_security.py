"""The memory server's security, through real HTTP: authentication (signatures, dates, replays, revoked keys),
authorisation (apps, tenants, read-only and admin keys), abuse limits, hostile input, the error shape, and no
secret in any answer or log line.

One server (real SQLite and Chroma in a temp folder, the fake embedder) serves the whole module; each test makes
the keys it needs. Requests are built and signed by hand (tests/server/raw_http.py), the way a client in another
language would, so a request can be changed after it was signed.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from memory_plugin.cli import main as cli
from memory_plugin.errors import ExtractionError, InvalidArgumentError
from memory_plugin.extraction import ExtractionInput, MemoryOperation, TurnExtractor
from memory_plugin.server.app import ServerLimits
from tests.conftest import make_fake_embedder
from tests.server.raw_http import SECRETS, Credentials, RawClient, RawRequest, chunks, refused
from tests.server_harness import RunningServer, running_server

STORE = "mem"
MAX_BODY = 256 * 1024
TENANTS = ("u1", "u2", "u3")


def route(name: str, store: str = STORE) -> str:
    return f"/v1/stores/{store}/{name}"


def scope(tenant: Any = "u1", app: str = "app-001", agent: Any = "assistant", run: Any = "s1") -> dict[str, Any]:
    return {"app_id": app, "tenant_id": tenant, "agent_id": agent, "run_id": run}


def everything(tenant: Any = "*", app: str = "app-001") -> dict[str, Any]:
    return scope(tenant, app, "*", "*")


class FailsWhenAsked:
    """One memory per turn, except that a message saying FAIL fails its extraction for good (a failed job)."""

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]:
        if any("FAIL" in message.content for message in request.messages):
            raise ExtractionError("the extractor was told to fail", retryable=False)
        return TurnExtractor().extract(request)


class Captured(logging.Handler):
    """Every log line of the server (its own, uvicorn's access and error logs), formatted, tracebacks included."""

    LOGGERS = ("", "memory_plugin", "uvicorn", "uvicorn.error", "uvicorn.access")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def attach(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.addHandler(self)
            if name.startswith(("uvicorn", "memory_plugin")):
                logger.setLevel(logging.DEBUG)

    def detach(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)
            logging.getLogger(name).setLevel(self._levels[name])


@dataclass
class World:
    server: RunningServer
    http: RawClient
    admin: Credentials
    logs: Captured

    def key(self, app: str = "app-001", tenants: Sequence[str] | None = None, **flags: bool) -> Credentials:
        return Credentials(*self.server.new_key(app, tenants, **flags))

    def texts(self, tenant: Any = "*", app: str = "app-001", as_: Credentials | None = None) -> list[str]:
        """Every memory text of ``tenant`` (``*``: all), as the admin of ``app`` sees them."""
        who = as_ or (self.admin if app == "app-001" else self.app2)
        page = self.http.ok("POST", route("list"), {"scope": everything(tenant, app), "limit": 100}, as_=who)
        return sorted(item["text"] for item in page["items"])

    @property
    def app2(self) -> Credentials:
        return self._app2

    def setup(self) -> None:
        self._app2 = self.key("app-002", admin=True)
        self.http.ok("POST", "/v1/stores", {"name": STORE})
        for tenant in TENANTS:
            self.http.ok("POST", route("add"), {"scope": scope(tenant), "text": f"{tenant} likes tea"})
        self.http.ok("POST", route("add"), {"scope": scope("u1", "app-002"), "text": "app2 plans"}, as_=self._app2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    logs = Captured()
    logs.attach()
    folder = tmp_path_factory.mktemp("security")
    limits = ServerLimits(max_body_bytes=MAX_BODY)
    try:
        with running_server(folder, make_fake_embedder(), limits=limits, extractor=FailsWhenAsked()) as server:
            admin = Credentials(server.key.key_id, server.secret)
            http = RawClient(server.url, admin)
            world = World(server, http, admin, logs)
            world.setup()
            yield world
            http.close()
    finally:
        logs.detach()


@pytest.fixture
def http(world: World) -> RawClient:
    return world.http


def search_body(tenant: Any = "u1", app: str = "app-001") -> dict[str, Any]:
    return {"scope": everything(tenant, app), "query": "tea"}


# ---------------------------------------------------------------- authentication


def test_a_signed_request_and_a_bearer_token_are_accepted(http: RawClient) -> None:
    signed = http.call("POST", route("search"), search_body())
    assert signed.status_code == 200 and [h["memory"]["text"] for h in signed.json()["hits"]] == ["u1 likes tea"]
    bearer = http.bearer("POST", route("search"), search_body())
    assert bearer.status_code == 200 and bearer.json()["hits"] == signed.json()["hits"]


def test_no_or_a_malformed_authorization_is_refused(http: RawClient) -> None:
    raw = http.request("POST", route("search"), search_body())
    refused(http.send(raw), 401, "AuthenticationError")
    for value in ("Basic dXNlcjpwYXNz", "HMAC-SHA256 garbage", "Bearer nodot", "Bearer mpk_x.y", ""):
        refused(http.send(raw.with_header("Authorization", value)), 401, "AuthenticationError")


def test_a_bad_signature_is_refused(http: RawClient) -> None:
    good = http.signed(http.request("POST", route("search"), search_body()))
    authorization = good.headers["Authorization"]
    forged = authorization[:-64] + "0" * 64
    body = refused(http.send(good.with_header("Authorization", forged)), 401, "AuthenticationError")
    assert "signature does not match" in body["message"]


def test_the_wrong_secret_is_refused(world: World, http: RawClient) -> None:
    other = world.key()
    impostor = Credentials(world.admin.key_id, other.secret)  # the admin's id with another key's secret
    refused(http.call("POST", route("search"), search_body(), as_=impostor), 401, "AuthenticationError")
    refused(http.bearer("POST", route("search"), search_body(), as_=impostor), 401, "AuthenticationError")


def _add_request(http: RawClient, text: str) -> RawRequest:
    return http.signed(http.request("POST", route("add"), {"scope": scope("u2", run="tamper"), "text": text}))


def _tampered(raw: RawRequest, part: str) -> RawRequest:
    if part == "body":
        return RawRequest(raw.method, raw.path, raw.query, raw.headers, raw.body.replace(b"signed", b"forged"))
    if part == "path":
        return RawRequest(raw.method, route("add", "other"), raw.query, raw.headers, raw.body)
    if part == "query":
        return RawRequest(raw.method, raw.path, "sync=false", raw.headers, raw.body)
    if part == "method":
        return RawRequest("PUT", raw.path, raw.query, raw.headers, raw.body)
    if part == "signed header":
        return raw.with_header("Content-Type", "text/plain")
    if part == "date":
        later = datetime.now(timezone.utc) + timedelta(seconds=30)
        return raw.with_header("X-MP-Date", later.strftime("%Y%m%dT%H%M%SZ"))
    if part == "nonce":
        return raw.with_header("X-MP-Nonce", "another-nonce")
    if part == "host":
        return raw.with_header("Host", "evil.example:80")
    assert part == "unsigned X-MP header"
    return raw.with_header("X-MP-Extra", "1")


@pytest.mark.parametrize(
    "part", ["body", "path", "query", "method", "signed header", "date", "nonce", "host", "unsigned X-MP header"]
)
def test_a_request_changed_after_signing_is_refused_and_writes_nothing(
    world: World, http: RawClient, part: str
) -> None:
    raw = _add_request(http, f"signed {part}")
    answer = http.send(_tampered(raw, part))
    assert answer.status_code in (401, 405), answer.text  # PUT has no route: refused before anything runs
    if answer.status_code == 401:
        assert answer.json()["code"] == "AuthenticationError"
    assert not [t for t in world.texts("u2") if part in t]


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24, 60 * 24 * 365])
def test_a_date_more_than_five_minutes_off_is_refused(http: RawClient, minutes: int) -> None:
    when = datetime.now(timezone.utc) + timedelta(minutes=minutes)
    raw = http.signed(http.request("POST", route("search"), search_body()), now=when)
    body = refused(http.send(raw), 401, "AuthenticationError")
    assert "X-MP-Date" in body["message"]


def test_a_date_within_the_window_is_accepted(http: RawClient) -> None:
    when = datetime.now(timezone.utc) - timedelta(minutes=4)
    assert http.send(http.signed(http.request("POST", route("search"), search_body()), now=when)).status_code == 200


def test_a_replayed_request_is_refused_and_applied_once(world: World, http: RawClient) -> None:
    raw = http.signed(http.request("POST", route("add"), {"scope": scope("u2", run="replay"), "text": "paid once"}))
    assert http.send(raw).status_code == 200
    body = refused(http.send(raw), 401, "AuthenticationError")
    assert "replay" in body["message"]
    assert world.texts("u2").count("paid once") == 1


def test_a_key_revoked_while_the_server_runs_is_refused_on_its_next_call(
    world: World, http: RawClient, capsys: pytest.CaptureFixture[str]
) -> None:
    key = world.key()
    assert http.call("POST", route("search"), search_body(), as_=key).status_code == 200
    assert cli(["keys", "revoke", "--path", str(Path(world.server.keys.path).parent), key.key_id]) == 0
    capsys.readouterr()
    for answer in (
        http.call("POST", route("search"), search_body(), as_=key),
        http.bearer("POST", route("search"), search_body(), as_=key),
        http.call("POST", route("add"), {"scope": scope("u1"), "text": "after revocation"}, as_=key),
    ):
        assert "revoked" in refused(answer, 401, "AuthenticationError")["message"]
    assert "after revocation" not in world.texts("u1")


def test_an_unknown_key_is_refused(http: RawClient) -> None:
    ghost = Credentials("mpk_abcdefghijklmnopqrst", "not-a-real-secret")
    refused(http.call("POST", route("search"), search_body(), as_=ghost), 401, "AuthenticationError")
    refused(http.bearer("POST", route("search"), search_body(), as_=ghost), 401, "AuthenticationError")


# ---------------------------------------------------------------- authorisation


def test_a_key_of_app_b_reaches_nothing_of_app_a(world: World, http: RawClient) -> None:
    app2 = world.key("app-002")
    for name, body in (
        ("search", search_body("u1")),
        ("list", {"scope": everything("*")}),
        ("requests", {"scope": everything("*")}),
        ("add", {"scope": scope("u1"), "text": "from app 2"}),
        ("delete_all", {"scope": scope("u1", agent="*", run="*")}),
    ):
        refused(http.call("POST", route(name), body, as_=app2), 403, "ForbiddenError")
    # Its own app's view holds only its app's memories.
    assert world.texts(as_=app2, app="app-002") == ["app2 plans"]
    assert "from app 2" not in world.texts()


def test_a_tenant_bound_key_cannot_name_another_tenant(world: World, http: RawClient) -> None:
    key = world.key(tenants=["u1", "u2"])
    memory_id = http.ok("POST", route("list"), {"scope": everything("u3")})["items"][0]["id"]
    u3 = scope("u3")
    for name, body in (
        ("search", search_body("u3")),
        ("list", {"scope": everything("u3")}),
        ("get", {"scope": u3, "memory_id": memory_id}),
        ("history", {"scope": u3, "memory_id": memory_id}),
        ("messages", {"scope": u3}),
        ("requests", {"scope": everything("u3")}),
        ("add", {"scope": u3, "text": "into u3"}),
        ("update", {"scope": u3, "memory_id": memory_id, "text": "changed"}),
        ("delete", {"scope": u3, "memory_id": memory_id}),
        ("delete_all", {"scope": scope("u3", agent="*", run="*")}),
    ):
        body_ = refused(http.call("POST", route(name), body, as_=key), 403, "ForbiddenError")
        assert "'u3'" in body_["message"]
    assert world.texts("u3") == ["u3 likes tea"]


@pytest.mark.parametrize("tenants", [["u1", "u3"], ["u3"], ["u1", "u2", "u3"]])
def test_a_tenant_bound_key_cannot_list_another_tenant(world: World, http: RawClient, tenants: list[str]) -> None:
    key = world.key(tenants=["u1", "u2"])
    for name in ("search", "list", "requests"):
        body = {"scope": everything(tenants), **({"query": "tea"} if name == "search" else {})}
        refused(http.call("POST", route(name), body, as_=key), 403, "ForbiddenError")


def test_a_tenant_bound_key_sees_only_its_tenants_through_a_wildcard(world: World, http: RawClient) -> None:
    key = world.key(tenants=["u1", "u2"])
    texts = world.texts("*", as_=key)
    assert "u1 likes tea" in texts and "u2 likes tea" in texts and "u3 likes tea" not in texts
    listed = http.ok("POST", route("list"), {"scope": everything("*"), "limit": 100}, as_=key)["items"]
    assert {memory["scope"]["tenant_id"] for memory in listed} == {"u1", "u2"}
    found = http.ok("POST", route("search"), {**search_body("*"), "top_k": 50}, as_=key)
    assert {hit["memory"]["scope"]["tenant_id"] for hit in found["hits"]} == {"u1", "u2"}
    audit = http.ok("POST", route("requests"), {"scope": everything("*"), "limit": 100}, as_=key)
    assert audit["items"] and {r["scope"]["tenant_id"] for r in audit["items"]} <= {"u1", "u2"}
    # A list of its own tenants is fine; VikingDB's search without user_id is narrowed the same way.
    assert "u2 likes tea" in world.texts(["u2"], as_=key) and "u1 likes tea" not in world.texts(["u2"], as_=key)
    viking = {"collection_name": STORE, "query": "tea", "limit": 50, "filter": {"memory_type": "fact"}}
    answer = http.call("POST", "/api/memory/search", viking, as_=key)
    assert answer.status_code == 200, answer.text
    assert {tuple(r["user_id"]) for r in answer.json()["data"]["result_list"]} == {("u1",), ("u2",)}


def test_a_tenant_bound_key_cannot_write_with_a_wildcard(world: World, http: RawClient) -> None:
    key = world.key(tenants=["u1"])
    refused(http.call("POST", route("delete_all"), {"scope": everything("*")}, as_=key), 403, "ForbiddenError")
    assert world.texts("u1") == ["u1 likes tea"]


def test_a_read_only_key_cannot_write(world: World, http: RawClient) -> None:
    key = world.key(read_only=True)
    memory_id = http.ok("POST", route("list"), {"scope": everything("u1")})["items"][0]["id"]
    u1 = scope("u1")
    for name, body in (
        ("add", {"scope": u1, "text": "read-only write"}),
        ("update", {"scope": u1, "memory_id": memory_id, "text": "changed"}),
        ("delete", {"scope": u1, "memory_id": memory_id}),
        ("clear_messages", {"scope": u1}),
        ("delete_all", {"scope": scope("u1", agent="*", run="*")}),
    ):
        assert "read-only" in refused(http.call("POST", route(name), body, as_=key), 403, "ForbiddenError")["message"]
    assert world.texts("u1") == ["u1 likes tea"]
    assert http.call("POST", route("search"), search_body("u1"), as_=key).status_code == 200  # reads are fine


def test_store_administration_needs_an_admin_key(world: World, http: RawClient) -> None:
    for key in (world.key(), world.key(tenants=["u1"]), world.key(read_only=True)):
        for method, path, body in (
            ("POST", "/v1/stores", {"name": "intruder"}),
            ("DELETE", f"/v1/stores/{STORE}", None),
            ("PATCH", f"/v1/stores/{STORE}", {"description": "defaced"}),
            ("POST", route("prune"), {}),
            ("POST", route("retry_failed"), {}),
        ):
            refused(http.call(method, path, body, as_=key), 403, "ForbiddenError")
        listed = http.ok("GET", "/v1/stores", as_=key)  # reading the catalogue is fine
        assert [store["name"] for store in listed] == [STORE]
    assert http.ok("GET", f"/v1/stores/{STORE}")["description"] == ""


def test_extraction_status_shows_a_key_only_its_apps_and_tenants_jobs(world: World, http: RawClient) -> None:
    writers = (("u1", "app-001", world.admin), ("u3", "app-001", world.admin), ("u1", "app-002", world.app2))
    for tenant, app, who in writers:
        added = http.ok("POST", route("add"), {
            "scope": scope(tenant, app, run="jobs"), "messages": [{"role": "user", "content": f"FAIL {tenant}"}],
            "sync": False,
        }, as_=who)  # fmt: skip
        assert added["pending"] is True
    http.ok("POST", route("flush"), {"timeout": 30})

    def jobs(key: Credentials) -> set[tuple[str, str]]:
        listed = http.ok("POST", route("extraction_status"), {}, as_=key)
        return {(job["scope"]["app_id"], job["scope"]["tenant_id"]) for job in listed if job["state"] == "failed"}

    assert jobs(world.admin) == {("app-001", "u1"), ("app-001", "u3")}
    assert jobs(world.key(tenants=["u1", "u2"])) == {("app-001", "u1")}
    assert jobs(world.key("app-002", tenants=["u3"])) == set()
    assert jobs(world.app2) == {("app-002", "u1")}


def test_the_audit_records_which_key_made_each_call(world: World, http: RawClient) -> None:
    writer, reader = world.key(tenants=["u2"]), world.key(read_only=True)
    added = http.ok("POST", route("add"), {"scope": scope("u2", run="audit"), "text": "audited"}, as_=writer)
    found = http.ok("POST", route("search"), search_body("u2"), as_=reader)
    refused_call = http.call("POST", route("list"), {"scope": everything("u2"), "limit": 0}, as_=reader)
    refused(refused_call, 400, "InvalidArgumentError", "limit")
    audit = http.ok("POST", route("requests"), {"scope": everything("*"), "limit": 100})
    by_id = {record["request_id"]: record for record in audit["items"]}
    assert by_id[added["request_id"]]["key_id"] == writer.key_id
    assert by_id[found["request_id"]]["key_id"] == reader.key_id
    assert by_id[refused_call.json()["request_id"]]["key_id"] == reader.key_id
    assert by_id[refused_call.json()["request_id"]]["outcome"] == "InvalidArgumentError"
    calls = [record for record in audit["items"] if record["operation"] != "ExtractMemories"]  # the worker's own
    assert calls and all(record["key_id"] and record["key_id"].startswith("mpk_") for record in calls)


def test_the_audit_shows_a_key_no_scopeless_record_of_other_keys(world: World, http: RawClient) -> None:
    """Store-level calls (flush, extraction status) and calls whose scope was unusable have no scope in the audit;
    a non-admin key sees only its own such records, never another app's or tenant's (their key ids and errors)."""
    other_tenant, bad_scope = world.key(tenants=["u3"]), "app-001/u3/" + "x" * 200 + "/r"
    http.call("POST", route("add"), {"scope": bad_scope, "text": "u3 private words"}, as_=other_tenant)
    http.ok("POST", route("flush"), {"timeout": 5}, as_=other_tenant)
    for key in (world.key(tenants=["u1"]), world.key("app-002"), world.key("app-002", tenants=["u3"])):
        http.ok("POST", route("flush"), {"timeout": 5}, as_=key)  # a scope-less record of its own
        for scope_ in (everything("*"), everything("*", "app-002")):
            answer = http.call("POST", route("requests"), {"scope": scope_, "limit": 100}, as_=key)
            if answer.status_code != 200:
                continue  # another app's scope: refused outright
            records = answer.json()["items"]
            assert other_tenant.key_id not in {record["key_id"] for record in records}
            assert "Flush" in {record["operation"] for record in records if record["key_id"] == key.key_id}
    everyone = http.ok("POST", route("requests"), {"scope": everything("*"), "limit": 100})["items"]
    assert other_tenant.key_id in {record["key_id"] for record in everyone}  # the admin sees them all


# ---------------------------------------------------------------- abuse limits


def test_an_oversized_body_is_refused_with_413(world: World, http: RawClient) -> None:
    text = "x" * (MAX_BODY + 1)
    big = http.signed(http.request("POST", route("add"), {"scope": scope("u1", run="big"), "text": text}))
    refused(http.send(big), 413, "RequestTooLargeError")
    # Without a Content-Length (chunked): counted as it arrives, refused once over the cap.
    unsized = http.request("POST", route("add"), None)
    unsized = unsized.with_header("Authorization", world.admin.bearer).with_header("Content-Type", "application/json")
    refused(http.send(unsized, content=chunks(MAX_BODY + 1)), 413, "RequestTooLargeError")
    assert http.send(unsized, content=chunks(1000)).status_code == 400  # under the cap: read, and refused by name
    assert not [t for t in world.texts("u1") if t.startswith("xxx")]


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap(world: World) -> None:
    """The server counts a body sent without a length as it arrives: it answers 413 while the body is still
    coming (here it never ends), instead of reading it whole first."""
    host, port = world.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            f"POST {route('add')} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {world.admin.bearer}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        piece = 64 * 1024
        for _ in range(4 * MAX_BODY // piece):  # four times the cap, and no final chunk
            connection.sendall(f"{piece:x}\r\n".encode() + b"x" * piece + b"\r\n")
        answer = connection.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413 "), answer[:200]
    assert '"code":"RequestTooLargeError"' in answer


def test_the_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    limits = ServerLimits(requests_per_second=0.1, burst=3)
    with running_server(tmp_path / "data", make_fake_embedder(), limits=limits) as server:
        admin = Credentials(server.key.key_id, server.secret)
        http = RawClient(server.url, admin)
        other = Credentials(*server.new_key("app-001"))
        answers = [http.call("GET", "/v1/stores") for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        body = refused(answers[3], 429, "RateLimitedError")
        assert int(answers[3].headers["Retry-After"]) >= 1 and admin.key_id in body["message"]
        viking = {"collection_name": "none", "query": "q", "filter": {"memory_type": "fact"}}
        limited = http.call("POST", "/api/memory/search", viking)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert http.call("GET", "/v1/stores", as_=other).status_code == 200  # each key has a bucket of its own
        http.close()


# ---------------------------------------------------------------- hostile input

HOSTILE_BODIES: list[tuple[str, bytes, str | None]] = [
    ("not JSON", b"{not json", "body"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', "body"),
    ("a JSON list", b"[1, 2, 3]", "body"),
    ("a JSON string", b'"text"', "body"),
    ("a JSON number", b"42", "body"),
    ("JSON null", b"null", "scope"),
    ("deeply nested arrays", b"[" * 100_000 + b"]" * 100_000, "body"),
    ("deeply nested objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "body"),
    ("nested within the parser's reach", b'{"scope": ' + b"[" * 900 + b"]" * 900 + b', "text": "t"}', "scope"),
    ("nested metadata", b'{"scope": "app-001/u1/a/r", "text": "t", "metadata": {"k": ' + b"[" * 900 + b"]" * 900
     + b"}}", "metadata.k"),
    ("NaN", b'{"scope": "app-001/u1/a/r", "text": "t", "timestamp": NaN}', "timestamp"),
    ("Infinity", b'{"scope": "app-001/u1/a/r", "text": "t", "timestamp": Infinity}', "timestamp"),
    ("a huge number", b'{"scope": "app-001/u1/a/r", "text": "t", "timestamp": 1' + b"0" * 5000 + b"}", "body"),
    ("a lone surrogate", b'{"scope": "app-001/u1/a/r", "text": "\\ud800"}', "body"),
    ("a lone surrogate in a key", b'{"scope": "app-001/u1/a/r", "text": "t", "\\udc00": 1}', "body"),
    ("a surrogate in an id", b'{"scope": "app-001/\\udfff/a/r", "text": "t"}', "body"),
    ("NUL in the text", b'{"scope": "app-001/u1/a/r", "text": "a\\u0000b"}', "text"),
    ("NUL in an id", b'{"scope": "app-001/u\\u00001/a/r", "text": "t"}', "tenant_id"),
    ("a control character in an id", b'{"scope": "app-001/u\\u001b1/a/r", "text": "t"}', "tenant_id"),
    ("a huge id", b'{"scope": "app-001/' + b"u" * 100_000 + b'/a/r", "text": "t"}', "tenant_id"),
    ("a huge metadata key", b'{"scope": "app-001/u1/a/r", "text": "t", "metadata": {"' + b"k" * 100_000 + b'": 1}}',
     "metadata"),
    ("an unknown field", b'{"scope": "app-001/u1/a/r", "text": "t", "admin": true}', "admin"),
    ("a duplicate field", b'{"scope": "app-001/u1/a/r", "text": "t", "text": 5}', "text"),
    ("the wrong types", b'{"scope": 5, "text": ["t"]}', "scope"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), HOSTILE_BODIES, ids=[case for case, _, _ in HOSTILE_BODIES])
def test_hostile_bodies_are_refused_by_name_and_change_nothing(
    world: World, http: RawClient, case: str, body: bytes, field: str | None
) -> None:
    before = http.ok("POST", route("list"), {"scope": everything("*"), "limit": 100})
    raw = http.signed(http.request("POST", route("add"), body))
    answer = http.send(raw)
    assert 400 <= answer.status_code < 500, (case, answer.status_code, answer.text[:300])
    assert answer.json()["field"] == field, answer.json()
    assert http.ok("POST", route("list"), {"scope": everything("*"), "limit": 100}) == before


def test_the_remote_client_refuses_invalid_unicode_by_name(world: World) -> None:
    with world.server.client() as client:
        store = client.get_memory_store(STORE)
        with pytest.raises(InvalidArgumentError, match="valid Unicode") as caught:
            store.add(scope("u1"), text="coffee \ud800")
        assert caught.value.field == "text"
    assert "coffee \ud800" not in world.texts("u1")


HOSTILE_PATHS = [
    ("/v1/stores/caf%C3%A9/search", (400, 404)),
    ("/v1/stores/%F0%9F%98%80/search", (400, 404)),
    ("/v1/stores/%FF%FE/search", (400, 404)),
    ("/v1/stores/a%00b/search", (400, 404)),
    ("/v1/stores/a%2Fb/search", (400, 404)),
    ("/v1/stores/%2E%2E/search", (400, 404)),
    ("/v1/stores/" + "s" * 5000 + "/search", (400, 404)),
    ("/v1/stores/mem/no-such-operation", (404,)),
    ("/v1/nothing", (404,)),
    ("/", (404,)),
]


@pytest.mark.parametrize(("path", "statuses"), HOSTILE_PATHS, ids=[p[:40] for p, _ in HOSTILE_PATHS])
def test_hostile_paths_are_refused_in_the_error_shape(http: RawClient, path: str, statuses: tuple[int, ...]) -> None:
    answer = http.call("POST", path, search_body())
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])
    for method in ("GET", "DELETE", "PATCH"):
        assert 400 <= http.call(method, path, search_body()).status_code < 500


def test_unicode_store_names_in_the_path_round_trip(http: RawClient) -> None:
    """A store name the API allows travels percent-encoded in the path, and the signature still matches."""
    answer = http.call("POST", "/v1/stores", {"name": "café"})
    if answer.status_code == 200:
        assert http.ok("GET", "/v1/stores/caf%C3%A9")["name"] == "café"
        assert http.call("DELETE", "/v1/stores/caf%C3%A9").status_code == 200
    else:
        refused(answer, 400, "InvalidArgumentError", "name")


def test_a_wrong_method_is_refused_in_the_error_shape(http: RawClient) -> None:
    refused(http.call("GET", route("search")), 405)
    refused(http.call("PUT", "/v1/stores"), 405)


# ---------------------------------------------------------------- secrets


def test_no_secret_in_any_answer_header_or_log_line(world: World, http: RawClient) -> None:
    """Every answer of this module was checked as it came (raw_http.check_response); here: the log of everything
    the server did in this module, after a last round of refused calls that carry secrets."""
    key = world.key(tenants=["u1"])
    wrong = Credentials(key.key_id, world.admin.secret)
    for who in (key, wrong):
        http.bearer("POST", route("search"), search_body("u3"), as_=who)
        http.call("POST", route("search"), search_body("u3"), as_=who)
        http.bearer("POST", route("add"), b"[" * 100_000, as_=who)
        http.bearer("POST", "/v1/nothing", search_body(), as_=who)
    audit = http.ok("POST", route("requests"), {"scope": everything("*"), "limit": 100})
    assert world.logs.lines, "the server logged nothing: the capture is not attached"
    logged = "\n".join(world.logs.lines)
    for secret in SECRETS:
        assert secret not in logged
        assert all(secret not in (record["error"] or "") for record in audit["items"])

"""Request signing and verification: the documented algorithm, every way a request is refused, and no secret in
any message. Keys come from a real keys.db in a temp folder."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from memory_plugin.errors import AuthenticationError
from memory_plugin.keys import Credentials, KeyRecord, Secret
from memory_plugin.signing import (
    ReplayCache,
    canonical_path,
    canonical_query,
    sign,
    verify,
)
from memory_plugin.storage.sqlite.keys import SQLiteKeyStore

NOW = datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc)
PATH = "/v1/stores/agent_memory/search"
QUERY = "b=2&a=1"
BODY = b'{"query":"coffee"}'
HEADERS = {"Host": "127.0.0.1:8080", "Content-Type": "application/json"}


@dataclass
class Client:
    """One real key of a real keys.db."""

    keys: SQLiteKeyStore
    record: KeyRecord
    secret: Secret

    def sign(self, **changes: object) -> dict[str, str]:
        args: dict[str, object] = {"method": "POST", "url_path": PATH, "query": QUERY, "headers": HEADERS}
        args |= {"body": BODY, "key_id": self.record.key_id, "secret": self.secret, "now": NOW} | changes
        return {**HEADERS, **sign(**args)}  # type: ignore[arg-type]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with SQLiteKeyStore(tmp_path) as keys:
        record, secret = keys.create("app-001", ["user-001"])
        yield Client(keys, record, secret)


def check(
    client: Client,
    headers: dict[str, str] | list[tuple[str, str]],
    *,
    method: str = "POST",
    path: str | bytes = PATH,
    query: str | bytes = QUERY,
    body: bytes = BODY,
    now: datetime = NOW,
    replay: ReplayCache | None = None,
) -> KeyRecord:
    return verify(
        method,
        path,
        query,
        headers,
        body,
        keys=client.keys,
        now=now,
        replay=ReplayCache() if replay is None else replay,
    )


class FixedKeys:
    def __init__(self, record: KeyRecord, secret: str) -> None:
        self._credentials = Credentials(record, Secret(secret))

    def credentials(self, key_id: str) -> Credentials | None:
        return self._credentials if key_id == self._credentials.record.key_id else None


def test_the_documented_test_vector_computed_from_the_spec() -> None:
    """The signature in the module docstring, computed here straight from the written algorithm with hashlib, so
    an implementation in another language can check itself against the same numbers."""
    canonical = "\n".join(
        [
            "POST",
            "/v1/stores/agent_memory/search",
            "a=1&b=2",
            "content-type:application/json",
            "host:127.0.0.1:8080",
            "x-mp-date:20261130T081500Z",
            "x-mp-nonce:0123456789abcdef",
            "content-type;host;x-mp-date;x-mp-nonce",
            hashlib.sha256(BODY).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        ["HMAC-SHA256", "20261130T081500Z", "mpk_abcdefghijklmnopqrst", hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = hmac.new(b"s3cr3t", to_sign.encode(), hashlib.sha256).hexdigest()
    assert expected == "1903f63b537170b244c9bc6ea1e0dae3c63addde3be6a5d4d16ddc5e7d404d19"  # as documented
    headers = sign("POST", PATH, QUERY, HEADERS, BODY, "mpk_abcdefghijklmnopqrst", "s3cr3t", NOW, "0123456789abcdef")
    assert headers == {
        "X-MP-Date": "20261130T081500Z",
        "X-MP-Nonce": "0123456789abcdef",
        "Authorization": "HMAC-SHA256 Credential=mpk_abcdefghijklmnopqrst, "
        f"SignedHeaders=content-type;host;x-mp-date;x-mp-nonce, Signature={expected}",
    }
    record = KeyRecord("mpk_abcdefghijklmnopqrst", "app", None, False, False, NOW)
    verified = verify(
        "POST", PATH, QUERY, {**HEADERS, **headers}, BODY, keys=FixedKeys(record, "s3cr3t"), now=NOW,
        replay=ReplayCache(),
    )  # fmt: skip
    assert verified == record


def test_signed_request_is_accepted(client: Client) -> None:
    assert check(client, client.sign()) == client.record
    pairs = list(client.sign().items())  # raw header pairs, as Starlette gives them
    assert check(client, pairs) == client.record
    empty = client.sign(method="GET", query="", body=b"")
    assert check(client, empty, method="get", query=b"", body=b"") == client.record


def test_two_identical_calls_differ_by_their_nonce(client: Client) -> None:
    replay = ReplayCache()
    first, second = client.sign(), client.sign()
    assert first["X-MP-Nonce"] != second["X-MP-Nonce"]
    assert check(client, first, replay=replay) == check(client, second, replay=replay) == client.record


def test_the_spelling_of_path_and_query_does_not_matter() -> None:
    assert canonical_path("/a%20b/~x") == canonical_path("/a b/%7Ex") == canonical_path(b"/a%20b/%7ex") == "/a%20b/~x"
    assert canonical_path("") == "/"
    assert canonical_query("b=2&a=1&a=0") == canonical_query("a=0&a=1&b=2") == "a=0&a=1&b=2"
    assert canonical_query("q=a+b&x") == canonical_query("q=a%20b&x=") == "q=a%20b&x="
    assert canonical_query("") == ""
    # Byte-exact: non-UTF-8 escapes stay distinct; characters are their UTF-8 bytes; empty parts are dropped.
    assert canonical_path("/%FF") == "/%FF" != canonical_path("/%FE")
    assert canonical_path("/é") == canonical_path("/%c3%a9") == "/%C3%A9"
    assert canonical_query("a=%FF&&b=%2F&c=/") == "a=%FF&b=%2F&c=%2F"
    with pytest.raises(ValueError, match="without its query"):
        canonical_path("/a?b=1")


def test_server_may_see_the_path_and_query_spelled_otherwise(client: Client) -> None:
    headers = client.sign(url_path="/v1/stores/agent%5Fmemory/search", query="a=1&b=2")
    assert check(client, headers, path=b"/v1/stores/agent_memory/search", query=b"b=2&a=1") == client.record


def _refused(client: Client, headers: dict[str, str] | list[tuple[str, str]], match: str, **kwargs: object) -> str:
    with pytest.raises(AuthenticationError, match=match) as caught:
        check(client, headers, **kwargs)  # type: ignore[arg-type]
    assert caught.value.http_status == 401
    return str(caught.value)


def test_tampering_with_any_signed_part_is_refused(client: Client) -> None:
    signed = client.sign()
    mismatch = "signature does not match"
    _refused(client, signed, mismatch, body=b'{"query":"tea"}')
    _refused(client, signed, mismatch, path="/v1/stores/other/search")
    _refused(client, signed, mismatch, query="a=1&b=3")
    _refused(client, signed, mismatch, query="a=1&b=2&c=3")
    _refused(client, signed, mismatch, method="PUT")
    _refused(client, {**signed, "Content-Type": "text/plain"}, mismatch)
    _refused(client, {**signed, "Host": "evil.example:8080"}, mismatch)
    _refused(client, {**signed, "X-MP-Nonce": "another"}, mismatch)
    _refused(client, {**signed, "X-MP-Date": "20261130T081501Z"}, mismatch)
    _refused(client, {**signed, "X-MP-Idempotency-Key": "k"}, "x-mp-idempotency-key must be signed")
    duplicated = [*signed.items(), ("Host", "127.0.0.1:8080")]
    _refused(client, duplicated, "host appears more than once")


def test_wrong_secret_unknown_and_revoked_keys_are_refused(client: Client) -> None:
    _refused(client, client.sign(secret="not-the-secret"), "signature does not match")
    other, _ = SQLiteKeyStore(client.keys.path.parent / "elsewhere").create("app-001")
    _refused(client, client.sign(key_id=other.key_id), "unknown access key")
    _refused(client, client.sign(key_id="not-a-key"), "not an access key id")
    signed = client.sign()
    client.keys.revoke(client.record.key_id)
    _refused(client, signed, "was revoked")


def test_dates_more_than_five_minutes_off_are_refused(client: Client) -> None:
    for offset in (timedelta(minutes=-5), timedelta(minutes=5), timedelta(0)):
        assert check(client, client.sign(now=NOW + offset)) == client.record
    for offset in (timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1), timedelta(hours=-3)):
        _refused(client, client.sign(now=NOW + offset), "from the server's clock")
    _refused(client, {**client.sign(), "X-MP-Date": "2026-11-30T08:15:00Z"}, "must be YYYYMMDDTHHMMSSZ")


def test_a_replayed_signature_is_refused_within_the_window(client: Client) -> None:
    replay = ReplayCache()
    signed = client.sign()
    assert check(client, signed, replay=replay) == client.record
    _refused(client, signed, "already accepted", replay=replay)
    _refused(client, signed, "already accepted", replay=replay, now=NOW + timedelta(minutes=4))
    _refused(client, signed, "from the server's clock", replay=replay, now=NOW + timedelta(minutes=6))


def test_refused_signatures_are_not_remembered(client: Client) -> None:
    replay = ReplayCache()
    signed = client.sign()
    _refused(client, signed, "signature does not match", replay=replay, body=b"tampered")
    assert len(replay) == 0 and check(client, signed, replay=replay) == client.record


@pytest.mark.parametrize(
    ("authorization", "match"),
    [
        ("", "malformed"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("HMAC-SHA256", "malformed"),
        ("HMAC-SHA256 Credential=mpk_abcdefghijklmnopqrst", "malformed"),
        ("HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=00, Extra=1", "malformed"),
        ("HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host", "malformed"),
        ("HMAC-SHA256 Credential=a, SignedHeaders=Host;x, Signature=" + "0" * 64, "lower-case header names"),
        ("HMAC-SHA256 Credential=a, SignedHeaders=host;host, Signature=" + "0" * 64, "distinct"),
        ("HMAC-SHA256 Credential=a, SignedHeaders=host, Signature=XYZ", "64 lower-case hexadecimal"),
        ("Bearer ", "must be <key id>.<secret>"),
        ("Bearer only-a-secret-without-a-dot", "must be <key id>.<secret>"),
    ],
)
def test_malformed_authorization_is_refused(client: Client, authorization: str, match: str) -> None:
    _refused(client, {**client.sign(), "Authorization": authorization}, match)


def test_signed_headers_must_cover_host_date_and_nonce(client: Client) -> None:
    signed = client.sign()
    authorization = signed["Authorization"].replace("content-type;host;x-mp-date;x-mp-nonce", "host;x-mp-date")
    _refused(client, {**signed, "Authorization": authorization}, "must include x-mp-nonce")
    unsigned_host = signed["Authorization"].replace(";host;", ";")
    _refused(client, {**signed, "Authorization": unsigned_host}, "must include host")
    absent = {k: v for k, v in signed.items() if k != "Content-Type"}
    _refused(client, absent, "signed header content-type is not in the request")
    _refused(client, {k: v for k, v in signed.items() if k != "Authorization"}, "missing Authorization")


def test_sign_needs_host_and_an_aware_time(client: Client) -> None:
    with pytest.raises(ValueError, match="Host"):
        client.sign(headers={"Content-Type": "application/json"})
    with pytest.raises(ValueError, match="timezone-aware"):
        client.sign(now=NOW.replace(tzinfo=None))


def test_bearer_key_id_dot_secret(client: Client) -> None:
    token = f"{client.record.key_id}.{client.secret.reveal()}"
    assert check(client, {"Authorization": f"Bearer {token}"}) == client.record
    assert check(client, {"authorization": f"bearer {token}"}) == client.record
    _refused(client, {"Authorization": f"Bearer {client.record.key_id}.wrong"}, "wrong secret")
    _refused(client, {"Authorization": f"Bearer {client.record.key_id}.{client.secret.reveal()}x"}, "wrong secret")
    _refused(client, {"Authorization": "Bearer mpk_aaaaaaaaaaaaaaaaaaaa.x"}, "unknown access key")
    client.keys.revoke(client.record.key_id)
    _refused(client, {"Authorization": f"Bearer {token}"}, "was revoked")


def test_no_secret_in_any_refusal(client: Client) -> None:
    """Every refusal, including ones whose header carries the secret itself, keeps it out of the message."""
    secret = client.secret.reveal()
    signed = client.sign()
    messages = [
        _refused(client, signed, "does not match", body=b"x"),
        _refused(client, {"Authorization": f"Bearer {client.record.key_id}.{secret}x"}, "wrong secret"),
        _refused(client, {"Authorization": f"Bearer {secret}"}, "<key id>.<secret>"),
        _refused(client, {"Authorization": f"Bearer {secret}.{secret}"}, "not an access key id"),
        _refused(client, {**signed, "Authorization": f"HMAC-SHA256 Credential={secret}"}, "malformed"),
        _refused(client, client.sign(key_id=secret), "not an access key id"),
        _refused(client, {**signed, "X-MP-Date": secret}, "YYYYMMDD"),
    ]
    for message in messages:
        assert secret not in message and secret[:12] not in message


def test_replay_cache_is_bounded_and_forgets_expired_entries() -> None:
    cache = ReplayCache(max_entries=3)
    for i in range(5):
        assert not cache.check_and_remember(f"s{i}", expires_at=100.0, now=0.0)
    assert len(cache) == 3
    assert cache.check_and_remember("s4", expires_at=100.0, now=1.0)  # still held: a replay
    assert not cache.check_and_remember("s0", expires_at=100.0, now=1.0)  # dropped when full: the bound's cost
    assert not cache.check_and_remember("s4", expires_at=300.0, now=150.0)  # expired: remembered again
    assert len(cache) == 1
    with pytest.raises(ValueError):
        ReplayCache(max_entries=0)

"""Request signing and verification: pure functions over (method, path, query, headers, body, now).

A request proves which access key sent it in one of two ways.

**1. Signed (what the remote client does).** Like AWS SigV4 / Volcengine's signing, simplified. The client adds
two headers and an ``Authorization`` header::

    X-MP-Date: 20261130T081500Z                  # UTC, format YYYYMMDDTHHMMSSZ
    X-MP-Nonce: 3f1c0a9e5b7d4c21a8e6f0b2d4c6e8a0   # random, fresh for every request
    Authorization: HMAC-SHA256 Credential=<key id>, SignedHeaders=<names>, Signature=<hex>

computed in four steps (all text UTF-8; ``hex`` is lowercase hexadecimal; ``SHA256`` and ``HMAC-SHA256`` as in
FIPS 180-4 / RFC 2104):

1. *Canonical parts.*

   - ``METHOD``: the HTTP method in upper case.
   - ``PATH``: the path as sent on the request line (percent-encoded, without ``?query``), percent-decoded to
     bytes (``%XX`` is one byte, any other character its UTF-8 bytes), then every byte encoded as ``%XX`` (upper
     case) except ``A-Z a-z 0-9 - _ . ~`` and ``/``. An empty path is ``/``.
   - ``QUERY``: the query string split on ``&`` (empty parts dropped) into ``name=value`` pairs (a pair without
     ``=`` has an empty value); in names and values ``+`` becomes a space, then each is decoded to bytes and
     encoded again like ``PATH`` but with ``/`` encoded too; the pairs are sorted by name, then value (byte order
     of the encoded text) and joined as ``name=value`` with ``&``. No query gives the empty string.
   - ``SIGNED_HEADERS``: the lower-case names of the signed headers, sorted, joined with ``;``. They must include
     ``host``, ``x-mp-date`` and ``x-mp-nonce``, and every other ``x-mp-*`` header the request carries; the client
     also signs ``content-type`` when there is one. Each signed header must occur once in the request.
   - ``HEADERS``: one line ``name:value`` per signed header, in ``SIGNED_HEADERS`` order, ``value`` with leading
     and trailing spaces and tabs removed and inner runs of spaces and tabs replaced by one space. The server reads
     header bytes as Latin-1, so keep signed header values ASCII.
   - ``BODY_HASH``: ``hex(SHA256(body bytes))`` (of the empty string when there is no body).

2. *Canonical request*: ``METHOD``, ``PATH``, ``QUERY``, the ``HEADERS`` lines, ``SIGNED_HEADERS`` and
   ``BODY_HASH``, joined with ``\\n`` (no newline at the end).

3. *String to sign*: ``HMAC-SHA256``, the ``X-MP-Date`` value, the key id and ``hex(SHA256(canonical request))``,
   joined with ``\\n``.

4. *Signature*: ``hex(HMAC-SHA256(key = secret, message = string to sign))``.

Test vector (the test suite checks it): key id ``mpk_abcdefghijklmnopqrst``, secret ``s3cr3t``, ``POST``
``/v1/stores/agent_memory/search`` with query ``b=2&a=1``, headers ``Host: 127.0.0.1:8080`` and ``Content-Type:
application/json``, body ``{"query":"coffee"}``, date ``20261130T081500Z``, nonce ``0123456789abcdef``::

    Authorization: HMAC-SHA256 Credential=mpk_abcdefghijklmnopqrst,
        SignedHeaders=content-type;host;x-mp-date;x-mp-nonce,
        Signature=1903f63b537170b244c9bc6ea1e0dae3c63addde3be6a5d4d16ddc5e7d404d19

The server refuses (:class:`AuthenticationError`, HTTP 401) a missing or malformed header, an unknown or revoked
key, a wrong signature (another secret, or any signed part changed on the way), an ``X-MP-Date`` more than 5
minutes from its clock, and a signature it has already accepted within that window (:class:`ReplayCache`; the
nonce makes two identical calls differ, so only a real replay repeats a signature). Signatures are compared with
:func:`hmac.compare_digest`. Behind a proxy that rewrites ``Host``, the server sees another host and refuses:
forward the original ``Host``.

**2. Bearer** (for curl and the VikingDB sample, whose ``Authorization: Bearer <API_KEY>`` takes the pasted key):
``Authorization: Bearer <key id>.<secret>``. The secret travels in the clear, so use it over TLS or on loopback;
it cannot be protected against replay.

No message, log line or ``repr`` here holds a secret: errors name key ids (only when they have a key id's shape),
header names and limits, never header values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote_to_bytes

from .errors import AuthenticationError
from .keys import CredentialSource, KeyRecord, Secret, is_key_id

ALGORITHM = "HMAC-SHA256"
DATE_HEADER = "x-mp-date"
NONCE_HEADER = "x-mp-nonce"
OWN_HEADER_PREFIX = "x-mp-"
REQUIRED_SIGNED_HEADERS = frozenset({"host", DATE_HEADER, NONCE_HEADER})
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=5)
_UNRESERVED = "-_.~"
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_BLANKS = re.compile(r"[ \t]+")

HeaderPairs = Mapping[str, str] | Iterable[tuple[str, str]]


# ---------------------------------------------------------------- canonical form (shared by client and server)


def _encoded(raw: str, safe: str) -> str:
    """Percent-decode ``raw`` to bytes (``%XX`` is a byte; other characters are their UTF-8 bytes), then encode
    every byte but the unreserved ones (and ``safe``) as upper-case ``%XX``."""
    return quote(unquote_to_bytes(raw), safe=_UNRESERVED + safe)


def canonical_path(path: str | bytes) -> str:
    """``path`` (as sent, percent-encoded, no query) decoded and re-encoded so both sides agree on one spelling."""
    text = path.decode("latin-1") if isinstance(path, bytes) else path
    if "?" in text:
        raise ValueError("pass the path without its query; the query is signed separately")
    return _encoded(text, "/") or "/"


def canonical_query(query: str | bytes) -> str:
    """The query's ``name=value`` pairs, decoded, strictly re-encoded and sorted."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    pairs = []
    for part in text.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((_encoded(name.replace("+", " "), ""), _encoded(value.replace("+", " "), "")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _header_pairs(headers: HeaderPairs) -> list[tuple[str, str]]:
    # Mapping.items() of a Starlette Headers object yields every raw pair, duplicates included.
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name.strip().lower(), _BLANKS.sub(" ", value.strip(" \t"))) for name, value in items]


def _single_values(pairs: list[tuple[str, str]], names: Iterable[str]) -> dict[str, str]:
    """The value of each of ``names``; a name sent more than once is refused (which copy was signed?)."""
    wanted = set(names)
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in wanted:
            if name in values:
                raise AuthenticationError(f"header {name} appears more than once; send each signed header once")
            values[name] = value
    return values


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_request(method: str, path: str | bytes, query: str | bytes, signed: dict[str, str], body: bytes) -> str:
    """Step 2 of the algorithm; ``signed`` maps each signed header's lower-case name to its normalised value."""
    names = sorted(signed)
    return "\n".join(
        [
            method.upper(),
            canonical_path(path),
            canonical_query(query),
            *(f"{name}:{signed[name]}" for name in names),
            ";".join(names),
            body_hash(body),
        ]
    )


def string_to_sign(date: str, key_id: str, canonical: str) -> str:
    """Step 3 of the algorithm."""
    return "\n".join([ALGORITHM, date, key_id, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def signature(secret: str, to_sign: str) -> str:
    """Step 4 of the algorithm."""
    return hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def format_date(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc).strftime(DATE_FORMAT)


# ---------------------------------------------------------------- client side


def sign(
    method: str,
    url_path: str | bytes,
    query: str | bytes,
    headers: HeaderPairs,
    body: bytes,
    key_id: str,
    secret: str | Secret,
    now: datetime,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that sign this request: ``X-MP-Date``, ``X-MP-Nonce`` and ``Authorization``. Set them on the
    request (replacing any of the same name) and send it unchanged.

    Args:
        url_path: the path exactly as it will be sent (percent-encoded), without the query.
        query: the query string as it will be sent, without ``?`` (``""`` if none).
        headers: the request's headers; must include ``Host``. ``Content-Type`` and every ``X-MP-*`` header are
            signed too.
        body: the exact body bytes (``b""`` if none).
        now: the current time (timezone-aware).
        nonce: a fresh random value per request (default: 128 random bits); fixed only in tests.

    Example:
        >>> sign("GET", "/healthz", "", {"Host": "127.0.0.1:8080"}, b"", "mpk_abcdefghijklmnopqrst", "s3cr3t",
        ...      datetime(2026, 11, 30, 8, 15, tzinfo=timezone.utc), nonce="n")["X-MP-Date"]
        '20261130T081500Z'
    """
    date = format_date(now)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    own = {DATE_HEADER, NONCE_HEADER, "authorization"}
    pairs = [(name, value) for name, value in _header_pairs(headers) if name not in own]
    names = {name for name, _ in pairs if name in ("host", "content-type") or name.startswith(OWN_HEADER_PREFIX)}
    if "host" not in names:
        raise ValueError("headers must include Host: it is signed")
    signed = _single_values(pairs, names) | {DATE_HEADER: date, NONCE_HEADER: nonce}
    secret_text = secret.reveal() if isinstance(secret, Secret) else secret
    canonical = canonical_request(method, url_path, query, signed, body)
    value = signature(secret_text, string_to_sign(date, key_id, canonical))
    return {
        "X-MP-Date": date,
        "X-MP-Nonce": nonce,
        "Authorization": f"{ALGORITHM} Credential={key_id}, SignedHeaders={';'.join(sorted(signed))}, "
        f"Signature={value}",
    }


# ---------------------------------------------------------------- server side


class ReplayCache:
    """Signatures accepted recently, so that the same signed request is not accepted twice.

    An entry is kept until its request's date leaves the accepted window (after that the date check refuses the
    request anyway). At most ``max_entries`` are kept: when full, the oldest is dropped, which reopens a replay
    window only for requests older than the last ``max_entries`` (size it for ~10 minutes of traffic). Thread-safe.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def check_and_remember(self, token: str, expires_at: float, now: float) -> bool:
        """True if ``token`` was seen and has not expired (a replay); otherwise remember it and return False."""
        with self._lock:
            while self._expiry:  # entries are roughly in expiry order: drop the expired ones at the front
                first, first_expiry = next(iter(self._expiry.items()))
                if first_expiry > now:
                    break
                del self._expiry[first]
            seen = self._expiry.get(token)
            if seen is not None and seen > now:
                return True
            self._expiry[token] = expires_at
            while len(self._expiry) > self.max_entries:
                self._expiry.popitem(last=False)
            return False


@dataclass(frozen=True)
class _Signed:
    key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def _parse_signed(rest: str) -> _Signed:
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name in fields:
            raise AuthenticationError(_MALFORMED)
        fields[name] = value.strip()
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise AuthenticationError(_MALFORMED)
    names = tuple(fields["SignedHeaders"].split(";"))
    if len(set(names)) != len(names) or not all(_HEADER_NAME.fullmatch(name) for name in names):
        raise AuthenticationError("SignedHeaders must be distinct lower-case header names separated by ';'")
    if not _SIGNATURE.fullmatch(fields["Signature"]):
        raise AuthenticationError("Signature must be 64 lower-case hexadecimal characters")
    return _Signed(fields["Credential"], names, fields["Signature"])


_MALFORMED = (
    f"malformed Authorization header; expected '{ALGORITHM} Credential=<key id>, SignedHeaders=<names>, "
    "Signature=<hex>' or 'Bearer <key id>.<secret>'"
)


def _live_key(keys: CredentialSource, key_id: str) -> tuple[KeyRecord, Secret]:
    if not is_key_id(key_id):
        raise AuthenticationError("the credential is not an access key id (mpk_ followed by 20 characters)")
    found = keys.credentials(key_id)
    if found is None:
        raise AuthenticationError(f"unknown access key {key_id}")
    if found.record.revoked:
        raise AuthenticationError(f"access key {key_id} was revoked")
    return found.record, found.secret


def _verify_bearer(token: str, keys: CredentialSource) -> KeyRecord:
    key_id, dot, given = token.strip().partition(".")
    if not dot or not key_id or not given:
        raise AuthenticationError("a Bearer token must be <key id>.<secret>, as `memory-plugin keys create` prints")
    record, secret = _live_key(keys, key_id)
    if not hmac.compare_digest(given.encode("utf-8"), secret.reveal().encode("utf-8")):
        raise AuthenticationError(f"wrong secret for access key {key_id}")
    return record


def _parse_date(value: str, now: datetime, max_skew: timedelta) -> datetime:
    try:
        date = datetime.strptime(value, DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise AuthenticationError("X-MP-Date must be YYYYMMDDTHHMMSSZ in UTC, e.g. 20261130T081500Z") from None
    skew = abs(now - date)
    if skew > max_skew:
        raise AuthenticationError(
            f"X-MP-Date {value} is {int(skew.total_seconds())} s from the server's clock; requests are accepted "
            f"within {int(max_skew.total_seconds())} s (check the client's clock)"
        )
    return date


def verify(
    method: str,
    path: str | bytes,
    query: str | bytes,
    headers: HeaderPairs,
    body: bytes,
    *,
    keys: CredentialSource,
    now: datetime,
    replay: ReplayCache,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> KeyRecord:
    """Check who sent a request; returns their key's record or raises :class:`AuthenticationError`.

    Args:
        path: the raw path as received (ASGI ``scope["raw_path"]``), without the query.
        query: the raw query string (ASGI ``scope["query_string"]``).
        headers: every header pair as received (duplicates included, e.g. Starlette's ``request.headers``).
        body: the exact body bytes.
        keys: where keys are looked up (a :class:`~memory_plugin.keys.KeyStore`).
        now: the server's current time (timezone-aware).
        replay: the server's one :class:`ReplayCache`.

    Example:
        >>> record = verify(request.method, scope["raw_path"], scope["query_string"], request.headers, body,
        ...                 keys=key_store, now=datetime.now(timezone.utc), replay=cache)  # doctest: +SKIP
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    pairs = _header_pairs(headers)
    authorization = _single_values(pairs, ["authorization"]).get("authorization")
    if authorization is None:
        raise AuthenticationError(
            f"missing Authorization header; sign the request ({ALGORITHM}, see memory_plugin.signing) or send "
            "'Bearer <key id>.<secret>'"
        )
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return _verify_bearer(rest, keys)
    if scheme != ALGORITHM:
        raise AuthenticationError(_MALFORMED)
    parsed = _parse_signed(rest)
    record, secret = _live_key(keys, parsed.key_id)
    missing = sorted(REQUIRED_SIGNED_HEADERS - set(parsed.signed_headers))
    if missing:
        raise AuthenticationError(f"SignedHeaders must include {', '.join(missing)}")
    unsigned = sorted({name for name, _ in pairs if name.startswith(OWN_HEADER_PREFIX)} - set(parsed.signed_headers))
    if unsigned:
        raise AuthenticationError(f"header {unsigned[0]} must be signed (every X-MP-* header is)")
    signed = _single_values(pairs, parsed.signed_headers)
    absent = [name for name in parsed.signed_headers if name not in signed]
    if absent:
        raise AuthenticationError(f"signed header {absent[0]} is not in the request")
    date = _parse_date(signed[DATE_HEADER], now, max_skew)
    expected = signature(
        secret.reveal(),
        string_to_sign(signed[DATE_HEADER], parsed.key_id, canonical_request(method, path, query, signed, body)),
    )
    if not hmac.compare_digest(expected, parsed.signature):
        raise AuthenticationError(
            f"signature does not match for access key {parsed.key_id}: signed with another secret, or the method, "
            "path, query, a signed header or the body changed on the way"
        )
    if replay.check_and_remember(f"{parsed.key_id}:{parsed.signature}", (date + max_skew).timestamp(), now.timestamp()):
        raise AuthenticationError("this signed request was already accepted (a replay); sign every request anew")
    return record

"""Abuse limits: a per-key request rate (token bucket) and a cap on request bodies. Pure, with an injectable
clock, so tests need no sleeping."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InvalidArgumentError, RateLimitedError, RequestTooLargeError

# The largest add the API accepts (100 messages of 32,000 characters) fits in UTF-8 JSON even if every character
# takes 4 bytes (12.8 MB); JSON with \uXXXX escapes for non-ASCII text (ensure_ascii) may need a higher cap.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_RATE = 50.0  # requests per second per key, sustained
DEFAULT_BURST = 100  # requests a key may send at once after being idle


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may run now; if not, ``retry_after`` is how many seconds until it may (``Retry-After``)."""

    allowed: bool
    retry_after: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """``retry_after`` rounded up to whole seconds, as the ``Retry-After`` header wants it (at least 1)."""
        return str(max(1, math.ceil(self.retry_after)))


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per access key: ``burst`` requests at once, refilled at ``rate`` per second. Thread-safe.

    Memory stays bounded: when more than ``max_keys`` buckets are held, the ones that have refilled completely
    (the same as having none) are dropped; a spent bucket is always kept. Check keys only after authentication,
    so that the keys held are real ones.

    Args:
        rate: requests per second each key may sustain.
        burst: the bucket's size; a key idle long enough may send this many at once.
        clock: seconds on a monotonic clock (``time.monotonic``; a fake one in tests).

    Example:
        >>> limiter = RateLimiter(rate=2, burst=2, clock=lambda: 0.0)
        >>> [limiter.check("mpk_a").allowed for _ in range(3)]
        [True, True, False]
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise InvalidArgumentError("rate", f"must be a positive number of requests per second, got {rate}")
        if burst < 1:
            raise InvalidArgumentError("burst", f"must be at least 1 request, got {burst}")
        self.rate = float(rate)
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from the key's bucket if it holds them; a refused request takes nothing."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key_id)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._drop_full(now)
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return RateDecision(True)
            return RateDecision(False, (cost - bucket.tokens) / self.rate)

    def require(self, key_id: str, cost: float = 1.0) -> None:
        """:meth:`check`, raising :class:`RateLimitedError` (429 with ``Retry-After``) when refused."""
        decision = self.check(key_id, cost)
        if not decision.allowed:
            raise RateLimitedError(key_id, int(decision.retry_after_header))

    def _drop_full(self, now: float) -> None:
        for key_id in [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]:
            del self._buckets[key_id]

    def __len__(self) -> int:
        return len(self._buckets)


def check_content_length(header: str | None, limit: int = DEFAULT_MAX_BODY_BYTES) -> int | None:
    """The declared body size, refused before the body is read if it is over ``limit`` (413) or not a number.

    ``None`` when there is no ``Content-Length`` (chunked upload): count with :func:`check_body_size` as it arrives.
    """
    if header is None:
        return None
    text = header.strip()
    if not text.isdigit() or not text.isascii():
        raise InvalidArgumentError("Content-Length", "must be a whole number of bytes")
    size = int(text)
    check_body_size(size, limit)
    return size


def check_body_size(size: int, limit: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Refuse a body of ``size`` bytes (so far) if it is over ``limit``: :class:`RequestTooLargeError` (413)."""
    if size > limit:
        raise RequestTooLargeError(size, limit)

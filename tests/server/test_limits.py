"""Abuse limits with a fake clock: the per-key token bucket and the body cap."""

from __future__ import annotations

import pytest

from memory_plugin import InvalidArgumentError
from memory_plugin.errors import RateLimitedError, RequestTooLargeError
from memory_plugin.server.limits import RateDecision, RateLimiter, check_body_size, check_content_length


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.check("k").allowed for _ in range(3)] == [True, True, True]
    refused = limiter.check("k")
    assert refused == RateDecision(False, 0.5) and refused.retry_after_header == "1"
    clock.now += 0.5  # one token back
    assert limiter.check("k").allowed and not limiter.check("k").allowed
    clock.now += 60  # idle: refilled to the burst, never beyond
    assert [limiter.check("k").allowed for _ in range(4)] == [True, True, True, False]


def test_keys_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=FakeClock())
    assert limiter.check("a").allowed and not limiter.check("a").allowed
    assert limiter.check("b").allowed


def test_refused_requests_take_no_tokens_and_retry_after_is_honest() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)
    assert limiter.check("k").allowed
    for _ in range(5):
        decision = limiter.check("k")
        assert not decision.allowed and decision.retry_after == pytest.approx(10.0)
    assert decision.retry_after_header == "10"
    clock.now += 9.9
    assert not limiter.check("k").allowed
    clock.now += 0.1
    assert limiter.check("k").allowed


def test_require_raises_429_with_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.4, burst=1, clock=clock)
    limiter.require("mpk_abc")
    with pytest.raises(RateLimitedError, match="retry after 3 s") as caught:
        limiter.require("mpk_abc")
    assert caught.value.http_status == 429 and caught.value.retry_after == 3


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.check("k").allowed
    clock.now -= 100
    assert not limiter.check("k").allowed


def test_memory_stays_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock, max_keys=10)
    for i in range(10):
        limiter.check(f"k{i}")
    clock.now += 5  # all refilled: dropping them changes nothing
    limiter.check("new")
    assert len(limiter) == 1
    busy = RateLimiter(rate=1.0, burst=2, clock=clock, max_keys=3)
    for i in range(5):  # none refilled: kept (a key's limit is never forgotten while it is spent)
        busy.check(f"k{i}")
    assert len(busy) == 5


@pytest.mark.parametrize(("rate", "burst", "field"), [(0, 1, "rate"), (float("inf"), 1, "rate"), (1, 0, "burst")])
def test_bad_settings(rate: float, burst: int, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        RateLimiter(rate=rate, burst=burst)
    assert caught.value.field == field


def test_body_cap() -> None:
    check_body_size(10, limit=10)
    with pytest.raises(RequestTooLargeError, match="11 bytes is over the limit of 10 bytes") as caught:
        check_body_size(11, limit=10)
    assert caught.value.http_status == 413
    assert check_content_length(None, limit=10) is None
    assert check_content_length(" 10 ", limit=10) == 10
    with pytest.raises(RequestTooLargeError):
        check_content_length("11", limit=10)
    for bad in ("-1", "1e3", "", "١٢"):
        with pytest.raises(InvalidArgumentError, match="Content-Length"):
            check_content_length(bad, limit=10)

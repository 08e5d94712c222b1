"""The shared nonce ledger on real Redis: each kid+nonce is accepted once, also under concurrency."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from authz.nonce_ledger import NonceLedger
from identity.errors import StorageUnavailable
from tests.conftest import REDIS_URL
from tests.faults import free_port


@pytest.fixture
async def ledger() -> NonceLedger:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield NonceLedger(client, f"t{uuid.uuid4().hex[:12]}")
    await client.aclose()


async def test_each_nonce_is_accepted_once_among_concurrent_checks(ledger: NonceLedger) -> None:
    checks = [ledger.first_use("kid", str(n % 50), 10_000) for n in range(500)]
    answers = await asyncio.gather(*checks)
    accepted = [str(n % 50) for n, ok in enumerate(answers) if ok]
    assert sorted(accepted) == sorted(str(n) for n in range(50))


async def test_nonces_of_different_keys_do_not_collide(ledger: NonceLedger) -> None:
    assert await ledger.first_use("kid-a", "1700000000000", 10_000)
    assert await ledger.first_use("kid-b", "1700000000000", 10_000)
    assert not await ledger.first_use("kid-a", "1700000000000", 10_000)


async def test_a_nonce_is_forgotten_after_its_ttl(ledger: NonceLedger) -> None:
    assert await ledger.first_use("kid", "42", 50)
    await asyncio.sleep(0.2)
    assert await ledger.first_use("kid", "42", 50)


async def test_unreachable_redis_is_storage_unavailable_for_every_waiter() -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    ledger = NonceLedger(client, "t")
    try:
        results = await asyncio.gather(
            *(ledger.first_use("kid", str(n), 1000) for n in range(5)), return_exceptions=True
        )
    finally:
        await client.aclose()
    assert all(isinstance(r, StorageUnavailable) for r in results)

"""``RedisSessionStore`` on the machine's Redis: hashed ids, real TTLs, the per-user index, revocation."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from identity.changes import ChangePublisher, channel
from identity.sessions import RedisSessionStore, session_hash

EXPIRE = 1800
SLACK = 120


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def namespace() -> str:
    return f"s{uuid.uuid4().hex[:12]}"


def store_for(
    redis: Redis, namespace: str, expire_time: int = EXPIRE, ttl_slack: int = SLACK
) -> RedisSessionStore:
    return RedisSessionStore(
        redis,
        ChangePublisher(redis, namespace),
        namespace=namespace,
        expire_time=expire_time,
        ttl_slack=ttl_slack,
    )


@pytest.fixture
def store(redis: Redis, namespace: str) -> RedisSessionStore:
    return store_for(redis, namespace)


async def dump(redis: Redis, namespace: str) -> dict[str, Any]:
    """Every key of the namespace with its content, whatever its type."""
    contents: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{namespace}:*"):
        kind = await redis.type(key)
        if kind == "hash":
            contents[key] = await redis.hgetall(key)
        elif kind == "set":
            contents[key] = await redis.smembers(key)
        else:
            contents[key] = await redis.get(key)
    return contents


async def test_session_id_is_random_128_bits_and_the_record_holds_the_login_context(
    store: RedisSessionStore,
) -> None:
    now = time.time()
    session_id, record = await store.create("ID0000000001", "81.2.69.10", "Browser/1.0", now=now)
    assert re.fullmatch(r"[0-9a-f]{32}", session_id)
    assert re.fullmatch(r"[0-9a-f]{20}", record.csrf_token)
    assert record.hash == hashlib.sha256(session_id.encode()).hexdigest() == session_hash(session_id)
    assert (record.uid, record.user_ip, record.user_agent) == ("ID0000000001", "81.2.69.10", "Browser/1.0")
    assert record.expire_time == int(now) + EXPIRE
    assert await store.get(record.hash) == record
    other_id, _ = await store.create("ID0000000001", "81.2.69.10", "Browser/1.0", now=now)
    assert other_id != session_id


async def test_raw_session_id_is_never_stored(store: RedisSessionStore, redis: Redis, namespace: str) -> None:
    session_id, record = await store.create("ID0000000001", "81.2.69.10", "Browser/1.0")
    await store.slide(record, record.expire_time + 600)
    await store.list_for_user("ID0000000001")
    contents = await dump(redis, namespace)
    assert contents, "the session must be somewhere in the namespace"
    assert session_id not in repr(contents)
    assert f"{namespace}:session:{record.hash}" in contents


async def test_every_key_has_a_real_ttl(store: RedisSessionStore, redis: Redis, namespace: str) -> None:
    _, first = await store.create("ID0000000001", "81.2.69.10", "UA")
    await store.create("ID0000000001", "81.2.69.11", "UA")
    await store.create("ID0000000002", "81.2.69.12", "UA")
    await redis.expire(f"{namespace}:session:{first.hash}", 10)
    await store.slide(first, first.expire_time + 60)
    keys = [key async for key in redis.scan_iter(match=f"{namespace}:*")]
    assert len(keys) == 5  # three sessions, two user indexes
    for key in keys:
        assert EXPIRE < await redis.ttl(key) <= EXPIRE + SLACK, key


async def test_sessions_and_their_index_really_expire(redis: Redis, namespace: str) -> None:
    store = store_for(redis, namespace, expire_time=1, ttl_slack=0)
    _, record = await store.create("ID0000000001", "81.2.69.10", "UA")
    await asyncio.sleep(1.1)
    assert await store.get(record.hash) is None
    assert await store.list_for_user("ID0000000001") == []
    assert await dump(redis, namespace) == {}


async def test_index_lists_every_live_session_of_a_user(
    store: RedisSessionStore, redis: Redis, namespace: str
) -> None:
    records = [(await store.create("ID0000000001", f"81.2.69.{n}", "UA"))[1] for n in range(3)]
    _, foreign = await store.create("ID0000000002", "81.2.69.9", "UA")
    listed = await store.list_for_user("ID0000000001")
    assert sorted(r.hash for r in listed) == sorted(r.hash for r in records)
    assert [r.hash for r in await store.list_for_user("ID0000000002")] == [foreign.hash]

    await redis.delete(f"{namespace}:session:{records[0].hash}")  # as if Redis had expired it
    assert sorted(r.hash for r in await store.list_for_user("ID0000000001")) == sorted(
        r.hash for r in records[1:]
    )
    assert await redis.smembers(f"{namespace}:user_sessions:ID0000000001") == {r.hash for r in records[1:]}


async def test_destroy_all_revokes_every_session_but_the_kept_one(
    store: RedisSessionStore, redis: Redis, namespace: str
) -> None:
    records = [(await store.create("ID0000000001", "81.2.69.10", "UA"))[1] for _ in range(3)]
    _, foreign = await store.create("ID0000000002", "81.2.69.10", "UA")
    pubsub = redis.pubsub()
    await pubsub.subscribe(channel(namespace))

    assert await store.destroy_all("ID0000000001", keep=records[1].hash) == 2

    assert [r.hash for r in await store.list_for_user("ID0000000001")] == [records[1].hash]
    assert await store.get(records[0].hash) is None and await store.get(records[2].hash) is None
    assert await store.get(records[1].hash) is not None
    assert await store.get(foreign.hash) is not None
    announced = set()
    deadline = time.monotonic() + 0.5
    while len(announced) < 2 and time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            announced.add(message["data"])
    await pubsub.aclose()
    assert announced == {f"session:{records[0].hash}", f"session:{records[2].hash}"}

    assert await store.destroy_all("ID0000000001") == 1
    assert await store.list_for_user("ID0000000001") == []
    assert await store.destroy_all("ID0000000001") == 0


async def test_destroy_revokes_one_session(store: RedisSessionStore, redis: Redis, namespace: str) -> None:
    _, record = await store.create("ID0000000001", "81.2.69.10", "UA")
    _, other = await store.create("ID0000000001", "81.2.69.10", "UA")
    assert await store.destroy(record.hash, "ID0000000001") is True
    assert await store.get(record.hash) is None
    assert await redis.smembers(f"{namespace}:user_sessions:ID0000000001") == {other.hash}
    assert await store.destroy(record.hash, "ID0000000001") is False


async def test_slide_moves_the_deadline_and_refreshes_the_ttl(
    store: RedisSessionStore, redis: Redis, namespace: str
) -> None:
    _, record = await store.create("ID0000000001", "81.2.69.10", "UA", now=1_000_000)
    await redis.expire(f"{namespace}:session:{record.hash}", 5)
    await store.slide(record, 1_000_000 + EXPIRE + 300)
    slid = await store.get(record.hash)
    assert slid is not None and slid.expire_time == 1_000_000 + EXPIRE + 300
    assert (slid.csrf_token, slid.uid, slid.created_at) == (record.csrf_token, record.uid, record.created_at)
    assert await redis.ttl(f"{namespace}:session:{record.hash}") > EXPIRE


async def test_a_late_slide_never_shortens_the_session(
    store: RedisSessionStore, redis: Redis, namespace: str
) -> None:
    _, record = await store.create("ID0000000001", "81.2.69.10", "UA", now=1_000_000)
    assert await store.slide(record, 1_000_000 + EXPIRE + 300) == 1_000_000 + EXPIRE + 300
    # A request that took "now" before the one above but reaches Redis after it.
    await redis.expire(f"{namespace}:session:{record.hash}", 5)
    assert await store.slide(record, 1_000_000 + EXPIRE + 60) == 1_000_000 + EXPIRE + 300
    slid = await store.get(record.hash)
    assert slid is not None and slid.expire_time == 1_000_000 + EXPIRE + 300
    assert await redis.ttl(f"{namespace}:session:{record.hash}") > EXPIRE


async def test_slide_does_not_resurrect_a_destroyed_session(
    store: RedisSessionStore, redis: Redis, namespace: str
) -> None:
    _, record = await store.create("ID0000000001", "81.2.69.10", "UA")
    await store.destroy(record.hash, "ID0000000001")
    # A request that read the record before the logout.
    assert await store.slide(record, record.expire_time + 600) is None
    assert await store.get(record.hash) is None
    assert not await redis.exists(f"{namespace}:session:{record.hash}")
    assert await store.list_for_user("ID0000000001") == []


async def test_partial_record_is_no_session(store: RedisSessionStore, redis: Redis, namespace: str) -> None:
    await redis.hset(f"{namespace}:session:{'a' * 64}", mapping={"expire_time": "1"})
    await redis.hset(f"{namespace}:session:{'b' * 64}", mapping={"uid": "ID1", "expire_time": "soon"})
    assert await store.get("a" * 64) is None
    assert await store.get("b" * 64) is None

"""Key rotation: the keyring in SQL, its seeding, and a rotation as the app and an upstream verifier see it."""

from __future__ import annotations

import concurrent.futures
import os
import stat
import threading
from pathlib import Path
from typing import Any, Self

import jwt
import pytest

from authz.keys import KEY_FILE_NAME, Keyring, SigningKey, generate, load_or_create
from authz.settings import Settings
from authz.upstream import JwksKeys, UpstreamTokenError, verify_token
from tests.authz.helpers import PRIVATE_PATH, UA, UK_IP, eventually, fast_settings, new_user, open_session

RETIRE_AFTER = 600.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return fast_settings(settings)


@pytest.fixture(scope="module")
def spare() -> SigningKey:
    return generate()


def keyring(services: Any, clock: Any) -> Keyring:
    return Keyring(services.signing_keys, retire_after=RETIRE_AFTER, clock=clock)


async def test_rotation_publishes_both_keys_until_the_old_one_retires(
    services: Any, clock: Any, spare: SigningKey
) -> None:
    ring = keyring(services, clock)
    first = generate()
    await ring.seed(first, configured=False)
    assert ring.current.kid == first.kid and list(ring.public_keys) == [first.kid]

    await ring.rotate(spare)
    assert ring.current.kid == spare.kid
    assert set(ring.public_keys) == {first.kid, spare.kid}

    other = keyring(services, clock)  # another instance, loading from SQL
    await other.load()
    assert other.current.kid == spare.kid and set(other.public_keys) == {first.kid, spare.kid}

    clock.advance(RETIRE_AFTER + 1)
    assert list(ring.public_keys) == [spare.kid]
    with pytest.raises(KeyError):
        ring.public_keys[first.kid]


async def test_private_keys_are_encrypted_at_rest(services: Any, clock: Any) -> None:
    from sqlalchemy import select

    from identity.db import signing_keys

    await keyring(services, clock).seed(generate(), configured=False)
    async with services.engine.connect() as conn:
        stored = (await conn.execute(select(signing_keys.c.private_key_encrypted))).scalar_one()
    assert "PRIVATE KEY" not in stored


async def test_a_generated_key_only_seeds_an_empty_keyring(services: Any, clock: Any) -> None:
    first, second = generate(), generate()
    await keyring(services, clock).seed(first, configured=False)
    ring = keyring(services, clock)
    await ring.seed(second, configured=False)  # another host with its own data dir
    assert ring.current.kid == first.kid and list(ring.public_keys) == [first.kid]


async def test_a_newly_configured_key_becomes_active_but_a_rotated_one_never_returns(
    services: Any, clock: Any, spare: SigningKey
) -> None:
    configured = generate()
    ring = keyring(services, clock)
    await ring.seed(configured, configured=True)
    await ring.rotate(spare)
    restarted = keyring(services, clock)
    await restarted.seed(configured, configured=True)  # an instance restarted with the old setting
    assert restarted.current.kid == spare.kid

    changed = generate()
    await restarted.seed(changed, configured=True)  # the operator changed AUTHZ_JWT_PRIVATE_KEY
    assert restarted.current.kid == changed.kid
    assert set(restarted.public_keys) == {configured.kid, spare.kid, changed.kid}


async def test_every_signer_and_verifier_of_the_app_follows_a_rotation(
    client: Any, services: Any, settings: Settings, clock: Any, spare: SigningKey
) -> None:
    user = await new_user(services)
    cookie, _ = await open_session(services, user, clock)
    headers = {"Cookie": f"_barong_session={cookie}", "User-Agent": UA, "X-Forwarded-For": UK_IP}

    async def token() -> str:
        response = await client.get(f"/api/v2/auth/{PRIVATE_PATH}", headers=headers)
        assert response.status == 200
        return str(response.headers["Authorization"].removeprefix("Bearer "))

    keys = JwksKeys(str(client.make_url("/.well-known/jwks.json")), min_refresh_interval=0.0, max_age=0.0)
    before = await token()
    old_kid = jwt.get_unverified_header(before)["kid"]

    # What `authz keys rotate` does, from another process: SQL, then the announcement.
    from authz.cli.keys import keyring_of

    await keyring_of(settings, services, RETIRE_AFTER).rotate(spare)
    await services.changes.signing_keys_changed()

    async def kid_of_a_new_token() -> str:  # signed tokens are cached per kid: a new kid is a new token
        return str(jwt.get_unverified_header(await token())["kid"])

    assert await eventually(kid_of_a_new_token, lambda kid: kid == spare.kid, within=5.0) == spare.kid
    after = await token()
    document = await (await client.get("/.well-known/jwks.json")).json()
    assert {key["kid"] for key in document["keys"]} == {old_kid, spare.kid}

    # The upstream verifier accepts the token signed before the rotation and the new one.
    assert (await verify_token(before, keys, leeway=10**6))["uid"] == user.uid
    assert (await verify_token(after, keys, leeway=10**6))["uid"] == user.uid
    # So do the resource API (bearer verifier) and the confirmation tokens.
    me = await client.get("/api/v2/resource/users/me", headers={"Authorization": f"Bearer {after}"})
    assert me.status == 200, await me.text()

    clock.advance(RETIRE_AFTER + 1)
    document = await (await client.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in document["keys"]] == [spare.kid]
    with pytest.raises(UpstreamTokenError):
        await verify_token(before, keys, leeway=10**6)


def test_a_worker_never_reads_the_data_dir_key_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers of `authz serve --workers N` on a fresh data dir each generate a key at once and keep the
    # first one written.  Here the first writer stops half-way, and a second worker starts meanwhile.
    half_written, go_on = threading.Event(), threading.Event()
    real_fdopen = os.fdopen

    class PausingFile:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, blob: bytes) -> None:
            self.handle.write(blob[:100])
            self.handle.flush()
            half_written.set()
            go_on.wait(10)
            self.handle.write(blob[100:])

    def fdopen(fd: int, mode: str) -> Any:
        monkeypatch.setattr("authz.keys.os.fdopen", real_fdopen)  # only the first writer pauses
        return PausingFile(real_fdopen(fd, mode))

    monkeypatch.setattr("authz.keys.os.fdopen", fdopen)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(load_or_create, "", tmp_path)
        assert half_written.wait(10)
        second = load_or_create("", tmp_path)
        go_on.set()
        assert first.result(10).kid == second.kid  # one key for every worker
    assert [path.name for path in tmp_path.iterdir()] == [KEY_FILE_NAME]
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600

"""A new blocklogin restriction revokes only the sessions opened from the addresses it blocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.blocklogin import revoke_blocked_sessions
from authz.geoip import GeoIP
from authz.services import Services
from identity.restrictions import validate_restriction

LOGINS = {"uk": "81.2.69.10", "lan": "10.1.2.3", "lan-other": "10.9.0.1", "v6": "2001:db8:1::5"}


@pytest.fixture
def geoip(geoip_db: Path) -> GeoIP:
    reader = GeoIP.open(geoip_db)
    yield reader
    reader.close()


async def open_sessions(services: Services, make_user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    account = await make_user()
    digests = {}
    for name, ip in LOGINS.items():
        _, record = await services.sessions.create(account.user.uid, ip, "UA")
        digests[name] = record.hash
    return digests


async def alive(services: Services, digests: dict[str, str]) -> set[str]:
    return {name for name, digest in digests.items() if await services.sessions.get(digest) is not None}


@pytest.mark.parametrize(
    ("scope", "value", "survivors"),
    [
        ("ip", "10.1.2.3", {"uk", "lan-other", "v6"}),
        ("ip_subnet", "10.1.0.0/16", {"uk", "lan-other", "v6"}),
        ("ip_subnet", "2001:db8::/32", {"uk", "lan", "lan-other"}),
        ("country", "GB", {"lan", "lan-other", "v6"}),
        ("country", "united kingdom", {"lan", "lan-other", "v6"}),
        ("all", "all", set()),
    ],
)
async def test_blocklogin_revokes_the_sessions_opened_from_blocked_addresses(
    services: Services, make_user, geoip: GeoIP, scope: str, value: str, survivors: set[str]  # type: ignore[no-untyped-def]
) -> None:
    digests = await open_sessions(services, make_user)
    restriction = validate_restriction("blocklogin", scope, value)
    revoked = await revoke_blocked_sessions(services.sessions, restriction, geoip)
    assert await alive(services, digests) == survivors
    assert revoked == len(LOGINS) - len(survivors)


@pytest.mark.parametrize(
    ("category", "state"), [("blacklist", "enabled"), ("maintenance", "enabled"), ("blocklogin", "disabled")]
)
async def test_other_restrictions_revoke_nothing(
    services: Services, make_user, geoip: GeoIP, category: str, state: str  # type: ignore[no-untyped-def]
) -> None:
    digests = await open_sessions(services, make_user)
    restriction = validate_restriction(category, "all", "all", state)
    assert await revoke_blocked_sessions(services.sessions, restriction, geoip) == 0
    assert await alive(services, digests) == set(LOGINS)


async def test_revoked_sessions_leave_the_user_index(services: Services, make_user, geoip: GeoIP) -> None:  # type: ignore[no-untyped-def]
    digests = await open_sessions(services, make_user)
    uid = (await services.sessions.get(digests["uk"])).uid  # type: ignore[union-attr]
    await revoke_blocked_sessions(services.sessions, validate_restriction("blocklogin", "ip", "81.2.69.10"), geoip)
    assert {record.hash for record in await services.sessions.list_for_user(uid)} == {
        digests[name] for name in ("lan", "lan-other", "v6")
    }

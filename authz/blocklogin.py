"""What a new blocklogin restriction does to existing sessions (decisions.md).

Barong wiped every session of every user whenever any blocklogin restriction was enabled.  Here an enabled
blocklogin restriction revokes only the sessions whose *login* address it matches (all of them for scope
``all``), matched by the same compiled restriction code the decision uses.
"""

from __future__ import annotations

from authz.geoip import GeoIP, GeoLocation
from authz.restrictions import CompiledRestrictions, build_restriction_enforcer
from identity.models import Restriction
from identity.sessions import RedisSessionStore, SessionRecord


async def revoke_blocked_sessions(sessions: RedisSessionStore, restriction: Restriction, geoip: GeoIP) -> int:
    """Revoke the sessions opened from an address ``restriction`` blocks; returns how many."""
    if restriction.category != "blocklogin" or not restriction.enabled:
        return 0
    compiled = CompiledRestrictions.from_enforcer(build_restriction_enforcer([restriction]))

    def blocked(record: SessionRecord) -> bool:
        location = geoip.lookup(record.user_ip) if compiled.uses_location else GeoLocation.EMPTY
        return compiled.match(record.user_ip, location) is not None

    return await sessions.revoke_where(blocked)

"""The admin services that the admin API and the ``authz`` command share.

Part of the composition root.  ``admin_services`` is the one implementation of every admin change
(validation, the write, its admin activity, the announcement to every instance); ``authz/admin_api.py``
serves it over HTTP and ``authz/cli`` calls it from the command line.  It does not import the aiohttp
server, so the command does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from authz.blocklogin import revoke_blocked_sessions
from authz.geoip import GeoIP
from authz.services import Services
from authz.settings import Settings
from authz.superadmin_access import superadmin_reaches_admin_api
from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules
from identity.admin.permissions import PermissionAdmin
from identity.admin.restrictions import RestrictionAdmin
from identity.admin.users import UserAdmin
from identity.models import Restriction
from identity.whitelinks import RedisWhitelinkTokens


@dataclass(frozen=True)
class AdminServices:
    """The admin changes, for the admin API and the ``authz`` command alike."""

    permissions: PermissionAdmin
    restrictions: RestrictionAdmin
    users: UserAdmin


def admin_services(settings: Settings, services: Services, geoip: GeoIP) -> AdminServices:
    async def on_blocklogin(restriction: Restriction) -> int:
        return await revoke_blocked_sessions(services.sessions, restriction, geoip)

    return AdminServices(
        permissions=PermissionAdmin(services.engine, services.changes, superadmin_reaches_admin_api),
        restrictions=RestrictionAdmin(
            services.engine,
            services.changes,
            RedisWhitelinkTokens(services.redis, settings.redis_namespace),
            on_blocklogin,
        ),
        users=UserAdmin(
            services.engine,
            services.users,
            services.sessions,
            AccountPropagation(services.engine, services.changes),
            services.changes,
            AccountRules.load(settings.account_rules_file),
            services.api_keys,
        ),
    )

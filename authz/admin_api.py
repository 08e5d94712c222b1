"""Wiring of the admin API: the admin services (``authz/admin_services.py``, shared with the ``authz``
command) and the abilities, each under its area's app key.  Part of the composition root.
"""

from __future__ import annotations

from aiohttp import web

from authz.admin_services import AdminServices
from authz.services import Services
from authz.settings import ABILITIES_MODEL, Settings
from identity.admin.abilities import Abilities
from identity.admin.reports import AdminReports
from identity.http.admin.activities import REPORTS
from identity.http.admin.context import ADMIN, AdminContext
from identity.http.admin.permissions import PERMISSIONS_ADMIN
from identity.http.admin.restrictions import RESTRICTIONS_ADMIN
from identity.http.admin.users import USERS_ADMIN


def install_admin_api(
    app: web.Application, settings: Settings, services: Services, admin: AdminServices
) -> None:
    """The admin API's services, each under its area's app key."""
    app[ADMIN] = AdminContext(Abilities.load(settings.abilities_file, ABILITIES_MODEL))
    app[PERMISSIONS_ADMIN] = admin.permissions
    app[RESTRICTIONS_ADMIN] = admin.restrictions
    app[USERS_ADMIN] = admin.users
    app[REPORTS] = AdminReports(services.engine)

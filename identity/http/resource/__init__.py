"""The resource API (``/api/v2/barong/resource/...`` and ``/api/v2/resource/...``): the signed-in user's
account, 2FA, API keys, service accounts and profile data, behind the bearer JWT of the decision endpoint."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from identity.http.resource import (
    account,
    api_keys,
    data_storage,
    documents,
    labels,
    otp,
    phones,
    profiles,
    service_accounts,
    swagger,
)
from identity.http.resource.context import Handler

AREAS = (account, labels, profiles, data_storage, otp, api_keys, service_accounts, phones, documents, swagger)


def add_routes(app: web.Application, wrap: Callable[[Handler], Handler] = lambda handler: handler) -> None:
    """Register every resource route; ``wrap`` is the application's error mapping (domain errors → HTTP)."""
    for area in AREAS:
        area.add_routes(app, wrap)

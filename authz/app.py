"""The composition root: builds the aiohttp application from settings.

Everything is wired here and nowhere else: storage, the decision pipeline and its caches, the change
listener, the identity API and the error mapping.  Resources are opened and closed in ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from authz.admin_api import install_admin_api
from authz.admin_services import admin_services
from authz.audit import ActivityRecorder
from authz.authn.access_token import AccessTokenAuthenticator
from authz.authn.api_key import ApiKeyAuthenticator
from authz.authn.base import SubjectDirectory
from authz.authn.cookie_session import CookieSessionAuthenticator
from authz.client_ip import client_ip
from authz.geoip import GeoIP
from authz.http import envoy, health, nginx
from authz.http.errors import financelime_errors, json_errors, json_http_errors
from authz.http.security_headers import security_headers
from authz.http.state import STATE, AppState
from authz.identity_api import (
    account_parts,
    identity_context,
    install_resource_api,
    install_token_api,
    mailer,
    public_config,
)
from authz.invalidation import ChangeListener
from authz.keys import Keyring, load_or_create, retire_after
from authz.metrics import TALLY
from authz.mutator_jwt import IdTokenMutator
from authz.nonce_ledger import NonceLedger
from authz.path_rules import PathRules
from authz.pipeline import DecisionPipeline
from authz.policy import PolicyState
from authz.services import Services, open_redis
from authz.settings import Settings
from authz.snapshots import SnapshotCache
from identity.access_tokens import AccessTokens
from identity.activity_log import ClientInfo, header_text
from identity.changes import PERMISSIONS, RESTRICTIONS, SIGNING_KEYS
from identity.http import admin as identity_admin
from identity.http import financelime as identity_financelime
from identity.http import general as identity_general
from identity.http import resource as identity_resource
from identity.http import sessions as identity_sessions
from identity.http import users as identity_users
from identity.http.context import IDENTITY
from identity.password_policy import PasswordPolicy

log = logging.getLogger(__name__)

POLICY_REFRESH_INTERVAL = 60.0
SERVICES = web.AppKey("services", Services)


def build_app(settings: Settings, redis_url: str, *, clock: Callable[[], float] = time.time) -> web.Application:
    """The whole service as one aiohttp application (``redis_url``: the configured or embedded Redis)."""
    app = web.Application(client_max_size=1024**2)
    app.cleanup_ctx.append(lambda app: _resources(app, settings, redis_url, clock))
    if settings.grpc_port:
        # Imported only when served: grpc and Envoy's protos take ~0.2 s to load.
        from authz.http import grpc_ext_authz

        grpc_ext_authz.install(app, settings)  # after the resources: starts with the pipeline, stops first
    app.on_response_prepare.append(json_http_errors)
    app.on_response_prepare.append(security_headers)  # not on the decision readers' paths
    envoy.add_routes(app)  # answers only with decision values: no error wrapper on the hot path
    nginx.add_routes(app)  # the same decisions for nginx auth_request
    health.add_routes(app, wrap=json_errors)
    identity_sessions.add_routes(app, wrap=json_errors)
    identity_users.add_routes(app, wrap=json_errors)
    identity_resource.add_routes(app, wrap=json_errors)
    identity_admin.add_routes(app, wrap=json_errors)
    identity_financelime.add_routes(app, wrap=financelime_errors)
    identity_general.add_routes(
        app, public_config(settings), PasswordPolicy(settings.password_min_entropy), clock=clock, wrap=json_errors
    )
    return app


async def _resources(
    app: web.Application, settings: Settings, redis_url: str, clock: Callable[[], float]
) -> AsyncIterator[None]:
    services = Services.open(settings, redis_url)
    geoip = GeoIP.open(settings.geoip_db)
    lifetimes = (settings.jwt_expire_time, settings.access_token_expire_time)
    lifetimes += (settings.email_token_expire_time, settings.reset_token_expire_time)
    keyring = Keyring(services.signing_keys, retire_after=retire_after(*lifetimes), clock=clock)
    await keyring.seed(
        load_or_create(settings.jwt_private_key, settings.data_dir), configured=bool(settings.jwt_private_key)
    )
    path_rules = PathRules.load(settings.rules_file)
    policy = PolicyState(services.permissions, services.restrictions)
    resolve_ip = _client_ip_resolver(settings)

    listener: ChangeListener
    trusted: Callable[[], bool] = lambda: listener.trusted()  # the listener is bound after construction
    session_cache = SnapshotCache(trusted, ttl=settings.session_cache_ttl)
    user_cache = SnapshotCache(trusted, ttl=settings.session_cache_ttl)
    key_cache = SnapshotCache(trusted, ttl=settings.session_cache_ttl)
    subjects = SubjectDirectory(services.users, user_cache)
    # Service accounts share the ``user:<uid>`` messages (AccountPropagation announces them so).
    service_account_cache = SnapshotCache(trusted, ttl=settings.session_cache_ttl)
    service_account_directory = SubjectDirectory(services.service_accounts, service_account_cache)

    def on_message(message: str) -> None:
        kind, _, ident = message.partition(":")
        if kind == "session":
            session_cache.invalidate(ident)
        elif kind == "user":
            user_cache.invalidate(ident)
            service_account_cache.invalidate(ident)
        elif kind == "apikey":
            key_cache.invalidate(ident)
        elif message in (PERMISSIONS, RESTRICTIONS):
            policy.schedule(message)
        elif message == SIGNING_KEYS:
            keyring.schedule()

    def forget_all() -> None:
        session_cache.clear()
        user_cache.clear()
        service_account_cache.clear()
        key_cache.clear()

    async def on_resync() -> None:
        forget_all()  # messages may have been missed while the channel was down
        policy.schedule("all")
        keyring.schedule()

    # The listener has a client of its own: redis-py drops pub/sub pongs when it decodes responses.
    listener_redis = open_redis(redis_url, settings, decode_responses=False)
    listener = ChangeListener(
        listener_redis,
        settings.redis_namespace,
        on_message=on_message,
        on_resync=on_resync,
        on_down=forget_all,
        staleness=settings.redis_timeout,
    )
    # Changes made by this instance are applied here at once, before they are published to the others.
    services.changes.local = on_message
    recorder = ActivityRecorder(services.activities)
    # Signers read the keyring's current key at every signing, verifiers its published keys: a rotation
    # announced on the change channel reaches all of them.
    mutator = IdTokenMutator(
        keyring.current,
        expire_time=settings.jwt_expire_time,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        clock=clock,
    )
    access_tokens = AccessTokens(
        keyring.current,
        keyring.public_keys,
        issuer=settings.jwt_issuer,
        lifetime=settings.access_token_expire_time,
        clock=clock,
    )
    authenticators = [
        ApiKeyAuthenticator(
            services.api_keys,
            subjects,
            key_cache,
            NonceLedger(services.redis, settings.redis_namespace),
            nonce_lifetime_ms=settings.apikey_nonce_lifetime,
            reject_replay=settings.nonce_replay_rejected,
            clock=clock,
            service_accounts=service_account_directory,
        ),
        AccessTokenAuthenticator(access_tokens, services.sessions, subjects, session_cache, clock=clock),
        CookieSessionAuthenticator(
            services.sessions,
            subjects,
            session_cache,
            cookie_name=settings.session_cookie,
            csrf_protection=settings.csrf_protection,
            expire_time=settings.session_expire_time,
            slide_interval=settings.session_slide_interval,
            clock=clock,
        ),
    ]
    pipeline = DecisionPipeline(policy, path_rules, authenticators, mutator, recorder, geoip)
    app[SERVICES] = services
    app[STATE] = AppState(
        settings=settings,
        engine=services.engine,
        redis=services.redis,
        keyring=keyring,
        policy=policy,
        listener=listener,
        pipeline=pipeline,
        client_ip=resolve_ip,
    )
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.captcha_timeout))
    mail = mailer(settings, services, clock)

    def client_info(request: web.Request) -> ClientInfo:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ip = resolve_ip(peer[0] if isinstance(peer, tuple) else None, request.headers)
        agent = header_text(request.headers.get("User-Agent", ""))
        return ClientInfo(ip=ip, user_agent=agent, country=geoip.lookup(ip).country_name)

    parts = account_parts(settings, services, mail)
    app[IDENTITY] = identity_context(settings, services, keyring, parts, http, client_info, clock)
    install_resource_api(app, settings, services, keyring, parts, http, client_info, clock, policy.permits)
    install_admin_api(app, settings, services, admin_services(settings, services, geoip))
    install_token_api(app, settings, services, access_tokens, parts, client_info, clock)

    await policy.reload()
    reloader = asyncio.create_task(policy.run(POLICY_REFRESH_INTERVAL), name="authz-policy-reloader")
    tasks = [
        asyncio.create_task(listener.run(), name="authz-change-listener"),
        asyncio.create_task(recorder.run(), name="authz-activity-recorder"),
        asyncio.create_task(TALLY.flush_forever(), name="authz-metrics-flush"),
        asyncio.create_task(mail.run(), name="authz-mailer"),
        asyncio.create_task(keyring.run(POLICY_REFRESH_INTERVAL), name="authz-keyring-reloader"),
    ]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(listener.subscribed.wait(), timeout=settings.redis_timeout * 3)
    try:
        yield
    finally:
        listener.stop()
        policy.stop()
        mail.stop()
        for task in tasks:
            task.cancel()
        # A read cancelled inside the Redis client has been seen to linger: never let it hold up shutdown.
        # The reloader is not cancelled: it finishes its reload (a cancelled one strands its connection).
        await asyncio.wait([*tasks, reloader], timeout=5.0)
        await keyring.stop()
        with contextlib.suppress(Exception):
            await recorder.drain()
        geoip.close()
        await http.close()
        await listener_redis.aclose()
        await services.close()


def _client_ip_resolver(settings: Settings) -> Callable[[str | None, object], str]:
    trusted = settings.trusted_proxies
    gateway = settings.gateway

    def resolve(peer: str | None, headers) -> str:  # type: ignore[no-untyped-def]
        return client_ip(peer, headers, trusted, gateway)

    return resolve

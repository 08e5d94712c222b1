"""Wiring of the identity API: login, accounts, captcha, Auth0, mail and the public configuration.

Part of the composition root (``authz/app.py`` calls it); the identity package itself knows nothing of
settings or of the decision endpoint.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable

import aiohttp
from aiohttp import web

from authz.keys import SigningKey
from authz.services import Services
from authz.settings import Settings
from identity.account_rules import AccountRules
from identity.accounts import AccountService
from identity.activity_log import ClientInfo, UserActivityLog
from identity.auth0 import Auth0Verifier
from identity.bearer import BearerVerifier
from identity.captcha import Captcha
from identity.http.context import IdentityContext
from identity.http.general import PublicConfig
from identity.http.resource.context import RESOURCE, ResourceContext
from identity.labels import SqlLabelRepository
from identity.login import LoginService
from identity.mail import Mailer, MailTemplates, RedisMailQueue, transport_for
from identity.notifications import Notifier
from identity.password_policy import PasswordPolicy
from identity.throttle import LoginThrottle
from identity.tokens import AccountTokens
from identity.whitelinks import RedisWhitelinkTokens


def public_config(settings: Settings) -> PublicConfig:
    """What ``/identity/configs`` and ``/public/configs`` tell front ends."""
    captcha_id = {"recaptcha": settings.recaptcha_site_key, "geetest": settings.geetest_id}.get(
        settings.captcha
    )
    return PublicConfig(
        session_expire_time=settings.session_expire_time,
        captcha_type=settings.captcha,
        captcha_id=captcha_id or None,
        phone_verification_type=None,
        auth0_domain=settings.auth0_domain,
        auth0_client_id=settings.auth0_client_id,
        version=package_version(),
    )


def package_version() -> str:
    try:
        return importlib.metadata.version("authz")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def mailer(settings: Settings, services: Services, clock: Callable[[], float]) -> Mailer:
    """The mail queue and its delivery: SMTP when ``AUTHZ_SMTP_URL`` is set, else ``<data dir>/outbox/``."""
    return Mailer(
        RedisMailQueue(services.redis, settings.redis_namespace),
        transport_for(
            settings.smtp_url,
            settings.data_dir,
            tls=settings.smtp_tls,
            validate_certs=settings.smtp_validate_certs,
            timeout=settings.smtp_timeout,
        ),
        MailTemplates(settings.default_language),
        sender=settings.mail_sender,
        app_name=settings.app_name,
        max_attempts=settings.mail_max_attempts,
        retry_delay=settings.mail_retry_delay,
        clock=clock,
    )


def identity_context(
    settings: Settings,
    services: Services,
    signing_key: SigningKey,
    mailer: Mailer,
    http: aiohttp.ClientSession,
    client_info: Callable[[web.Request], ClientInfo],
    clock: Callable[[], float],
) -> IdentityContext:
    """The identity API's services: login, accounts, captcha, Auth0, mail."""
    rules = AccountRules.load(settings.account_rules_file)
    activity = UserActivityLog(services.activities)
    notifier = Notifier(
        mailer,
        frontend_url=settings.frontend_url,
        email_token_hours=max(1, settings.email_token_expire_time // 3600),
        reset_token_hours=max(1, settings.reset_token_expire_time // 3600),
    )
    throttle = LoginThrottle(
        services.redis,
        namespace=settings.redis_namespace,
        max_ip=settings.login_max_attempts_ip,
        max_account=settings.login_max_attempts_account,
        window=settings.login_attempts_window,
    )
    login = LoginService(
        services.users,
        services.sessions,
        activity,
        throttle,
        services.box,
        clock,
        notifier=notifier,
        rules=rules,
    )
    tokens = AccountTokens(
        services.redis,
        namespace=settings.redis_namespace,
        private_key=signing_key.private_key,
        kid=signing_key.kid,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        email_ttl=settings.email_token_expire_time,
        reset_ttl=settings.reset_token_expire_time,
        clock=clock,
    )
    accounts = AccountService(
        users=services.users,
        permissions=services.permissions,
        restrictions=services.restrictions,
        sessions=services.sessions,
        login=login,
        activity=activity,
        tokens=tokens,
        whitelinks=RedisWhitelinkTokens(services.redis, settings.redis_namespace),
        notifier=notifier,
        passwords=PasswordPolicy(settings.password_min_entropy),
        rules=rules,
        changes=services.changes,
        uid_prefix=settings.uid_prefix,
        first_registration_superadmin=settings.first_registration_superadmin,
        clock=clock,
    )
    captcha = Captcha(
        settings.captcha,
        settings.captcha_protected_endpoints,
        http,
        recaptcha_secret_key=settings.recaptcha_secret_key,
        recaptcha_verify_url=settings.recaptcha_verify_url,
        geetest_id=settings.geetest_id,
        geetest_key=settings.geetest_key,
        geetest_api_url=settings.geetest_api_url,
        timeout=settings.captcha_timeout,
    )
    auth0 = Auth0Verifier(
        http,
        domain=settings.auth0_domain,
        client_id=settings.auth0_client_id,
        jwks_url=settings.auth0_jwks_url,
        issuer=settings.auth0_issuer,
        timeout=settings.captcha_timeout,
        clock=clock,
    )
    return IdentityContext(
        login=login,
        accounts=accounts,
        users=services.users,
        labels=SqlLabelRepository(services.engine),
        captcha=captcha,
        auth0=auth0,
        client_info=client_info,
        cookie_name=settings.session_cookie,
        cookie_secure=settings.session_cookie_secure,
    )


def install_resource_api(
    app: web.Application,
    settings: Settings,
    services: Services,
    signing_key: SigningKey,
    mailer: Mailer,
    http: aiohttp.ClientSession,
    client_info: Callable[[web.Request], ClientInfo],
    clock: Callable[[], float],
) -> None:
    """The resource API's services, each under its area's app key."""
    rules = AccountRules.load(settings.account_rules_file)
    app[RESOURCE] = ResourceContext(
        bearer=BearerVerifier(
            {signing_key.kid: signing_key.private_key.public_key()},
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            clock=clock,
        ),
        users=services.users,
        labels=SqlLabelRepository(services.engine),
        activities=services.activities,
        activity=UserActivityLog(services.activities),
        sessions=services.sessions,
        changes=services.changes,
        box=services.box,
        rules=rules,
        client_info=client_info,
        clock=clock,
        masking=settings.api_data_masking,
    )
    # --- account, labels, profiles, data storage ---
    # --- OTP, API keys ---
    # --- service accounts ---
    # --- phones, documents ---

"""Wiring of the identity API: login, accounts, captcha, Auth0, mail and the public configuration.

Part of the composition root (``authz/app.py`` calls it); the identity package itself knows nothing of
settings or of the decision endpoint.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from authz.keys import Keyring
from authz.services import Services
from authz.settings import PROJECT_ROOT, Settings
from identity.access_tokens import AccessTokens
from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules
from identity.accounts import AccountService
from identity.activity_log import ClientInfo, UserActivityLog
from identity.api_key_service import ApiKeyService
from identity.auth0 import Auth0Verifier
from identity.bearer import BearerVerifier
from identity.callers import Permits, UpstreamCallers
from identity.captcha import Captcha
from identity.data_storage import SqlDataStorageRepository
from identity.documents import DocumentService, SqlDocumentRepository
from identity.http.context import IDENTITY, IdentityContext
from identity.http.financelime.context import FINANCELIME, FinancelimeContext
from identity.http.general import PublicConfig
from identity.http.resource.account import ACCOUNT
from identity.http.resource.api_keys import API_KEYS
from identity.http.resource.context import RESOURCE, ResourceContext
from identity.http.resource.documents import DOCUMENTS, UPLOADS
from identity.http.resource.labels import LABELS
from identity.http.resource.otp import OTP
from identity.http.resource.phones import PHONES
from identity.http.resource.service_accounts import SERVICE_ACCOUNTS
from identity.http.responses import ACCOUNT_RECORDS, AccountRecords
from identity.labels import PublicLabels, SqlLabelRepository
from identity.login import LoginService
from identity.mail import Mailer, MailTemplates, RedisMailQueue, transport_for
from identity.notifications import Notifier
from identity.otp_service import OtpService
from identity.password_policy import PasswordPolicy
from identity.phones import PhoneService, RedisPhoneCodes, SqlPhoneRepository
from identity.profiles import SqlProfileRepository
from identity.self_service import AccountSelfService
from identity.send_throttle import Limit, SendThrottle
from identity.service_accounts import OwnedServiceAccounts
from identity.signups import SignupService
from identity.sms import OutboxSmsSender, SmsSender, TwilioSmsSender
from identity.throttle import LoginThrottle
from identity.token_sessions import TokenSessionService
from identity.tokens import AccountTokens
from identity.two_factor import TotpChecker
from identity.uploads import UploadStore
from identity.user_records import UserRecordsReader
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


@functools.cache
def build_label(configured: str) -> str:
    """``GET /v1/version``'s build: the configured one, else the checkout's commit and its date.

    An installed copy has no checkout (its site-packages may lie in some other repository): "unknown".
    """
    if configured:
        return configured
    if not (PROJECT_ROOT / ".git").exists():
        return "unknown"
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "log", "-1", "--format=%h [%cd]", "--date=format-local:%Y-%m-%d_%H:%M:%S"],
            capture_output=True,
            text=True,
            timeout=2,
            env={"TZ": "UTC", "PATH": os.environ.get("PATH", "")},
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def install_token_api(
    app: web.Application,
    settings: Settings,
    services: Services,
    tokens: AccessTokens,
    parts: AccountParts,
    client_info: Callable[[web.Request], ClientInfo],
    clock: Callable[[], float],
) -> None:
    """The Financelime-compatible token API (needs the identity and resource contexts installed first)."""
    app[FINANCELIME] = FinancelimeContext(
        signups=SignupService(
            engine=services.engine,
            users=services.users,
            sessions=services.sessions,
            redis=services.redis,
            namespace=settings.redis_namespace,
            activity=parts.activity,
            notifier=parts.notifier,
            confirmations=parts.confirmations,
            resets=parts.resets,
            rules=parts.rules,
            invite_required=settings.invite_code_required,
            signup_ttl=settings.email_token_expire_time,
            reset_ttl=settings.reset_token_expire_time,
            clock=clock,
        ),
        tokens=TokenSessionService(services.sessions, tokens, services.users, app[IDENTITY].login, clock),
        callers=app[RESOURCE].callers,
        client_info=client_info,
        version=package_version(),
        build=build_label(settings.build),
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


@dataclass(frozen=True)
class AccountParts:
    """What the identity, resource and token APIs share: the account rules, the activity log, the mails and
    the throttles of the mails asked for an address (a limit holds across both APIs)."""

    rules: AccountRules
    activity: UserActivityLog
    notifier: Notifier
    confirmations: SendThrottle
    resets: SendThrottle


def mail_throttle(settings: Settings, services: Services, purpose: str) -> SendThrottle:
    """The ``email.<purpose>`` limiter of each address, and ``ip.mail``: one budget for a client's mails."""
    window = settings.mail_requests_window
    return SendThrottle(
        services.redis,
        namespace=settings.redis_namespace,
        recipient=Limit(f"email.{purpose}", settings.mail_max_requests_address, window),
        ip=Limit("ip.mail", settings.mail_max_requests_ip, window),
        error_key="identity.user.too_many_requests",
    )


def account_parts(settings: Settings, services: Services, mailer: Mailer) -> AccountParts:
    """The rules file (checked at start-up), the user activity log, and the account e-mails with their links
    and throttles."""
    return AccountParts(
        rules=AccountRules.load(settings.account_rules_file),
        activity=UserActivityLog(services.activities),
        notifier=Notifier(
            mailer,
            frontend_url=settings.frontend_url,
            email_token_hours=max(1, settings.email_token_expire_time // 3600),
            reset_token_hours=max(1, settings.reset_token_expire_time // 3600),
            api_url=settings.api_url,
        ),
        confirmations=mail_throttle(settings, services, "confirmation"),
        resets=mail_throttle(settings, services, "reset"),
    )


def identity_context(
    settings: Settings,
    services: Services,
    keyring: Keyring,
    parts: AccountParts,
    http: aiohttp.ClientSession,
    client_info: Callable[[web.Request], ClientInfo],
    clock: Callable[[], float],
) -> IdentityContext:
    """The identity API's services: login, accounts, captcha, Auth0, mail."""
    rules, activity, notifier = parts.rules, parts.activity, parts.notifier
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
        signer=keyring.current,
        public_keys=keyring.public_keys,
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
        confirmations=parts.confirmations,
        resets=parts.resets,
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
    keyring: Keyring,
    parts: AccountParts,
    http: aiohttp.ClientSession,
    client_info: Callable[[web.Request], ClientInfo],
    clock: Callable[[], float],
    permits: Permits,
) -> None:
    """The resource API's services, each under its area's app key.

    ``permits`` is the decision endpoint's permission table (read live, so reloads apply): the resource,
    admin and token APIs hold their own requests to it, whatever credential the upstream JWT came from.
    """
    rules = parts.rules
    app[RESOURCE] = ResourceContext(
        callers=UpstreamCallers(
            BearerVerifier(
                keyring.public_keys,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                clock=clock,
            ),
            services.users,
            services.sessions,
            services.api_keys,
            permits,
            clock=clock,
        ),
        users=services.users,
        client_info=client_info,
        clock=clock,
        cookie_name=settings.session_cookie,
        masking=settings.api_data_masking,
    )
    totp = TotpChecker(services.users, services.box, clock)
    propagation = AccountPropagation(services.engine, services.changes)

    app[ACCOUNT_RECORDS] = AccountRecords(
        SqlProfileRepository(services.engine),
        SqlDataStorageRepository(services.engine),
        UserRecordsReader(services.engine),
        masking=settings.api_data_masking,
    )
    app[LABELS] = PublicLabels(services.engine, services.changes)
    app[ACCOUNT] = AccountSelfService(
        users=services.users,
        activities=services.activities,
        activity=parts.activity,
        sessions=services.sessions,
        totp=totp,
        propagation=propagation,
        changes=services.changes,
        notifier=parts.notifier,
        passwords=PasswordPolicy(settings.password_min_entropy),
        rules=rules,
    )

    app[API_KEYS] = ApiKeyService(services.api_keys, totp, services.changes)
    app[OTP] = OtpService(
        users=services.users,
        box=services.box,
        totp=totp,
        sessions=services.sessions,
        changes=services.changes,
        propagation=propagation,
        activity=parts.activity,
        rules=rules,
        issuer=settings.app_name,
    )

    app[SERVICE_ACCOUNTS] = OwnedServiceAccounts(services.service_accounts, app[API_KEYS])

    sms: SmsSender = OutboxSmsSender(settings.data_dir / "outbox" / "sms")
    if settings.sms_sender == "twilio":
        sms = TwilioSmsSender(
            http,
            base_url=settings.twilio_url,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_phone_number,
        )
    app[PHONES] = PhoneService(
        SqlPhoneRepository(services.engine),
        RedisPhoneCodes(
            services.redis,
            settings.redis_namespace,
            expire_time=settings.phone_code_expire_time,
            resend_interval=settings.phone_code_resend_interval,
            clock=clock,
        ),
        sms,
        services.users,
        propagation,
        rules,
        throttle=SendThrottle(
            services.redis,
            namespace=settings.redis_namespace,
            recipient=Limit("phone.code", settings.sms_max_requests_number, settings.sms_requests_window),
            ip=Limit("ip.sms", settings.sms_max_requests_ip, settings.sms_requests_window),
            error_key="resource.phone.too_many_requests",
        ),
        template=settings.sms_content_template,
        app_name=settings.app_name,
        clock=clock,
    )
    app[UPLOADS] = UploadStore(
        settings.data_dir / "uploads",
        max_size=settings.upload_max_size,
        content_types=settings.upload_content_types,
    )
    app[DOCUMENTS] = DocumentService(
        SqlDocumentRepository(services.engine), app[UPLOADS], limit=settings.upload_max_files
    )

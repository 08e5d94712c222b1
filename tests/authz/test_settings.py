"""Settings from the environment: defaults, conversions, ``*_FILE`` secrets, every problem reported at once."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from authz.settings import (
    DEFAULT_TRUSTED_PROXIES,
    ENVIRONMENT_VARIABLES,
    Settings,
    SettingsError,
    embedded_database,
    load_settings,
)
from tests.identity.helpers import jwt_key_pem

ENCRYPTION_KEY = base64.b64encode(bytes(range(32))).decode()


def problems_of(env: dict[str, str], **overrides: Any) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env, **overrides)
    assert str(caught.value).startswith("invalid configuration:")
    for problem in caught.value.problems:
        assert problem in str(caught.value)
    return caught.value.problems


def test_defaults_follow_barong_where_barong_has_the_setting(tmp_path: Path) -> None:
    settings = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path)})
    assert settings.session_expire_time == 1800
    assert settings.session_cookie == "_barong_session"
    assert settings.csrf_protection is True
    assert settings.apikey_nonce_lifetime == 5000
    assert settings.gateway == "cloudflare"
    assert settings.uid_prefix == "ID"
    assert settings.jwt_issuer == "barong"
    assert settings.jwt_audience == ("peatio", "barong")


def test_defaults_where_we_differ_from_barong(tmp_path: Path) -> None:
    settings = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path)})
    assert settings.jwt_expire_time == 300  # Barong: 3600, for every JWT it issues
    assert settings.session_cookie_secure is True
    assert settings.apikey_nonce_replay == "reject" and settings.nonce_replay_rejected
    assert (settings.login_max_attempts_ip, settings.login_max_attempts_account) == (20, 10)
    assert settings.login_attempts_window == 300
    assert settings.trusted_proxies == tuple(ipaddress.ip_network(n) for n in DEFAULT_TRUSTED_PROXIES)


def test_the_service_listens_on_this_machine_only_unless_told_otherwise() -> None:
    # A fresh install promotes its first sign-up to superadmin: not something to offer the network unasked.
    assert load_settings(env={}).host == "127.0.0.1"
    assert load_settings(env={"AUTHZ_HOST": "0.0.0.0"}).host == "0.0.0.0"


def test_embedded_default_needs_no_database_or_redis_configured(tmp_path: Path) -> None:
    settings = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path / "data")})
    assert settings.database_url == f"sqlite:///{(tmp_path / 'data' / 'authz.sqlite3').resolve()}"
    assert settings.redis_url == ""
    assert settings.jwt_private_key == "" and settings.encryption_key == ""


def test_the_embedded_database_is_the_data_dirs_unless_a_url_is_configured(tmp_path: Path) -> None:
    from_env = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path / "data")})
    overridden = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path / "other")}, data_dir=tmp_path / "data")
    expected = (tmp_path / "data" / "authz.sqlite3").resolve()
    assert embedded_database(from_env) == embedded_database(overridden) == expected
    configured = load_settings(env={"DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}"})
    assert embedded_database(configured) is None
    assert not (tmp_path / "data").exists()  # settings find the database; they create nothing


def test_nothing_but_the_given_mapping_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHZ_PORT", "not a port")
    assert load_settings(env={}).port == 8080


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("AUTHZ_SESSION_EXPIRE_TIME", " 600 ", "session_expire_time", 600),
        ("AUTHZ_SESSION_COOKIE", "sid", "session_cookie", "sid"),
        ("AUTHZ_CSRF_PROTECTION", "false", "csrf_protection", False),
        ("AUTHZ_CSRF_PROTECTION", "TRUE", "csrf_protection", True),
        ("AUTHZ_SESSION_COOKIE_SECURE", "0", "session_cookie_secure", False),
        ("AUTHZ_APIKEY_NONCE_LIFETIME", "30000", "apikey_nonce_lifetime", 30000),
        ("AUTHZ_APIKEY_NONCE_REPLAY", "Allow", "apikey_nonce_replay", "allow"),
        ("AUTHZ_GATEWAY", "akamai", "gateway", "akamai"),
        ("AUTHZ_JWT_EXPIRE_TIME", "3600", "jwt_expire_time", 3600),
        ("AUTHZ_JWT_AUDIENCE", "peatio, , finex", "jwt_audience", ("peatio", "finex")),
        ("AUTHZ_REDIS_TIMEOUT", "0.25", "redis_timeout", 0.25),
        ("AUTHZ_UID_PREFIX", "idx", "uid_prefix", "IDX"),
        ("AUTHZ_PORT", "65535", "port", 65535),
        ("AUTHZ_GRPC_PORT", "9191", "grpc_port", 9191),
        ("AUTHZ_GRPC_PORT", "0", "grpc_port", 0),
        ("AUTHZ_LOG_LEVEL", "DEBUG", "log_level", "debug"),
        ("DATABASE_URL", "postgresql://u@db/authz", "database_url", "postgresql://u@db/authz"),
        ("REDIS_URL", "unix:///run/redis.sock", "redis_url", "unix:///run/redis.sock"),
        ("AUTHZ_ENCRYPTION_KEY", ENCRYPTION_KEY, "encryption_key", ENCRYPTION_KEY),
        ("AUTHZ_ENCRYPTION_KEY", "ab" * 32, "encryption_key", "ab" * 32),
    ],
)
def test_variables_are_converted(variable: str, raw: str, field: str, expected: object) -> None:
    assert getattr(load_settings(env={variable: raw}), field) == expected


def test_every_variable_has_a_setting_and_an_empty_value_means_the_default() -> None:
    assert load_settings(env=dict.fromkeys(ENVIRONMENT_VARIABLES, "")) == load_settings(env={})
    fields = set(Settings.__dataclass_fields__)
    assert {"data_dir", "database_url", "redis_url", "session_cookie", "trusted_proxies"} <= fields


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("AUTHZ_SESSION_EXPIRE_TIME", "30m", "must be a whole number"),
        ("AUTHZ_SESSION_EXPIRE_TIME", "0", "must be greater than 0"),
        ("AUTHZ_APIKEY_NONCE_LIFETIME", "-5", "must be greater than 0"),
        ("AUTHZ_CSRF_PROTECTION", "maybe", "must be true or false"),
        ("AUTHZ_GATEWAY", "nginx", "must be one of cloudflare, akamai"),
        ("AUTHZ_APIKEY_NONCE_REPLAY", "sometimes", "must be one of reject, allow"),
        ("AUTHZ_PORT", "70000", "port number"),
        ("AUTHZ_GRPC_PORT", "-1", "0 (off) or a port number"),
        ("AUTHZ_REDIS_TIMEOUT", "fast", "must be a number"),
        ("AUTHZ_JWT_AUDIENCE", " , ", "at least one"),
        ("AUTHZ_UID_PREFIX", "A", "2 to 6 letters"),
        ("AUTHZ_UID_PREFIX", "ID_", "2 to 6 letters"),
        ("AUTHZ_SESSION_COOKIE", "my session", "cookie name"),
        ("AUTHZ_SESSION_COOKIE", "sid;Domain=evil", "cookie name"),
        ("AUTHZ_GEOIP_DB", "/nonexistent/GeoLite2-Country.mmdb", "no such file"),
        ("AUTHZ_RULES_FILE", "/nonexistent/authz_rules.yml", "no such file"),
        ("AUTHZ_POLICIES_DIR", "/nonexistent", "no such directory"),
        ("AUTHZ_LOG_LEVEL", "verbose", "must be one of"),
    ],
)
def test_invalid_value_is_reported_with_the_variable_and_the_reason(
    variable: str, raw: str, reason: str
) -> None:
    [problem] = problems_of({variable: raw})
    assert problem.startswith(f"{variable}={raw!r}: ")
    assert reason in problem


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("DATABASE_URL", "mysql://root:hunter2@db/authz", "must be a sqlite:/// or postgresql:// URL"),
        ("REDIS_URL", "http://:hunter2@cache:6379", "must be a redis://, rediss:// or unix:// URL"),
        ("AUTHZ_ENCRYPTION_KEY", "hunter2", "must be 32 bytes, base64 or hex encoded"),
        ("AUTHZ_JWT_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\nhunter2\n", "not a PEM private key"),
    ],
)
def test_invalid_secret_is_reported_without_its_value(variable: str, raw: str, reason: str) -> None:
    [problem] = problems_of({variable: raw})
    assert problem == f"{variable}: {reason}"
    assert "hunter2" not in problem


def test_jwt_key_must_be_rsa_of_at_least_2048_bits() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    assert problems_of({"AUTHZ_JWT_PRIVATE_KEY": pem}) == [
        "AUTHZ_JWT_PRIVATE_KEY: must be an RSA private key of at least 2048 bits"
    ]
    assert load_settings(env={"AUTHZ_JWT_PRIVATE_KEY": jwt_key_pem()}).jwt_private_key == jwt_key_pem()


def test_every_problem_is_reported_at_once() -> None:
    env = {
        "AUTHZ_SESSION_EXPIRE_TIME": "soon",
        "AUTHZ_CSRF_PROTECTION": "perhaps",
        "AUTHZ_GATEWAY": "nginx",
        "AUTHZ_TRUSTED_PROXIES": "10.0.0.0/8, not-a-network",
        "DATABASE_URL": "mysql://db",
        "AUTHZ_PORT": "0",
        "AUTHZ_SESSION_COOKIE": "a b",  # and some good ones, which must not be reported
        "AUTHZ_JWT_EXPIRE_TIME": "60",
        "AUTHZ_UID_PREFIX": "BX",
    }
    problems = problems_of(env, no_such_setting=1)
    reported = [problem.split("=")[0].split(":")[0] for problem in problems]
    assert reported == [
        "DATABASE_URL",
        "AUTHZ_SESSION_EXPIRE_TIME",
        "AUTHZ_SESSION_COOKIE",
        "AUTHZ_CSRF_PROTECTION",
        "AUTHZ_GATEWAY",
        "AUTHZ_TRUSTED_PROXIES",
        "AUTHZ_PORT",
        "unknown setting 'no_such_setting'",
    ]


# --- secrets from files ------------------------------------------------------------------------------


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgresql://authz:s3cret@db/authz\n")
    (tmp_path / "redis").write_text("rediss://:s3cret@cache:6380/2")
    (tmp_path / "enc").write_text(ENCRYPTION_KEY + "\n")
    (tmp_path / "jwt").write_text(jwt_key_pem())
    settings = load_settings(
        env={
            "DATABASE_URL_FILE": str(tmp_path / "db"),
            "REDIS_URL_FILE": str(tmp_path / "redis"),
            "AUTHZ_ENCRYPTION_KEY_FILE": str(tmp_path / "enc"),
            "AUTHZ_JWT_PRIVATE_KEY_FILE": str(tmp_path / "jwt"),
        }
    )
    assert settings.database_url == "postgresql://authz:s3cret@db/authz"
    assert settings.redis_url == "rediss://:s3cret@cache:6380/2"
    assert settings.encryption_key == ENCRYPTION_KEY
    assert settings.jwt_private_key == jwt_key_pem().strip()


def test_secret_and_its_file_both_set_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("postgresql://db/authz")
    problems = problems_of(
        {"DATABASE_URL": "postgresql://db/other", "DATABASE_URL_FILE": str(tmp_path / "db")}
    )
    assert problems == ["DATABASE_URL and DATABASE_URL_FILE are both set; set only one"]


def test_secret_files_that_cannot_be_used_are_reported_with_their_variable(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "bad-key").write_text("hunter2")
    env = {
        "DATABASE_URL_FILE": str(tmp_path / "missing"),
        "REDIS_URL_FILE": str(tmp_path / "empty"),
        "AUTHZ_JWT_PRIVATE_KEY_FILE": str(tmp_path / "binary"),
        "AUTHZ_ENCRYPTION_KEY_FILE": str(tmp_path / "bad-key"),
    }
    assert problems_of(env) == [
        f"DATABASE_URL_FILE ({tmp_path / 'missing'}): cannot read the file: No such file or directory",
        f"REDIS_URL_FILE ({tmp_path / 'empty'}): the file is empty",
        f"AUTHZ_JWT_PRIVATE_KEY_FILE ({tmp_path / 'binary'}): the file is not UTF-8 text",
        f"AUTHZ_ENCRYPTION_KEY_FILE ({tmp_path / 'bad-key'}): must be 32 bytes, base64 or hex encoded",
    ]


def test_file_variant_is_only_read_for_secrets(tmp_path: Path) -> None:
    (tmp_path / "port").write_text("9999")
    assert load_settings(env={"AUTHZ_PORT_FILE": str(tmp_path / "port")}).port == 8080


# --- trusted proxies ---------------------------------------------------------------------------------


def test_trusted_proxies_parse_ipv4_and_ipv6_ranges_and_single_addresses() -> None:
    settings = load_settings(env={"AUTHZ_TRUSTED_PROXIES": " 10.1.0.0/16,2001:db8::/32 , 192.0.2.7,,::1 "})
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.1.0.0/16"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("::1/128"),
    )


def test_trusted_proxy_with_host_bits_set_means_its_network() -> None:
    settings = load_settings(env={"AUTHZ_TRUSTED_PROXIES": "172.16.5.4/12"})
    assert settings.trusted_proxies == (ipaddress.ip_network("172.16.0.0/12"),)


def test_every_bad_trusted_proxy_is_named() -> None:
    [problem] = problems_of({"AUTHZ_TRUSTED_PROXIES": "10.0.0.0/8, 10.0.0.0/33, proxy.local, 2001:db8::/129"})
    assert problem.endswith("not CIDR ranges: 10.0.0.0/33, proxy.local, 2001:db8::/129")
    assert problem.startswith("AUTHZ_TRUSTED_PROXIES=")


def test_no_trusted_proxies_at_all_can_be_configured() -> None:
    assert load_settings(env={"AUTHZ_TRUSTED_PROXIES": ","}).trusted_proxies == ()


# --- identity API settings ---------------------------------------------------------------------------

RECAPTCHA_KEYS = {"AUTHZ_RECAPTCHA_SITE_KEY": "site-key", "AUTHZ_RECAPTCHA_SECRET_KEY": "secret-key"}


def test_identity_defaults() -> None:
    settings = load_settings(env={})
    assert settings.app_name == "Barong"
    assert settings.frontend_url == "http://localhost:8080"
    assert settings.first_registration_superadmin is True
    assert settings.account_rules_file.name == "barong.yml" and settings.account_rules_file.is_file()
    assert settings.default_language == "en"
    assert settings.password_min_entropy == 20.0
    assert (settings.email_token_expire_time, settings.reset_token_expire_time) == (86_400, 3600)
    assert settings.captcha == "none"
    assert settings.captcha_protected_endpoints == (
        "user_create",
        "session_create",
        "password_reset",
        "email_confirmation",
    )
    assert settings.recaptcha_verify_url == "https://www.google.com/recaptcha/api/siteverify"
    assert settings.geetest_api_url == "https://api.geetest.com"
    assert (settings.auth0_domain, settings.auth0_client_id) == ("", "")
    assert (settings.smtp_url, settings.smtp_tls, settings.smtp_validate_certs) == ("", "auto", True)
    assert settings.mail_sender == "Barong <noreply@barong.local>"
    assert (settings.mail_max_attempts, settings.mail_retry_delay) == (8, 5.0)


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"AUTHZ_FRONTEND_URL": " https://exchange.example/ "}, "frontend_url", "https://exchange.example"),
        ({"AUTHZ_FRONTEND_URL": "http://localhost:3000/app"}, "frontend_url", "http://localhost:3000/app"),
        ({"AUTHZ_SMTP_URL": "smtps://u:pw@mail.example:465"}, "smtp_url", "smtps://u:pw@mail.example:465"),
        ({"AUTHZ_SMTP_URL": "smtp://mail"}, "smtp_url", "smtp://mail"),
        ({"AUTHZ_MAIL_SENDER": "noreply@example.com"}, "mail_sender", "noreply@example.com"),
        ({"AUTHZ_MAIL_SENDER": " Exchange <no@ex.io> "}, "mail_sender", "Exchange <no@ex.io>"),
        ({"AUTHZ_DEFAULT_LANGUAGE": "RU"}, "default_language", "ru"),
        ({"AUTHZ_CAPTCHA": "none"}, "captcha", "none"),
        ({"AUTHZ_CAPTCHA": "ReCaptcha", **RECAPTCHA_KEYS}, "captcha", "recaptcha"),
        (
            {"AUTHZ_CAPTCHA_PROTECTED_ENDPOINTS": "session_create, user_create"},
            "captcha_protected_endpoints",
            ("session_create", "user_create"),
        ),
        ({"AUTHZ_PASSWORD_MIN_ENTROPY": "0"}, "password_min_entropy", 0.0),
        ({"AUTHZ_PASSWORD_MIN_ENTROPY": "32.5"}, "password_min_entropy", 32.5),
        ({"AUTHZ_FIRST_REGISTRATION_SUPERADMIN": "no"}, "first_registration_superadmin", False),
        ({"AUTHZ_SMTP_TLS": "STARTTLS"}, "smtp_tls", "starttls"),
        ({"AUTHZ_RESET_TOKEN_EXPIRE_TIME": "900"}, "reset_token_expire_time", 900),
    ],
)
def test_identity_variables_are_converted(env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(env=env), field) == expected


def test_account_rules_file_is_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text("activation_requirements: {email: verified, phone: verified}\n")
    assert load_settings(env={"AUTHZ_ACCOUNT_RULES_FILE": str(path)}).account_rules_file == path


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("AUTHZ_FRONTEND_URL", "ftp://exchange.example", "must be an http:// or https:// URL"),
        ("AUTHZ_FRONTEND_URL", "exchange.example", "must be an http:// or https:// URL"),
        ("AUTHZ_FRONTEND_URL", "https://", "must be an http:// or https:// URL"),
        ("AUTHZ_RECAPTCHA_VERIFY_URL", "google.com", "must be an http:// or https:// URL"),
        ("AUTHZ_MAIL_SENDER", "Barong", "must be an e-mail address"),
        ("AUTHZ_MAIL_SENDER", "Barong <noreply>", "must be an e-mail address"),
        ("AUTHZ_MAIL_SENDER", "a@b.io\nBcc: victim@example.com", "must be an e-mail address"),
        ("AUTHZ_DEFAULT_LANGUAGE", "english", "two-letter language code"),
        ("AUTHZ_DEFAULT_LANGUAGE", "en-US", "two-letter language code"),
        ("AUTHZ_DEFAULT_LANGUAGE", "e1", "two-letter language code"),
        ("AUTHZ_CAPTCHA", "hcaptcha", "must be one of none, recaptcha, geetest"),
        ("AUTHZ_CAPTCHA_PROTECTED_ENDPOINTS", "user_create, login", "unknown endpoints login (known: user_"),
        ("AUTHZ_PASSWORD_MIN_ENTROPY", "-1", "must not be negative"),
        ("AUTHZ_PASSWORD_MIN_ENTROPY", "strong", "must be a number"),
        ("AUTHZ_EMAIL_TOKEN_EXPIRE_TIME", "0", "must be greater than 0"),
        ("AUTHZ_SMTP_TLS", "ssl", "must be one of auto, starttls, none"),
        ("AUTHZ_ACCOUNT_RULES_FILE", "/nonexistent/barong.yml", "no such file"),
    ],
)
def test_invalid_identity_value_is_reported_with_the_variable(variable: str, raw: str, reason: str) -> None:
    [problem] = problems_of({variable: raw})
    assert problem.startswith(f"{variable}={raw!r}: ")
    assert reason in problem


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("state_triggers:\n  banned: ban\n", "state_triggers.banned must be a list of label keys"),
        ("activation_requirements: [email]\n", "activation_requirements must map label keys to values"),
        ("[a, b]\n", "must be a mapping"),
        ("state_triggers: {banned: [ban\n", "cannot read"),
    ],
)
def test_malformed_account_rules_file_is_reported(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "barong.yml"
    path.write_text(text)
    [problem] = problems_of({"AUTHZ_ACCOUNT_RULES_FILE": str(path)})
    assert problem.startswith(f"AUTHZ_ACCOUNT_RULES_FILE={str(path)!r}: ")
    assert reason in problem


SMTP_SHAPE = "must be an smtp://host[:port] or smtps://host[:port] URL"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("http://user:hunter2@mail.example", SMTP_SHAPE),
        ("hunter2", SMTP_SHAPE),
        ("smtp://user:hunter2@:25", SMTP_SHAPE),
        ("smtp://user:hunter2@mail.example:99999", "has an invalid port"),
        ("smtp://user:hunter2@mail.example:port", "has an invalid port"),
    ],
)
def test_invalid_smtp_url_is_reported_without_its_value(raw: str, reason: str) -> None:
    assert problems_of({"AUTHZ_SMTP_URL": raw}) == [f"AUTHZ_SMTP_URL: {reason}"]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        pytest.param(
            {"AUTHZ_CAPTCHA": "recaptcha"},
            ["AUTHZ_RECAPTCHA_SECRET_KEY", "AUTHZ_RECAPTCHA_SITE_KEY"],
            id="recaptcha-without-keys",
        ),
        pytest.param(
            {"AUTHZ_CAPTCHA": "recaptcha", "AUTHZ_RECAPTCHA_SITE_KEY": "site"},
            ["AUTHZ_RECAPTCHA_SECRET_KEY"],
            id="recaptcha-without-secret",
        ),
        pytest.param(
            {"AUTHZ_CAPTCHA": "recaptcha", "AUTHZ_RECAPTCHA_SECRET_KEY": "secret"},
            ["AUTHZ_RECAPTCHA_SITE_KEY"],
            id="recaptcha-without-site-key",
        ),
        pytest.param({"AUTHZ_CAPTCHA": "geetest"}, ["AUTHZ_GEETEST_ID", "AUTHZ_GEETEST_KEY"], id="geetest"),
        pytest.param(
            {"AUTHZ_CAPTCHA": "geetest", "AUTHZ_GEETEST_ID": "id", **RECAPTCHA_KEYS},
            ["AUTHZ_GEETEST_KEY"],
            id="geetest-with-recaptcha-keys",
        ),
    ],
)
def test_captcha_provider_needs_its_keys(env: dict[str, str], missing: list[str]) -> None:
    assert problems_of(env) == [f"{variable} must be set (AUTHZ_CAPTCHA needs it)" for variable in missing]


def test_auth0_domain_needs_a_client_id() -> None:
    assert problems_of({"AUTHZ_AUTH0_DOMAIN": "tenant.eu.auth0.com"}) == [
        "AUTHZ_AUTH0_CLIENT_ID must be set (AUTHZ_AUTH0_DOMAIN needs it)"
    ]


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"AUTHZ_CAPTCHA": "recaptcha", **RECAPTCHA_KEYS}, id="recaptcha"),
        pytest.param(
            {"AUTHZ_CAPTCHA": "geetest", "AUTHZ_GEETEST_ID": "i", "AUTHZ_GEETEST_KEY": "k"}, id="geetest"
        ),
        pytest.param({"AUTHZ_AUTH0_DOMAIN": "t.auth0.com", "AUTHZ_AUTH0_CLIENT_ID": "cid"}, id="auth0"),
        pytest.param({"AUTHZ_CAPTCHA": "none", "AUTHZ_RECAPTCHA_SITE_KEY": "unused"}, id="keys-no-captcha"),
        pytest.param({"AUTHZ_AUTH0_CLIENT_ID": "cid"}, id="client-id-without-domain"),
    ],
)
def test_complete_provider_settings_are_accepted(env: dict[str, str]) -> None:
    load_settings(env=env)


def test_companion_may_come_from_an_override() -> None:
    env = {"AUTHZ_CAPTCHA": "recaptcha"}
    settings = load_settings(env=env, recaptcha_site_key="s", recaptcha_secret_key="k")
    assert (settings.recaptcha_site_key, settings.recaptcha_secret_key) == ("s", "k")


def test_identity_problems_are_reported_together_with_the_others() -> None:
    env = {
        "AUTHZ_PORT": "0",
        "AUTHZ_FRONTEND_URL": "exchange.example",
        "AUTHZ_DEFAULT_LANGUAGE": "english",
        "AUTHZ_CAPTCHA": "geetest",
        "AUTHZ_CAPTCHA_PROTECTED_ENDPOINTS": "login",
        "AUTHZ_PASSWORD_MIN_ENTROPY": "-3",
        "AUTHZ_SMTP_URL": "http://mail",
        "AUTHZ_MAIL_SENDER": "nobody",
        "AUTHZ_AUTH0_DOMAIN": "t.auth0.com",
        "AUTHZ_GEETEST_ID": "id",  # good ones are not reported
        "AUTHZ_APP_NAME": "Exchange",
    }
    problems = problems_of(env)
    reported = [problem.split("=")[0].split(":")[0].split(" ")[0] for problem in problems]
    assert reported == [
        "AUTHZ_FRONTEND_URL",
        "AUTHZ_DEFAULT_LANGUAGE",
        "AUTHZ_PASSWORD_MIN_ENTROPY",
        "AUTHZ_CAPTCHA_PROTECTED_ENDPOINTS",
        "AUTHZ_SMTP_URL",
        "AUTHZ_MAIL_SENDER",
        "AUTHZ_PORT",
        "AUTHZ_GEETEST_KEY",  # the companions come last, after every variable's own check
        "AUTHZ_AUTH0_CLIENT_ID",
    ]


def test_identity_secrets_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "smtp").write_text("smtps://mailer:s3cret@mail.example:465\n")
    (tmp_path / "recaptcha").write_text("recaptcha-secret\n")
    (tmp_path / "geetest").write_text("geetest-key")
    settings = load_settings(
        env={
            "AUTHZ_CAPTCHA": "recaptcha",
            "AUTHZ_RECAPTCHA_SITE_KEY": "site-key",
            "AUTHZ_SMTP_URL_FILE": str(tmp_path / "smtp"),
            "AUTHZ_RECAPTCHA_SECRET_KEY_FILE": str(tmp_path / "recaptcha"),
            "AUTHZ_GEETEST_KEY_FILE": str(tmp_path / "geetest"),
        }
    )
    assert settings.smtp_url == "smtps://mailer:s3cret@mail.example:465"
    assert settings.recaptcha_secret_key == "recaptcha-secret"
    assert settings.geetest_key == "geetest-key"


def test_bad_secret_from_a_file_is_reported_without_its_value(tmp_path: Path) -> None:
    path = tmp_path / "smtp"
    path.write_text("https://mailer:hunter2@mail.example\n")
    [problem] = problems_of({"AUTHZ_SMTP_URL_FILE": str(path)})
    assert problem == f"AUTHZ_SMTP_URL_FILE ({path}): {SMTP_SHAPE}"
    assert "hunter2" not in problem


def test_unreadable_captcha_secret_file_is_reported_and_counts_as_missing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    problems = problems_of(
        {
            "AUTHZ_CAPTCHA": "recaptcha",
            "AUTHZ_RECAPTCHA_SITE_KEY": "site-key",
            "AUTHZ_RECAPTCHA_SECRET_KEY_FILE": str(missing),
        }
    )
    assert problems == [
        f"AUTHZ_RECAPTCHA_SECRET_KEY_FILE ({missing}): cannot read the file: No such file or directory",
        "AUTHZ_RECAPTCHA_SECRET_KEY must be set (AUTHZ_CAPTCHA needs it)",
    ]


@pytest.mark.parametrize(
    "variable", ["AUTHZ_FRONTEND_URL", "AUTHZ_CAPTCHA", "AUTHZ_MAIL_SENDER", "AUTHZ_RECAPTCHA_SITE_KEY"]
)
def test_file_variant_is_not_read_for_identity_settings_that_are_not_secret(
    tmp_path: Path, variable: str
) -> None:
    (tmp_path / "value").write_text("nonsense value")
    assert load_settings(env={f"{variable}_FILE": str(tmp_path / "value")}) == load_settings(env={})


@pytest.mark.parametrize("url", ["http://a", "https://auth.example.com:8443/base/", "http://127.0.0.1:9"])
def test_http_url_settings_accept_any_url_with_a_host(url: str) -> None:
    assert load_settings(env={"AUTHZ_FRONTEND_URL": url}).frontend_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["https:///x", "http://:80", "http://host:99999", "ftp://host", "host"])
def test_http_url_settings_refuse_urls_without_a_host(url: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"AUTHZ_FRONTEND_URL": url})
    assert caught.value.problems[0].startswith("AUTHZ_FRONTEND_URL=")


def test_grpc_port_must_differ_from_the_http_port() -> None:
    assert load_settings(env={}).grpc_port == 0  # off unless asked for
    with pytest.raises(SettingsError) as raised:
        load_settings(env={"AUTHZ_GRPC_PORT": "8080"})
    assert raised.value.problems == ["AUTHZ_GRPC_PORT (8080) must differ from AUTHZ_PORT"]
    assert load_settings(env={"AUTHZ_GRPC_PORT": "8080", "AUTHZ_PORT": "8081"}).grpc_port == 8080


def test_token_api_settings() -> None:
    defaults = load_settings(env={})
    assert (defaults.access_token_expire_time, defaults.refresh_token_expire_time) == (900, 2_592_000)
    assert defaults.invite_code_required is True
    changed = load_settings(
        env={
            "AUTHZ_ACCESS_TOKEN_EXPIRE_TIME": "300",
            "AUTHZ_REFRESH_TOKEN_EXPIRE_TIME": "3600",
            "AUTHZ_INVITE_CODE_REQUIRED": "false",
            "AUTHZ_API_URL": "https://api.example.com/",
            "AUTHZ_BUILD": "abc1234 [2026-12-03_12:00:00]",
        }
    )
    assert (changed.access_token_expire_time, changed.refresh_token_expire_time) == (300, 3600)
    assert changed.invite_code_required is False
    assert changed.api_url == "https://api.example.com"
    assert changed.build == "abc1234 [2026-12-03_12:00:00]"


def test_an_access_token_must_not_outlive_its_refresh_token() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(env={"AUTHZ_ACCESS_TOKEN_EXPIRE_TIME": "3600", "AUTHZ_REFRESH_TOKEN_EXPIRE_TIME": "600"})
    assert raised.value.problems == [
        "AUTHZ_ACCESS_TOKEN_EXPIRE_TIME (3600) must be shorter than AUTHZ_REFRESH_TOKEN_EXPIRE_TIME (600)"
    ]


SEND_THROTTLE_VARIABLES = {
    "AUTHZ_MAIL_MAX_REQUESTS_ADDRESS": "mail_max_requests_address",
    "AUTHZ_MAIL_MAX_REQUESTS_IP": "mail_max_requests_ip",
    "AUTHZ_MAIL_REQUESTS_WINDOW": "mail_requests_window",
    "AUTHZ_SMS_MAX_REQUESTS_NUMBER": "sms_max_requests_number",
    "AUTHZ_SMS_MAX_REQUESTS_IP": "sms_max_requests_ip",
    "AUTHZ_SMS_REQUESTS_WINDOW": "sms_requests_window",
}


def test_mail_and_sms_throttle_settings() -> None:
    fields = SEND_THROTTLE_VARIABLES.values()
    assert [getattr(load_settings(env={}), field) for field in fields] == [5, 20, 3600, 5, 10, 3600]
    env = {variable: f" {n + 1} " for n, variable in enumerate(SEND_THROTTLE_VARIABLES)}
    changed = load_settings(env=env)
    assert [getattr(changed, field) for field in fields] == [1, 2, 3, 4, 5, 6]


def test_mail_and_sms_throttle_settings_are_checked_together() -> None:
    env = dict.fromkeys(SEND_THROTTLE_VARIABLES, "0")
    env["AUTHZ_MAIL_REQUESTS_WINDOW"] = "1h"
    assert problems_of(env) == [
        f"{variable}={value!r}: {'must be a whole number' if value == '1h' else 'must be greater than 0'}"
        for variable, value in env.items()
    ]

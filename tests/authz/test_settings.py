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


def test_embedded_default_needs_no_database_or_redis_configured(tmp_path: Path) -> None:
    settings = load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path / "data")})
    assert settings.database_url == f"sqlite:///{(tmp_path / 'data' / 'authz.sqlite3').resolve()}"
    assert settings.redis_url == ""
    assert settings.jwt_private_key == "" and settings.encryption_key == ""


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

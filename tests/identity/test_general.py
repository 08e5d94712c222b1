"""Barong's general endpoints under every mount: ping, time, version, configs, auth0, password strength."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp import web

from authz.http.errors import json_errors
from identity.http.general import IDENTITY_PREFIXES, PUBLIC_PREFIXES, PublicConfig, add_routes
from identity.password_policy import PasswordPolicy

ALL_PREFIXES = IDENTITY_PREFIXES + PUBLIC_PREFIXES
NOW = 1700000000.75
REGEXP = r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$"

CONFIG = PublicConfig(
    session_expire_time=1800,
    captcha_type="none",
    captcha_id="site-key-unused",
    phone_verification_type="mock",
    auth0_domain="",
    auth0_client_id="",
    version="3.1.4",
)


async def client_for(aiohttp_client: Any, config: PublicConfig = CONFIG, min_entropy: float = 20) -> Any:
    app = web.Application()
    add_routes(app, config, PasswordPolicy(min_entropy), clock=lambda: NOW, wrap=json_errors)
    return await aiohttp_client(app)


async def json_of(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_ping_pongs(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    assert await json_of(await client.get(f"{prefix}/ping")) == {"ping": "pong"}


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_time_is_the_clocks_whole_seconds(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    assert await json_of(await client.get(f"{prefix}/time")) == {"time": 1700000000}


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_version_drops_unknown_build_fields(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    assert await json_of(await client.get(f"{prefix}/version")) == {"version": "3.1.4"}


async def test_version_reports_build_fields_when_known(aiohttp_client: Any) -> None:
    config = dataclasses.replace(
        CONFIG, git_sha="1f488179", git_tag="v3.1.4", build_date="2024-05-01T12:00:00+00:00"
    )
    client = await client_for(aiohttp_client, config)
    assert await json_of(await client.get("/api/v2/barong/identity/version")) == {
        "git_tag": "v3.1.4",
        "git_sha": "1f488179",
        "build_date": "2024-05-01T12:00:00+00:00",
        "version": "3.1.4",
    }


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_configs_without_captcha_has_no_captcha_id(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client, min_entropy=25)
    assert await json_of(await client.get(f"{prefix}/configs")) == {
        "session_expire_time": 1800,
        "captcha_type": "none",
        "phone_verification_type": "mock",
        "password_min_entropy": 25,
        "password_entropy_unit": "bits",
        "password_regexp": REGEXP,
    }


@pytest.mark.parametrize("captcha", ["recaptcha", "geetest"])
@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_configs_with_captcha_reports_its_id(aiohttp_client: Any, prefix: str, captcha: str) -> None:
    config = dataclasses.replace(CONFIG, captcha_type=captcha, captcha_id=f"{captcha}-id")
    client = await client_for(aiohttp_client, config)
    body = await json_of(await client.get(f"{prefix}/configs"))
    assert body["captcha_type"] == captcha
    assert body["captcha_id"] == f"{captcha}-id"


async def test_configs_drops_unset_phone_verification(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, dataclasses.replace(CONFIG, phone_verification_type=None))
    body = await json_of(await client.get("/api/v2/public/configs"))
    assert "phone_verification_type" not in body
    assert body["session_expire_time"] == 1800


@pytest.mark.parametrize("prefix", PUBLIC_PREFIXES)
async def test_auth0_config_is_empty_when_auth0_is_not_set(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    assert await json_of(await client.get(f"{prefix}/configs/auth0")) == {}


@pytest.mark.parametrize("prefix", PUBLIC_PREFIXES)
async def test_auth0_config_when_set(aiohttp_client: Any, prefix: str) -> None:
    config = dataclasses.replace(CONFIG, auth0_domain="example.eu.auth0.com", auth0_client_id="cl1ent")
    client = await client_for(aiohttp_client, config)
    assert await json_of(await client.get(f"{prefix}/configs/auth0")) == {
        "auth0_domain": "example.eu.auth0.com",
        "auth0_client_id": "cl1ent",
    }


@pytest.mark.parametrize("prefix", IDENTITY_PREFIXES)
async def test_auth0_config_is_not_under_identity(aiohttp_client: Any, prefix: str) -> None:
    config = dataclasses.replace(CONFIG, auth0_domain="example.eu.auth0.com", auth0_client_id="cl1ent")
    client = await client_for(aiohttp_client, config)
    response = await client.get(f"{prefix}/configs/auth0")
    assert response.status == 404


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_validate_password_from_json_answers_201_with_entropy(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    response = await client.post(f"{prefix}/password/validate", json={"password": "Tecohvi0"})
    assert await json_of(response, 201) == {"entropy": 26.58}


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_validate_password_from_form(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    response = await client.post(f"{prefix}/password/validate", data={"password": "Password1"})
    assert await json_of(response, 201) == {"entropy": 8.57}


async def test_validate_password_scores_a_weak_password_below_a_strong_one(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    path = "/api/v2/public/password/validate"
    weak = await json_of(await client.post(path, json={"password": "password"}), 201)
    strong = await json_of(await client.post(path, json={"password": "kX7#qL2m9Rz4"}), 201)
    assert weak["entropy"] < 20 <= strong["entropy"]


async def test_validate_long_password_answers_from_its_prefix(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client)
    path = "/api/v2/barong/identity/password/validate"
    long = "kX7#qL2m9Rz4" * 10_000  # 120,000 characters
    body = await json_of(await client.post(path, json={"password": long}), 201)
    assert body["entropy"] == PasswordPolicy().entropy(long[:32])


def _area(prefix: str) -> str:
    return "public" if prefix in PUBLIC_PREFIXES else "identity"


@pytest.mark.parametrize(
    "body, key",
    [
        ({}, "missing_password"),
        ({"password": None}, "missing_password"),
        ({"password": ""}, "empty_password"),
        ({"password": "   "}, "empty_password"),
        ({"password": 12345678}, "invalid_password"),
        ({"password": ["Tecohvi0"]}, "invalid_password"),
    ],
    ids=["absent", "null", "empty", "blank", "number", "list"],
)
@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_validate_password_rejects_bad_parameter_with_mount_key(
    aiohttp_client: Any, prefix: str, body: dict[str, Any], key: str
) -> None:
    client = await client_for(aiohttp_client)
    response = await client.post(f"{prefix}/password/validate", json=body)
    assert await json_of(response, 422) == {"errors": [f"{_area(prefix)}.password.{key}"]}


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_validate_password_with_empty_form_is_missing(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    response = await client.post(f"{prefix}/password/validate", data={"other": "x"})
    assert await json_of(response, 422) == {"errors": [f"{_area(prefix)}.password.missing_password"]}


@pytest.mark.parametrize("raw", [b"{not json", b'["password"]'], ids=["invalid", "not-an-object"])
@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_validate_password_with_malformed_json_is_400(
    aiohttp_client: Any, prefix: str, raw: bytes
) -> None:
    client = await client_for(aiohttp_client)
    response = await client.post(
        f"{prefix}/password/validate", data=raw, headers={"Content-Type": "application/json"}
    )
    assert await json_of(response, 400) == {"errors": ["request.invalid_json"]}


@pytest.mark.parametrize("path", ["ping", "time", "version", "configs"])
async def test_get_endpoints_answer_head(aiohttp_client: Any, path: str) -> None:
    client = await client_for(aiohttp_client)
    response = await client.head(f"/api/v2/public/{path}")
    assert response.status == 200


@pytest.mark.parametrize("prefix", ALL_PREFIXES)
async def test_password_validate_does_not_answer_get(aiohttp_client: Any, prefix: str) -> None:
    client = await client_for(aiohttp_client)
    response = await client.get(f"{prefix}/password/validate")
    assert response.status == 405

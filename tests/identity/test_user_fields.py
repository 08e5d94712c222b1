"""Sign-up field validation (Barong §4.2): every failing rule is reported, in the order email, username,
password, data."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from identity.password_policy import PasswordPolicy
from identity.user_fields import MAX_DATA, NewUserFields, data_text, validate_new_user

POLICY = PasswordPolicy(20)
STRONG = "Correct-Horse-Battery-9"
EMAIL = "alice@example.com"


def problems_of(
    email: str = EMAIL, password: str = STRONG, username: Any = None, data: Any = None
) -> list[str]:
    fields, problems = validate_new_user(email, password, username, data, POLICY)
    assert (fields is None) is bool(problems)
    return problems


# --- e-mail ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("alice@example.com", id="plain"),
        pytest.param("first.last+tag@mail.example.co.uk", id="dots-plus-subdomains"),
        pytest.param("o'brien!#$%&*=?^_`{|}~-@example.com", id="rfc5322-atext"),
        pytest.param("ALICE@EXAMPLE.COM", id="upper-case"),
        pytest.param("a@b-c.io", id="hyphen-in-host"),
        pytest.param("a@123.example.org", id="digit-label"),
        pytest.param("x" * 243 + "@example.com", id="255-chars"),
        pytest.param("a@" + "b" * 63 + ".com", id="63-char-label"),
    ],
)
def test_valid_email_is_accepted(email: str) -> None:
    assert problems_of(email=email) == []


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("", id="empty"),
        pytest.param("alice", id="no-at"),
        pytest.param("alice@", id="no-host"),
        pytest.param("@example.com", id="no-local-part"),
        pytest.param("alice@localhost", id="no-tld"),
        pytest.param("alice@example.c", id="one-letter-tld"),
        pytest.param("alice@example.123", id="numeric-tld"),
        pytest.param("alice@example.com.", id="trailing-dot"),
        pytest.param("alice@@example.com", id="double-at"),
        pytest.param("al ice@example.com", id="space-in-local-part"),
        pytest.param("alice@exa mple.com", id="space-in-host"),
        pytest.param("alice@example.com\nbob@example.com", id="newline"),
        pytest.param(".alice@example.com", id="leading-dot"),
        pytest.param("al..ice@example.com", id="double-dot"),
        pytest.param("alice@-example.com", id="label-starts-with-hyphen"),
        pytest.param("alice@example-.com", id="label-ends-with-hyphen"),
        pytest.param("alice@" + "b" * 64 + ".com", id="64-char-label"),
        pytest.param("x" * 244 + "@example.com", id="256-chars"),
        pytest.param("ålice@example.com", id="unicode-local-part"),
        pytest.param("alice@exämple.com", id="unicode-host"),
        pytest.param("alice@пример.рф", id="cyrillic-host"),
        pytest.param('"alice"@example.com', id="quoted-local-part"),
        pytest.param("alice@[127.0.0.1]", id="address-literal"),
    ],
)
def test_invalid_email_is_reported(email: str) -> None:
    assert problems_of(email=email) == ["email.invalid"]


def test_surrounding_whitespace_of_the_email_is_dropped() -> None:
    fields, problems = validate_new_user("  alice@example.com\n", STRONG, None, None, POLICY)
    assert problems == []
    assert fields is not None and fields.email == "alice@example.com"


# --- username ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "alice"),
        ("ALICE", "alice"),
        ("  Bob1  ", "bob1"),
        ("abcd", "abcd"),
        ("a" * 12, "a" * 12),
        ("1234", "1234"),
        (None, None),
        ("", None),
    ],
)
def test_valid_username_is_lower_cased(username: Any, expected: str | None) -> None:
    fields, problems = validate_new_user(EMAIL, STRONG, username, None, POLICY)
    assert problems == []
    assert fields is not None and fields.username == expected


@pytest.mark.parametrize(
    ("username", "problems"),
    [
        pytest.param("abc", ["username.too_short"], id="3-chars"),
        pytest.param(" abc ", ["username.too_short"], id="3-chars-after-strip"),
        pytest.param("a" * 13, ["username.too_long"], id="13-chars"),
        pytest.param("bad_name", ["username.invalid"], id="underscore"),
        pytest.param("bad name", ["username.invalid"], id="inner-space"),
        pytest.param("bad-nm", ["username.invalid"], id="hyphen"),
        pytest.param("ålice", ["username.invalid"], id="non-ascii-letter"),
        pytest.param("١٢٣٤", ["username.invalid"], id="non-ascii-digits"),
        pytest.param("a_b", ["username.too_short", "username.invalid"], id="short-and-invalid"),
        pytest.param("a-" * 7, ["username.too_long", "username.invalid"], id="long-and-invalid"),
        pytest.param("   ", ["username.too_short", "username.invalid"], id="only-spaces"),
        pytest.param(1234, ["username.invalid"], id="integer"),
        pytest.param(["alice"], ["username.invalid"], id="list"),
        pytest.param(True, ["username.invalid"], id="boolean"),
    ],
)
def test_invalid_username_is_reported(username: Any, problems: list[str]) -> None:
    assert problems_of(username=username) == problems


# --- password ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problems"),
    [
        ("short1A", ["password.requirements"]),
        ("nouppercase1", ["password.requirements"]),
        ("Password1", ["password.weak"]),
        (STRONG, []),
    ],
)
def test_password_is_checked_by_the_policy(password: str, problems: list[str]) -> None:
    assert problems_of(password=password) == problems


def test_password_built_on_the_username_is_weak() -> None:
    password = "Zebracorn7"
    assert problems_of(password=password) == []
    assert problems_of(password=password, username="zebracorn") == ["password.weak"]


def test_password_built_on_the_email_is_weak() -> None:
    password = "Zebracorn7"
    assert problems_of(email="zebracorn@example.com", password=password) == ["password.weak"]


# --- data --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty-string"),
        pytest.param('{"lang": "en"}', '{"lang": "en"}', id="json-object-text-kept-as-is"),
        pytest.param("[1, 2]", "[1, 2]", id="json-array-text"),
        pytest.param('"text"', '"text"', id="json-string-text"),
        pytest.param("42", "42", id="json-number-text"),
        pytest.param({"lang": "en", "n": 1}, '{"lang":"en","n":1}', id="dict-serialised"),
        pytest.param({}, "{}", id="empty-dict"),
        pytest.param([1, "a"], '[1,"a"]', id="list-serialised"),
        pytest.param('"' + "x" * (MAX_DATA - 2) + '"', '"' + "x" * (MAX_DATA - 2) + '"', id="1024-chars"),
    ],
)
def test_data_is_accepted_as_json_text(value: Any, text: str | None) -> None:
    assert data_text(value) == (text, [])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("{oops", "data.invalid_format", id="invalid-json"),
        pytest.param("lang=en", "data.invalid_format", id="not-json"),
        pytest.param("{'a': 1}", "data.invalid_format", id="python-repr"),
        pytest.param('"' + "x" * (MAX_DATA - 1) + '"', "data.too_long", id="1025-chars"),
        pytest.param("{" * 2000, "data.too_long", id="too-long-wins-over-invalid"),
        pytest.param({"blob": "x" * MAX_DATA}, "data.too_long", id="dict-too-long-once-serialised"),
        pytest.param(42, "data.invalid_format", id="integer"),
        pytest.param(1.5, "data.invalid_format", id="float"),
        pytest.param(True, "data.invalid_format", id="boolean"),
        pytest.param(b"{}", "data.invalid_format", id="bytes"),
    ],
)
def test_bad_data_is_reported(value: Any, problem: str) -> None:
    assert data_text(value) == (None, [problem])


def test_dict_data_is_stored_as_json_that_reads_back_the_same() -> None:
    data = {"lang": "fr", "nested": {"list": [1, 2, None]}, "ünï": "cödé"}
    fields, problems = validate_new_user(EMAIL, STRONG, None, data, POLICY)
    assert problems == [] and fields is not None
    assert fields.data is not None and orjson.loads(fields.data) == data


# --- all together ------------------------------------------------------------------------------------


def test_valid_fields_come_back_normalised() -> None:
    fields, problems = validate_new_user(" Alice@Example.com ", STRONG, " Alice1 ", {"a": 1}, POLICY)
    assert problems == []
    expected = NewUserFields(email="Alice@Example.com", password=STRONG, username="alice1", data='{"a":1}')
    assert fields == expected


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        pytest.param(
            dict(email="bad", password="short", username="a_b", data="{oops"),
            ["email.invalid", "username.too_short", "username.invalid", "password.requirements",
             "data.invalid_format"],
            id="everything-wrong",
        ),  # fmt: skip
        pytest.param(
            dict(email="bad", password=STRONG, username="alice", data=7),
            ["email.invalid", "data.invalid_format"],
            id="email-and-data",
        ),
        pytest.param(
            dict(email=EMAIL, password="Password1", username="a" * 13, data="x" * 2000),
            ["username.too_long", "password.weak", "data.too_long"],
            id="username-password-data",
        ),
        pytest.param(
            dict(email="a b@c.d", password="weakpass", username=None, data=None),
            ["email.invalid", "password.requirements"],
            id="email-and-password",
        ),
    ],
)
def test_every_problem_is_reported_in_field_order(fields: dict[str, Any], problems: list[str]) -> None:
    assert problems_of(**fields) == problems

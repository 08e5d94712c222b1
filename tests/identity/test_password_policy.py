"""Password policy: Barong's character rule, then zxcvbn's guesses (in bits) against a threshold.

Reference entropies were observed with zxcvbn 4.5; the tests assert bands around them, not exact values.
"""

from __future__ import annotations

import pytest

from identity.password_policy import (
    MAX_SCORED_CHARS,
    MIN_SCORED_CHARS,
    PasswordPolicy,
    _scored_prefix,
    meets_requirements,
)

POLICY = PasswordPolicy(min_entropy=20.0)

# Passwords failing the character rule: the rule is checked first, so even a strong one is rejected.
REQUIREMENT_FAILURES = [
    pytest.param("Ab1xyzw", id="7-chars"),
    pytest.param("Ab1" + "x" * 78, id="81-chars"),
    pytest.param("kXqLmRzwTvNb", id="no-digit"),
    pytest.param("kx7qlm9rz4wt", id="no-upper"),
    pytest.param("KX7QLM9RZ4WT", id="no-lower"),
    pytest.param("", id="empty"),
    pytest.param("kXqLmRzw²³①", id="superscripts-are-not-digits"),  # Ruby's [[:digit:]] is Nd only
    pytest.param("kx7ql 9rz4 ", id="spaces-are-not-upper"),
]

# Weak (rule met, under 20 bits), with the bits observed.
WEAK = [
    pytest.param("Password1", 8.57, id="Password1"),
    pytest.param("Qwerty123!", 14.26, id="Qwerty123!"),
    pytest.param("Abcdefg1", 13.47, id="Abcdefg1"),
    pytest.param("P@ssw0rd", 4.09, id="l33t-P@ssw0rd"),
    pytest.param("Aa1Aa1Aa1", 11.55, id="repeat"),
    pytest.param("Password1Password1", 9.57, id="repeated-word"),
]

# Strong (rule met, 20 bits or more), with the bits observed.
STRONG = [
    pytest.param("kX7#qL2m9Rz4", 39.86, id="random-12"),
    pytest.param("eeC2BiCucxWEQ", 43.19, id="eeC2BiCucxWEQ"),
    pytest.param("Tecohvi0", 26.58, id="Tecohvi0"),
    pytest.param("Tr0ub4dor&3", 36.54, id="Tr0ub4dor&3"),
    pytest.param("Ünïcödé1x", 29.9, id="unicode-letters"),
    pytest.param(("kX7#qL2m9Rz4" * 7)[:80], 0.0, id="80-chars"),  # the length limit is inclusive
]


@pytest.mark.parametrize("password", REQUIREMENT_FAILURES)
def test_password_breaking_the_rule_is_rejected_for_requirements(password: str) -> None:
    assert POLICY.problems(password) == ["password.requirements"]


@pytest.mark.parametrize(
    "password",
    ["Ünïcödé1x", "ÀÉÎõüç٣xyz", "Пароль2024й", "ΑβγδεζΗ9"],
    ids=["latin-1", "arabic-indic-digit", "cyrillic", "greek"],
)
def test_unicode_letters_and_digits_count_like_ruby_posix_classes(password: str) -> None:
    assert meets_requirements(password)


@pytest.mark.parametrize("password, bits", WEAK)
def test_weak_password_is_rejected_as_weak(password: str, bits: float) -> None:
    assert meets_requirements(password)
    assert POLICY.problems(password) == ["password.weak"]
    if bits:
        assert POLICY.entropy(password) == pytest.approx(bits, abs=0.5)


@pytest.mark.parametrize("password, bits", STRONG)
def test_strong_password_is_accepted(password: str, bits: float) -> None:
    assert POLICY.problems(password) == []
    assert POLICY.entropy(password) >= 20
    if bits:
        assert POLICY.entropy(password) == pytest.approx(bits, abs=0.5)


def test_threshold_is_the_policys() -> None:
    # Tecohvi0 scores ~26.6 bits: accepted at 20, weak at 30.
    assert PasswordPolicy(20).problems("Tecohvi0") == []
    assert PasswordPolicy(30).problems("Tecohvi0") == ["password.weak"]
    assert PasswordPolicy().min_entropy == 20.0


def test_entropy_is_rounded_to_two_decimals() -> None:
    bits = POLICY.entropy("kX7#qL2m9Rz4")
    assert bits == round(bits, 2)
    assert isinstance(bits, float)


@pytest.mark.parametrize(
    "password, inputs",
    [
        ("Zorblax1990!", ["zorblax@example.com"]),
        ("Qwixotl2024xQ", ["someone@example.com", "qwixotl"]),
        ("Quintrell77Kp", ["zorblax.quintrell@example.com"]),
        ("Zq.Blorft2024", ["zq.blorft@example.com"]),  # 39.9 bits alone, 31.1 with "blorft" only, 20.0
    ],
    ids=["local-part", "username", "piece-of-local-part", "whole-local-part"],
)
def test_user_inputs_lower_the_entropy_of_a_password_built_on_them(password: str, inputs: list[str]) -> None:
    assert POLICY.entropy(password, inputs) < POLICY.entropy(password) - 10


def test_password_built_on_the_email_becomes_weak() -> None:
    assert POLICY.problems("Quintrell77Kp") == []  # ~41.7 bits
    assert POLICY.problems("Quintrell77Kp", ["zorblax.quintrell@example.com"]) == ["password.weak"]  # ~20


def test_unrelated_user_inputs_change_nothing() -> None:
    assert POLICY.entropy("kX7#qL2m9Rz4", ["ada@example.org"]) == POLICY.entropy("kX7#qL2m9Rz4")


def test_megabyte_password_is_scored_on_a_prefix() -> None:
    huge = "kX7#qL2m9Rz4" + "a" * 1_000_000
    assert POLICY.problems(huge) == ["password.requirements"]  # over 80 characters
    assert POLICY.entropy(huge) == POLICY.entropy(huge[:MAX_SCORED_CHARS])
    assert _scored_prefix(huge) == huge[:MAX_SCORED_CHARS]


def test_prefix_shrinks_with_many_distinct_l33t_characters() -> None:
    # Every l33t character at once: ~700 readings, each a full dictionary scan, so a short prefix.
    l33t = "4@8({[<3691!|7$5+%2" * 3
    cut = len(_scored_prefix(l33t))
    assert MIN_SCORED_CHARS <= cut <= 12
    assert POLICY.entropy(l33t) == POLICY.entropy(l33t[:cut])
    # A plain random password keeps the whole budgeted prefix.
    assert len(_scored_prefix("kX7qLmRzwTvNbHpD" * 4)) == MAX_SCORED_CHARS


def test_regexp_text_is_barongs_default() -> None:
    assert POLICY.regexp_text == (
        r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$"
    )

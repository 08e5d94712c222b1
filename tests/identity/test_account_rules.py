"""Account rules (Barong's ``barong.yml``) and levels: the state and level a set of labels gives a user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authz.settings import PROJECT_ROOT
from identity.account_rules import AccountRules, level_for
from identity.models import Label, Level

DEFAULT_LEVELS = [
    Level(1, "email", "verified"),
    Level(2, "phone", "verified"),
    Level(3, "document", "verified"),
]
def labels(*specs: str) -> list[Label]:
    """``"email:verified"`` is a private label, ``"~ban:yes"`` a public one."""
    made = []
    for spec in specs:
        scope = "public" if spec.startswith("~") else "private"
        key, value = spec.lstrip("~").split(":")
        made.append(Label(key=key, value=value, scope=scope))
    return made


# --- state_for ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "state"),
    [
        pytest.param((), "pending", id="no-labels"),
        pytest.param(("email:verified",), "active", id="private-email-verified"),
        pytest.param(("~email:verified",), "pending", id="public-email-verified-does-not-activate"),
        pytest.param(("email:pending",), "pending", id="wrong-value"),
        pytest.param(("phone:verified",), "pending", id="other-key"),
        pytest.param(("email:verified", "phone:verified"), "active", id="extra-labels"),
        pytest.param(("email:verified", "ban:yes"), "banned", id="ban"),
        pytest.param(("email:verified", "~ban:yes"), "banned", id="public-ban"),
        pytest.param(("fraud:x",), "banned", id="fraud-on-pending"),
        pytest.param(("email:verified", "~delete:me"), "deleted", id="public-delete"),
        pytest.param(("email:verified", "suspicious:1"), "locked", id="suspicious"),
        pytest.param(("lock:x",), "locked", id="lock"),
        pytest.param(("ban:x", "delete:x"), "deleted", id="deleted-after-banned-wins"),
        pytest.param(("delete:x", "ban:x"), "deleted", id="label-order-does-not-matter"),
        pytest.param(("ban:x", "lock:x"), "locked", id="locked-after-banned-wins"),
        pytest.param(("ban:x", "delete:x", "~lock:x"), "locked", id="last-trigger-wins"),
        pytest.param(("banned:x", "locked:x"), "pending", id="state-names-are-not-trigger-keys"),
    ],
)
def test_default_rules_give_the_state(held: tuple[str, ...], state: str) -> None:
    assert AccountRules().state_for(labels(*held)) == state


@pytest.mark.parametrize(
    ("held", "state"),
    [
        (("email:verified",), "pending"),
        (("email:verified", "~phone:verified"), "pending"),
        (("email:verified", "phone:verified"), "active"),
    ],
)
def test_every_activation_requirement_must_be_a_private_label(held: tuple[str, ...], state: str) -> None:
    rules = AccountRules(activation_requirements=(("email", "verified"), ("phone", "verified")))
    assert rules.state_for(labels(*held)) == state


def test_no_activation_requirements_make_every_account_active() -> None:
    assert AccountRules(activation_requirements=()).state_for([]) == "active"


@pytest.mark.parametrize(
    ("held", "state"),
    [
        (("lock:x",), "locked"),
        (("ban:x",), "banned"),
        (("ban:x", "lock:x"), "banned"),  # banned comes later here, so it wins
    ],
)
def test_later_trigger_overrides_earlier_in_the_rules_order(held: tuple[str, ...], state: str) -> None:
    rules = AccountRules(
        state_triggers=(("locked", frozenset({"lock"})), ("banned", frozenset({"ban"}))),
    )
    assert rules.state_for(labels(*held)) == state


def test_state_for_accepts_any_iterable_of_labels() -> None:
    assert AccountRules().state_for(iter(labels("email:verified", "~lock:x"))) == "locked"


# --- level_for ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "level"),
    [
        pytest.param((), 0, id="none"),
        pytest.param(("email:verified",), 1, id="email"),
        pytest.param(("email:verified", "phone:verified"), 2, id="email-phone"),
        pytest.param(("email:verified", "phone:verified", "document:verified"), 3, id="all"),
        pytest.param(("document:verified", "phone:verified", "email:verified"), 3, id="label-order"),
        pytest.param(("email:verified", "document:verified"), 1, id="gap-stops"),
        pytest.param(("phone:verified", "document:verified"), 0, id="no-first-level"),
        pytest.param(("email:verified", "~phone:verified"), 1, id="public-label-does-not-count"),
        pytest.param(("~email:verified",), 0, id="public-only"),
        pytest.param(("email:verified", "phone:pending"), 1, id="wrong-value"),
        pytest.param(("email:verified", "ban:x", "phone:verified"), 2, id="other-labels-ignored"),
    ],
)
def test_level_is_the_last_consecutive_private_level(held: tuple[str, ...], level: int) -> None:
    assert level_for(DEFAULT_LEVELS, labels(*held)) == level


def test_levels_are_taken_in_id_order_whatever_order_they_come_in() -> None:
    shuffled = [DEFAULT_LEVELS[2], DEFAULT_LEVELS[0], DEFAULT_LEVELS[1]]
    assert level_for(shuffled, labels("email:verified", "phone:verified")) == 2
    assert level_for(shuffled, labels("email:verified", "document:verified")) == 1


def test_level_is_the_id_of_the_last_level_reached_not_a_count() -> None:
    sparse = [Level(10, "email", "verified"), Level(20, "phone", "verified"), Level(35, "doc", "verified")]
    assert level_for(sparse, labels("email:verified", "phone:verified")) == 20


def test_no_levels_means_level_zero() -> None:
    assert level_for([], labels("email:verified")) == 0


# --- parse / load ------------------------------------------------------------------------------------


def test_parse_lower_cases_keys_and_values() -> None:
    rules = AccountRules.parse(
        {
            "activation_requirements": {"Email": "Verified", "phone": "OK"},
            "state_triggers": {"banned": ["BAN"]},
        }
    )
    assert rules.activation_requirements == (("email", "verified"), ("phone", "ok"))
    assert rules.state_triggers == (("banned", frozenset({"ban"})),)


def test_parse_keeps_the_order_of_the_state_triggers() -> None:
    rules = AccountRules.parse({"state_triggers": {"locked": ["lock"], "banned": ["ban"], "deleted": []}})
    assert [state for state, _keys in rules.state_triggers] == ["locked", "banned", "deleted"]
    assert rules.state_for(labels("lock:x", "ban:x")) == "banned"


def test_activation_requirements_default_to_email_verified() -> None:
    assert AccountRules.parse({"state_triggers": {}}).activation_requirements == (("email", "verified"),)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(["email"], "rules.yml: must be a mapping", id="list"),
        pytest.param("email: verified", "rules.yml: must be a mapping", id="string"),
        pytest.param(
            {"activation_requirements": ["email"]},
            "rules.yml: activation_requirements must map label keys to values",
            id="requirements-list",
        ),
        pytest.param(
            {"activation_requirements": None},
            "rules.yml: activation_requirements must map label keys to values",
            id="requirements-null",
        ),
        pytest.param(
            {"state_triggers": ["ban"]},
            "rules.yml: state_triggers must map states to lists of label keys",
            id="triggers-list",
        ),
        pytest.param(
            {"state_triggers": {"banned": "ban"}},
            "rules.yml: state_triggers.banned must be a list of label keys",
            id="trigger-string",
        ),
        pytest.param(
            {"state_triggers": {"banned": ["ban", 7]}},
            "rules.yml: state_triggers.banned must be a list of label keys",
            id="trigger-not-all-strings",
        ),
        pytest.param(
            {"activation_requirements": "email", "state_triggers": {"banned": "ban", "locked": {"lock": 1}}},
            "rules.yml: activation_requirements must map label keys to values; "
            "state_triggers.banned must be a list of label keys; "
            "state_triggers.locked must be a list of label keys",
            id="every-problem-at-once",
        ),
    ],
)
def test_malformed_document_is_refused_with_what_is_wrong(document: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        AccountRules.parse(document, source="rules.yml")
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("activation_requirements: [email]\n", "activation_requirements must map label keys to values"),
        ("state_triggers:\n  banned: ban\n", "state_triggers.banned must be a list of label keys"),
        ("- just\n- a list\n", "must be a mapping"),
        ("state_triggers: {banned: [ban\n", "cannot read"),
    ],
)
def test_loading_a_malformed_file_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "barong.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as caught:
        AccountRules.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_loading_a_missing_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        AccountRules.load(tmp_path / "absent.yml")


def test_shipped_barong_yml_loads_to_the_barong_defaults() -> None:
    loaded = AccountRules.load(PROJECT_ROOT / "policies" / "barong.yml")
    assert loaded == AccountRules()
    assert loaded.activation_requirements == (("email", "verified"),)
    assert loaded.state_triggers == (
        ("banned", frozenset({"ban", "fraud"})),
        ("deleted", frozenset({"delete"})),
        ("locked", frozenset({"suspicious", "lock"})),
    )


def test_rules_without_state_triggers_keep_barongs_and_an_empty_mapping_means_none() -> None:
    assert AccountRules.parse({}).state_triggers == AccountRules().state_triggers
    assert AccountRules.parse({"activation_requirements": {"email": "verified"}}) == AccountRules()
    assert AccountRules.parse({"state_triggers": {}}).state_triggers == ()

"""Labels drive level and state (Barong §4.7): ``SqlUserRepository.put_label`` over the real ``labels`` and
``levels`` tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from identity.account_rules import AccountRules
from identity.labels import SqlLabelRepository, SqlLevelRepository
from identity.models import Level

RULES = AccountRules()


def label_specs(*specs: str) -> list[tuple[str, str, str]]:
    """``"email:verified"`` is a private label, ``"~ban:yes"`` a public one."""
    made = []
    for spec in specs:
        scope = "public" if spec.startswith("~") else "private"
        key, value = spec.lstrip("~").split(":")
        made.append((key, value, scope))
    return made


async def test_migration_seeds_barongs_three_levels(services: Any) -> None:
    assert await SqlLevelRepository(services.engine).list_all() == [
        Level(1, "email", "verified", "User clicked on the confirmation link"),
        Level(2, "phone", "verified", "User has verified a phone number"),
        Level(3, "document", "verified", "User has verified identity documents"),
    ]


@pytest.mark.parametrize(
    ("specs", "state", "level"),
    [
        pytest.param(("email:verified",), "active", 1, id="email-activates"),
        pytest.param(("email:verified", "phone:verified"), "active", 2, id="phone-level-2"),
        pytest.param(("email:verified", "phone:verified", "document:verified"), "active", 3, id="level-3"),
        pytest.param(("email:verified", "document:verified"), "active", 1, id="document-without-phone"),
        pytest.param(("phone:verified",), "pending", 0, id="phone-without-email"),
        pytest.param(("email:pending",), "pending", 0, id="wrong-value"),
        pytest.param(("email:verified", "~phone:verified"), "active", 1, id="public-phone-ignored"),
        pytest.param(("~email:verified",), "pending", 0, id="public-email-ignored"),
        pytest.param(("email:verified", "ban:fraudster"), "banned", 1, id="private-ban"),
        pytest.param(("email:verified", "fraud:yes"), "banned", 1, id="private-fraud"),
        pytest.param(("email:verified", "lock:yes"), "locked", 1, id="private-lock"),
        pytest.param(("email:verified", "ban:yes", "delete:yes"), "deleted", 1, id="later-trigger-wins"),
        # Public labels do not recompute, but they count as triggers when a private label next does.
        pytest.param(("~ban:yes", "email:verified"), "banned", 1, id="public-ban-then-private-label"),
    ],
)
async def test_labels_set_state_and_level(
    services: Any, make_user: Any, specs: tuple[str, ...], state: str, level: int
) -> None:
    account = await make_user(state="pending")
    user = account.user
    for key, value, scope in label_specs(*specs):
        updated = await services.users.put_label(user.uid, key, value, scope, RULES)
        assert updated is not None
        user = updated
    assert (user.state, user.level) == (state, level)
    assert await services.users.get_by_uid(user.uid) == user


async def test_public_label_alone_does_not_recompute_state_or_level(services: Any, make_user: Any) -> None:
    account = await make_user(state="pending")
    for key in ("ban", "email"):
        user = await services.users.put_label(account.user.uid, key, "verified", "public", RULES)
        assert user is not None
        assert (user.state, user.level) == ("pending", 0)


async def test_private_label_change_overrides_a_manual_state(services: Any, make_user: Any) -> None:
    account = await make_user(state="banned")  # as if an admin had banned the user by hand
    user = await services.users.put_label(account.user.uid, "email", "verified", "private", RULES)
    assert user is not None and (user.state, user.level) == ("active", 1)


async def test_changing_a_label_value_recomputes(services: Any, make_user: Any) -> None:
    account = await make_user(state="pending")
    uid = account.user.uid
    await services.users.put_label(uid, "email", "verified", "private", RULES)
    await services.users.put_label(uid, "phone", "verified", "private", RULES)
    user = await services.users.put_label(uid, "email", "rejected", "private", RULES)
    assert user is not None and (user.state, user.level) == ("pending", 0)


async def test_same_key_and_scope_twice_overwrites_the_value(services: Any, make_user: Any) -> None:
    account = await make_user(state="pending")
    uid, user_id = account.user.uid, account.user.id
    await services.users.put_label(uid, "document", "pending", "private", RULES)
    await services.users.put_label(uid, "document", "verified", "private", RULES)
    await services.users.put_label(uid, "document", "public-note", "public", RULES)
    held = await SqlLabelRepository(services.engine).for_user(user_id)
    assert sorted((label.key, label.value, label.scope) for label in held) == [
        ("document", "public-note", "public"),
        ("document", "verified", "private"),
    ]
    private = next(label for label in held if label.scope == "private")
    assert private.updated_at is not None and private.created_at is not None
    assert private.updated_at >= private.created_at


async def test_labels_belong_to_their_user(services: Any, make_user: Any) -> None:
    first, second = await make_user(state="pending"), await make_user(state="pending")
    await services.users.put_label(first.user.uid, "email", "verified", "private", RULES)
    assert await SqlLabelRepository(services.engine).for_user(second.user.id) == []
    untouched = await services.users.get_by_uid(second.user.uid)
    assert untouched is not None and (untouched.state, untouched.level) == ("pending", 0)


async def test_unknown_uid_gives_none_and_writes_nothing(services: Any) -> None:
    assert await services.users.put_label("ID0000000000", "email", "verified", "private", RULES) is None
    assert await services.users.count() == 0


async def test_concurrent_labels_on_one_user_all_land(services: Any, make_user: Any) -> None:
    account = await make_user(state="pending")
    uid = account.user.uid
    specs = label_specs("email:verified", "phone:verified", "document:verified", "lock:yes", "note:vip")
    await asyncio.gather(*(services.users.put_label(uid, k, v, s, RULES) for k, v, s in specs))
    held = await SqlLabelRepository(services.engine).for_user(account.user.id)
    assert sorted((label.key, label.value, label.scope) for label in held) == sorted(specs)
    user = await services.users.get_by_uid(uid)
    assert user is not None and (user.state, user.level) == ("locked", 3)

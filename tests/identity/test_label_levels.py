"""Labels drive level and state (Barong §4.7): ``SqlUserRepository.put_label`` over the real ``labels`` and
``levels`` tables, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from identity.account_rules import AccountRules
from identity.labels import SqlLabelRepository, SqlLevelRepository
from identity.models import Level, User
from tests.authz.helpers import password_digest

RULES = AccountRules()


async def new_user(services: Any, state: str = "pending") -> User:
    """A user made through the repository (the shared password hash: these tests never log in)."""
    return await services.users.create(
        email=f"u{uuid.uuid4().hex[:10]}@example.com", password_digest=password_digest(), state=state
    )


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


# (labels put in this order, state and level afterwards); "~" marks a public label.
STATE_AND_LEVEL = [
    (("email:verified",), "active", 1),
    (("email:verified", "phone:verified"), "active", 2),
    (("email:verified", "phone:verified", "document:verified"), "active", 3),
    (("email:verified", "document:verified"), "active", 1),  # no phone: level stays 1
    (("phone:verified",), "pending", 0),
    (("email:pending",), "pending", 0),
    (("email:verified", "~phone:verified"), "active", 1),
    (("~email:verified",), "pending", 0),
    (("email:verified", "ban:fraudster"), "banned", 1),
    (("email:verified", "fraud:yes"), "banned", 1),
    (("email:verified", "lock:yes"), "locked", 1),
    (("email:verified", "ban:yes", "delete:yes"), "deleted", 1),  # the later trigger wins
    # Public labels do not recompute, but they count as triggers when a private label next does.
    (("~ban:yes", "email:verified"), "banned", 1),
]


async def test_labels_set_state_and_level(services: Any) -> None:
    """One user per row of the table (in one database: the fixtures cost more than the rows)."""
    for specs, state, level in STATE_AND_LEVEL:
        user: User | None = await new_user(services)
        for key, value, scope in label_specs(*specs):
            assert user is not None
            user = await services.users.put_label(user.uid, key, value, scope, RULES)
        assert user is not None
        assert (user.state, user.level) == (state, level), specs
        assert await services.users.get_by_uid(user.uid) == user, specs


async def test_public_label_alone_does_not_recompute_state_or_level(services: Any) -> None:
    user = await new_user(services)
    for key in ("ban", "email"):
        user = await services.users.put_label(user.uid, key, "verified", "public", RULES)
        assert user is not None
        assert (user.state, user.level) == ("pending", 0)


async def test_private_label_change_overrides_a_manual_state(services: Any) -> None:
    user = await new_user(services, state="banned")  # as if an admin had banned the user by hand
    user = await services.users.put_label(user.uid, "email", "verified", "private", RULES)
    assert user is not None and (user.state, user.level) == ("active", 1)


async def test_changing_a_label_value_recomputes(services: Any) -> None:
    user = await new_user(services)
    uid = user.uid
    await services.users.put_label(uid, "email", "verified", "private", RULES)
    await services.users.put_label(uid, "phone", "verified", "private", RULES)
    user = await services.users.put_label(uid, "email", "rejected", "private", RULES)
    assert user is not None and (user.state, user.level) == ("pending", 0)


async def test_same_key_and_scope_twice_overwrites_the_value(services: Any) -> None:
    user = await new_user(services)
    uid, user_id = user.uid, user.id
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


async def test_labels_belong_to_their_user(services: Any) -> None:
    first, second = await new_user(services), await new_user(services)
    await services.users.put_label(first.uid, "email", "verified", "private", RULES)
    assert await SqlLabelRepository(services.engine).for_user(second.id) == []
    untouched = await services.users.get_by_uid(second.uid)
    assert untouched is not None and (untouched.state, untouched.level) == ("pending", 0)


async def test_unknown_uid_gives_none_and_writes_nothing(services: Any) -> None:
    assert await services.users.put_label("ID0000000000", "email", "verified", "private", RULES) is None
    assert await services.users.count() == 0


async def test_concurrent_labels_on_one_user_all_land(services: Any) -> None:
    user = await new_user(services)
    uid = user.uid
    specs = label_specs("email:verified", "phone:verified", "document:verified", "lock:yes", "note:vip")
    await asyncio.gather(*(services.users.put_label(uid, k, v, s, RULES) for k, v, s in specs))
    held = await SqlLabelRepository(services.engine).for_user(user.id)
    assert sorted((label.key, label.value, label.scope) for label in held) == sorted(specs)
    user = await services.users.get_by_uid(uid)
    assert user is not None and (user.state, user.level) == ("locked", 3)

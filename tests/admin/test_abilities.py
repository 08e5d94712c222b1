"""Admin abilities: the abilities file, its start-up check, and the ability every admin route demands.

The table ``ROUTES`` gives the ability each admin endpoint needs (barong-behavior.md §8.3 and §7; our
deliberate differences: ``POST /profiles`` needs ``create Profile``, every endpoint but ``/abilities`` checks
one).  The app's registered routes are compared with it, so a new route cannot go unchecked; then every
role of ``policies/abilities.yml``, ``member`` and a role without any permission call every route, and
exactly the roles without the ability are refused, after the roles that the permission table
(``policies/permissions.yml``) refuses the request, as the gateway would have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from authz.app import build_app
from authz.authorizer import build_permission_enforcer, reference_decide
from authz.canonical import canonical_path
from authz.settings import ABILITIES_MODEL, SettingsError, load_settings
from identity.admin.abilities import ACTIONS, SUBJECTS, Abilities, AbilitiesFileError, parse_abilities
from identity.errors import AbilityDenied
from identity.permissions_file import parse_permissions
from tests.admin.conftest import ADMIN, ADMIN_ALIAS, GHOST
from tests.identity.helpers import login, with_cookie

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ABILITIES_FILE = POLICIES / "abilities.yml"
PREFIXES = (ADMIN, ADMIN_ALIAS)
NOT_PERMITTED = {"errors": ["admin.ability.not_permitted"]}
INVALID_PERMISSION = {"errors": ["authz.invalid_permission"]}

#: (method, path under the admin prefix) → the (action, subject) it needs; None: any signed-in user.
ROUTES: dict[tuple[str, str], tuple[str, str] | None] = {
    ("GET", "/users"): ("read", "User"),
    ("PUT", "/users"): ("update", "User"),
    ("POST", "/users/update"): ("update", "User"),
    ("POST", "/users/role"): ("update", "User"),
    ("GET", "/users/{uid}"): ("read", "User"),
    ("GET", "/users/documents/pending"): ("read", "User"),
    ("GET", "/users/labels/list"): ("read", "User"),
    ("GET", "/users/labels"): ("read", "User"),
    ("POST", "/users/labels"): ("create", "Label"),
    ("POST", "/users/labels/update"): ("update", "Label"),
    ("PUT", "/users/labels"): ("update", "Label"),
    ("DELETE", "/users/labels"): ("destroy", "Label"),
    ("DELETE", "/users/data_storage"): ("destroy", "User"),
    ("GET", "/api_keys"): ("read", "APIKey"),
    ("GET", "/activities"): ("read", "Activity"),
    ("GET", "/activities/admin"): ("read", "Activity"),
    ("GET", "/metrics"): ("read", "User"),
    ("GET", "/permissions"): ("read", "Permission"),
    ("POST", "/permissions"): ("create", "Permission"),
    ("PUT", "/permissions"): ("update", "Permission"),
    ("DELETE", "/permissions"): ("destroy", "Permission"),
    ("GET", "/restrictions"): ("read", "Restriction"),
    ("POST", "/restrictions"): ("create", "Restriction"),
    ("PUT", "/restrictions"): ("update", "Restriction"),
    ("DELETE", "/restrictions"): ("destroy", "Restriction"),
    ("POST", "/restrictions/whitelink"): ("create", "Restriction"),
    ("GET", "/profiles"): ("read", "Profile"),
    ("PUT", "/profiles"): ("update", "Profile"),
    ("POST", "/profiles"): ("create", "Profile"),
    ("GET", "/levels"): ("read", "Level"),
    ("GET", "/abilities"): None,
}


def file_table() -> dict[str, dict[str, list[str]]]:
    """The shipped abilities file, read here without the code under test."""
    return yaml.safe_load(ABILITIES_FILE.read_text())["admin_permissions"]  # type: ignore[no-any-return]


def may(grants: dict[str, list[str]], ability: tuple[str, str] | None) -> bool:
    """Whether a role with ``grants`` may: ``manage`` is every action."""
    if ability is None:
        return True
    action, subject = ability
    return subject in grants.get(action, []) or subject in grants.get("manage", [])


def registered_admin_routes(settings: Any) -> dict[str, set[tuple[str, str]]]:
    """Per admin prefix, the (method, path under it) of every route the app registers."""
    app = build_app(settings, settings.redis_url)
    found: dict[str, set[tuple[str, str]]] = {prefix: set() for prefix in PREFIXES}
    for route in app.router.routes():
        if route.resource is None or route.method == "HEAD":  # aiohttp adds HEAD to every GET
            continue
        path = route.resource.canonical
        for prefix in PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                found[prefix].add((route.method, path.removeprefix(prefix)))
    return found


# --- the table and the app ----------------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_table_names_every_admin_route_and_every_route_is_served(settings: Any) -> None:
    found = registered_admin_routes(settings)
    for prefix in PREFIXES:
        assert sorted(found[prefix] - set(ROUTES)) == [], f"admin routes missing from ROUTES under {prefix}"
        assert sorted(set(ROUTES) - found[prefix]) == [], f"routes of ROUTES not served under {prefix}"
    assert all(
        ability is None or (ability[0] in ACTIONS and ability[1] in SUBJECTS) for ability in ROUTES.values()
    )


def test_every_role_is_refused_something_but_superadmin() -> None:
    """The matrix below must show denials and grants: otherwise it would prove nothing."""
    table = file_table()
    for role, grants in table.items():
        allowed = [route for route, ability in ROUTES.items() if may(grants, ability)]
        assert len(allowed) > 1, role
        if role == "superadmin":
            assert len(allowed) == len(ROUTES)
        else:
            assert len(allowed) < len(ROUTES), role


# --- every route, every role ------------------------------------------------------------------------------


def shipped_permits() -> Any:
    """``permits(role, method, path)`` of the shipped permission table, decided by Casbin alone."""
    path = POLICIES / "permissions.yml"
    enforcer = build_permission_enforcer(parse_permissions(path.read_text(), source=str(path)))

    def permits(role: str, method: str, url: str) -> bool:
        return reference_decide(enforcer, role, method, canonical_path(url.lstrip("/"))).allowed

    return permits


def everything_permitted(role: str, method: str, url: str) -> bool:
    """The verdict of the table :func:`tests.admin.conftest.open_table` installs."""
    return True


@pytest.mark.parametrize("permissions", ["shipped", "open"])
async def test_every_admin_route_refuses_exactly_the_roles_without_its_permission_then_its_ability(
    api: Any, sign_in: Any, make_user: Any, services: Any, open_table: Any, permissions: str
) -> None:
    """Under the shipped table, and under one that lets every role through (the abilities alone decide)."""
    table = file_table()
    callers = {role: await sign_in(role) for role in [*table, "member"]}
    ghost = await sign_in("member")  # a JWT first (a role without permissions gets none), then the role
    assert await services.users.update(ghost.user.uid, role=GHOST) is not None
    callers[GHOST] = ghost
    if permissions == "shipped":
        permits = shipped_permits()
        # The decision endpoint itself gives a role without permissions no JWT at all.
        nobody = await make_user(role=GHOST)
        cookie, _ = await login(api, nobody)
        refused = await api.get(f"/api/v2/auth{ADMIN}/abilities", headers=with_cookie(cookie))
        assert refused.status == 401 and "Authorization" not in refused.headers
    else:
        await open_table(api)
        permits = everything_permitted

    mismatches = []
    for (method, path), ability in ROUTES.items():
        for role, caller in callers.items():
            for prefix in PREFIXES:
                url = prefix + path.replace("{uid}", "ID0000000000")
                expected = (
                    INVALID_PERMISSION
                    if not permits(role, method, url)
                    else None if may(table.get(role, {}), ability) else NOT_PERMITTED
                )
                response = await api.request(method, url, headers=caller.headers)
                body = await response.json()
                refusal = response.status == 401 and body in (INVALID_PERMISSION, NOT_PERMITTED)
                denied = body if refusal else None
                if denied != expected or response.status >= 500:
                    mismatches.append((method, url, role, response.status, body))
    assert mismatches == []


@pytest.mark.parametrize(
    ("permissions", "refusal"), [("shipped", INVALID_PERMISSION), ("open", NOT_PERMITTED)]
)
async def test_a_refused_change_changes_nothing(
    api: Any, sign_in: Any, services: Any, open_table: Any, permissions: str, refusal: dict[str, Any]
) -> None:
    """Refused by the table (technical reads the admin API only) or by the abilities (technical may read
    users, may not touch permissions or roles)."""
    technical = await sign_in("technical")
    if permissions == "open":
        await open_table(api)
    before = await services.permissions.list_all()
    response = await api.post(
        f"{ADMIN}/permissions",
        json={"role": "member", "verb": "GET", "path": "api/v2/new", "action": "accept"},
        headers=technical.headers,
    )
    assert (response.status, await response.json()) == (401, refusal)
    member = await sign_in("member")
    response = await api.post(
        f"{ADMIN}/users/role", json={"uid": member.user.uid, "role": "admin"}, headers=technical.headers
    )
    assert (response.status, await response.json()) == (401, refusal)
    assert (await services.users.get_by_uid(member.user.uid)).role == "member"
    assert await services.permissions.list_all() == before
    assert await services.activities.list(category="admin") == []


# --- identity/admin/abilities.py ----------------------------------------------------------------------------


def load(text: str) -> Abilities:
    return Abilities.from_table(parse_abilities(text), ABILITIES_MODEL)


def test_the_shipped_file_is_barongs_production_table() -> None:
    """barong-behavior.md §8.2."""
    abilities = Abilities.load(ABILITIES_FILE, ABILITIES_MODEL)
    everything = list(SUBJECTS)
    assert abilities.of_role("superadmin") == {"manage": everything}
    assert abilities.of_role("admin") == {
        "read": ["Activity", "Permission"],
        "manage": ["Ability", "User", "Level", "Label", "Profile", "APIKey", "Restriction", "Document"],
    }
    assert abilities.of_role("technical") == {
        "read": ["Ability", "User", "Level", "Label", "Profile", "Activity"],
        "manage": ["APIKey", "Restriction"],
    }
    assert abilities.of_role("accountant") == {
        "read": ["Ability", "User", "Level", "Label", "Profile", "Activity"]
    }
    assert abilities.of_role("compliance") == {
        "read": ["Ability", "Document"],
        "manage": ["User", "Level", "Label", "Profile"],
    }
    assert abilities.of_role("support") == {
        "read": ["Ability", "Label", "Level", "Profile", "Activity"],
        "manage": ["User"],
    }


@pytest.mark.parametrize("action", ["read", "create", "update", "destroy", "manage"])
def test_manage_implies_every_action(action: str) -> None:
    abilities = load("admin_permissions:\n  boss:\n    manage: [User]\n")
    assert abilities.can("boss", action, "User")
    assert not abilities.can("boss", action, "Permission")
    abilities.check("boss", action, "User")
    with pytest.raises(AbilityDenied) as caught:
        abilities.check("boss", action, "Permission")
    assert caught.value.key == "admin.ability.not_permitted"


def test_an_action_grants_only_itself() -> None:
    abilities = load("admin_permissions:\n  clerk:\n    read: [User, Level]\n    destroy: [Label]\n")
    assert [a for a in ACTIONS if abilities.can("clerk", a, "User")] == ["read"]
    assert [a for a in ACTIONS if abilities.can("clerk", a, "Label")] == ["destroy"]
    assert not abilities.can("clerk", "manage", "User")  # "manage" as a request is not granted by "read"


def test_an_unknown_role_has_nothing() -> None:
    abilities = Abilities.load(ABILITIES_FILE, ABILITIES_MODEL)
    for role in ("member", GHOST, "", "Superadmin"):
        assert abilities.of_role(role) == {}
        assert not any(abilities.can(role, action, subject) for action in ACTIONS for subject in SUBJECTS)
        with pytest.raises(AbilityDenied):
            abilities.check(role, "read", "Ability")
    empty = load("admin_permissions: {}\n")
    assert empty.of_role("superadmin") == {} and not empty.can("superadmin", "read", "User")


def test_every_problem_of_the_file_is_reported_at_once() -> None:
    text = """\
admin_permissions:
  admin:
    read: [User, Users]
    erase: [User]
    manage: User
  support: [read]
  "  ": {read: [User]}
  fine:
    read: [User]
"""
    with pytest.raises(AbilitiesFileError) as caught:
        parse_abilities(text, "abilities.yml")
    message = str(caught.value)
    assert message.startswith("abilities.yml: invalid abilities file:")
    for problem in (
        "admin_permissions.admin.read: unknown subjects Users",
        "admin_permissions.admin.erase: unknown action",
        "admin_permissions.admin.manage: must be a list of subjects",
        "admin_permissions.support: must map actions",
        "a role must be a non-blank string",
    ):
        assert problem in message, problem
    assert "fine" not in message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("admin_permissions: [superadmin]\n", "expected a top-level mapping 'admin_permissions'"),
        ("superadmin:\n  manage: [User]\n", "expected a top-level mapping 'admin_permissions'"),
        ("", "expected a top-level mapping 'admin_permissions'"),
        ("admin_permissions: {a: [b\n", "invalid YAML"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(text: str, reason: str) -> None:
    with pytest.raises(AbilitiesFileError, match="^x.yml: ") as caught:
        parse_abilities(text, "x.yml")
    assert reason in str(caught.value)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AbilitiesFileError, match="cannot read"):
        Abilities.load(tmp_path / "missing.yml", ABILITIES_MODEL)


# --- AUTHZ_ABILITIES_FILE -----------------------------------------------------------------------------------


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env=env)
    return caught.value.problems


def test_the_abilities_file_defaults_to_the_shipped_one(tmp_path: Path) -> None:
    assert load_settings(env={"AUTHZ_DATA_DIR": str(tmp_path)}).abilities_file == ABILITIES_FILE


def test_the_abilities_file_is_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "abilities.yml"
    path.write_text("admin_permissions:\n  auditor:\n    read: [Activity]\n")
    assert load_settings(env={"AUTHZ_ABILITIES_FILE": str(path)}).abilities_file == path


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        (
            "admin_permissions:\n  a:\n    read: [Userz]\n    fly: [User]\n",
            ["unknown subjects Userz", "fly: unknown action"],
        ),
        ("[a, b]\n", ["expected a top-level mapping 'admin_permissions'"]),
        ("admin_permissions: {a: [b\n", ["invalid YAML"]),
    ],
)
def test_a_bad_abilities_file_stops_the_start_with_every_problem(
    tmp_path: Path, text: str, reasons: list[str]
) -> None:
    path = tmp_path / "abilities.yml"
    path.write_text(text)
    [problem] = problems_of({"AUTHZ_ABILITIES_FILE": str(path)})
    assert problem.startswith(f"AUTHZ_ABILITIES_FILE={str(path)!r}: ")
    for reason in reasons:
        assert reason in problem


def test_a_missing_abilities_file_is_reported_with_the_other_problems() -> None:
    problems = problems_of(
        {"AUTHZ_ABILITIES_FILE": "/nonexistent/abilities.yml", "AUTHZ_DEFAULT_LANGUAGE": "english"}
    )
    assert any(
        p.startswith("AUTHZ_ABILITIES_FILE='/nonexistent/abilities.yml': no such file") for p in problems
    )
    assert any(p.startswith("AUTHZ_DEFAULT_LANGUAGE=") for p in problems)

"""One canonical form of the service's own paths: the spellings, and the property that aliases decide alike.

The service answers its APIs under ``api/v2/barong/<area>/…`` and ``api/v2/<area>/…``.  For random
permission tables and path rules, written with either spelling, and random paths: the decision for a path
equals the decision for each of its aliases, and a table stays the same table when any of its rows is
rewritten into the other spelling.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from authz.authorizer import CompiledPermissions, PermissionVerdict, build_permission_enforcer
from authz.canonical import ALIASED_AREAS, aliases, canonical_path, canonical_prefixes
from authz.path_rules import PathRules
from identity.models import Permission
from tests.authz.helpers import (
    admin_activities,
    cookie_headers,
    decide,
    error,
    fast_settings,
    new_user,
    open_session,
)


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("api/v2/admin/permissions", "api/v2/barong/admin/permissions"),
        ("api/v2/admin", "api/v2/barong/admin"),
        ("api/v2/identity/sessions", "api/v2/barong/identity/sessions"),
        ("api/v2/resource/users/me", "api/v2/barong/resource/users/me"),
        ("api/v2/public/ping", "api/v2/barong/public/ping"),
        ("api/v2/management/users", "api/v2/barong/management/users"),
        ("api/v2/barong/admin/users", "api/v2/barong/admin/users"),
        ("api/v2/administrators", "api/v2/administrators"),  # only a whole segment names an area
        ("api/v2/peatio/admin/members", "api/v2/peatio/admin/members"),
        ("v1/oauth", "v1/oauth"),
        ("api/v2/", "api/v2/"),
        ("", ""),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical
    assert canonical_path(canonical) == canonical


def test_a_prefix_inside_an_area_name_also_covers_the_canonical_area() -> None:
    assert canonical_prefixes("api/v2/adm") == ("api/v2/adm", "api/v2/barong/admin")
    assert canonical_prefixes("api/v2/") == ("api/v2/",)
    assert canonical_prefixes("api/v2/admin/users/role") == ("api/v2/barong/admin/users/role",)
    assert set(canonical_prefixes("api/v2/")) == {"api/v2/"}
    assert aliases("api/v2/admin/x") == ("api/v2/barong/admin/x", "api/v2/admin/x")
    assert aliases("api/v2/peatio/x") == ("api/v2/peatio/x",)


# Path vocabulary: both spellings of every area, other upstreams, and names that only start like an area.
_ROOTS = ["api/v2/barong/", "api/v2/", "api/v2/peatio/", "v1/", ""]
_SEGMENTS = sorted(ALIASED_AREAS) + ["barong", "adm", "administrators", "users", "role", "permissions", "x"]
_ROLES = ["admin", "member"]
_VERBS = ["GET", "POST", "DELETE", "ALL"]


def _paths(max_segments: int) -> st.SearchStrategy[str]:
    """Mostly paths of the aliased areas, in both spellings, with a few of other upstreams."""
    return st.builds(
        lambda root, area, segments, slash: root + "/".join([area, *segments]) + ("/" if slash else ""),
        st.sampled_from(_ROOTS[:2] * 4 + _ROOTS[2:]),
        st.sampled_from(sorted(ALIASED_AREAS) * 2 + _SEGMENTS),
        st.lists(st.sampled_from(_SEGMENTS), min_size=0, max_size=max_segments - 1),
        st.booleans(),
    )


def _partial(path: str, cut: int) -> str:
    """A prefix that may stop inside a segment (``api/v2/adm``), as an admin may write one."""
    return path[: max(1, len(path) - cut)] if cut else path


_PREFIXES = st.builds(_partial, _paths(3), st.integers(0, 3)).filter(bool)
_ROWS = st.lists(
    st.tuples(
        st.sampled_from(_ROLES),
        st.sampled_from(_VERBS),
        _PREFIXES,
        st.sampled_from(["ACCEPT", "DROP", "AUDIT"]),
    ),
    max_size=12,
)


def _compile(rows: Sequence[tuple[str, str, str, str]]) -> CompiledPermissions:
    permissions = [
        Permission(id=i + 1, role=role, verb=verb, path=path, action=action, topic=None)
        for i, (role, verb, path, action) in enumerate(rows)
    ]
    return CompiledPermissions.from_enforcer(build_permission_enforcer(permissions))


def _other_spelling(prefix: str) -> str:
    """``prefix`` written in the other spelling, where it has one."""
    spellings = aliases(prefix)
    return spellings[1] if prefix == spellings[0] and len(spellings) > 1 else spellings[0]


def _verdict(compiled: CompiledPermissions, role: str, method: str, path: str) -> PermissionVerdict:
    return compiled.decide(role, method, canonical_path(path))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=_ROWS, path=_paths(4), role=st.sampled_from(_ROLES), method=st.sampled_from(_VERBS[:3]))
def test_the_permission_verdict_for_a_path_equals_the_verdict_for_each_alias(
    rows: list[tuple[str, str, str, str]], path: str, role: str, method: str
) -> None:
    compiled = _compile(rows)
    expected = _verdict(compiled, role, method, path)
    for alias in aliases(path):
        assert _verdict(compiled, role, method, alias) == expected, alias


@settings(max_examples=300, deadline=None, derandomize=True)
@example(
    rows=[("admin", "ALL", "api/v2", "ACCEPT"), ("admin", "ALL", "api/v2/barong/admin/permissions", "DROP")],
    flips=[False, True] + [False] * 10,
    path="api/v2/admin/permissions",
    role="admin",
    method="GET",
)
@given(
    rows=_ROWS,
    flips=st.lists(st.booleans(), min_size=12, max_size=12),
    path=_paths(4),
    role=st.sampled_from(_ROLES),
    method=st.sampled_from(_VERBS[:3]),
)
def test_a_permission_written_in_either_spelling_decides_the_same(
    rows: list[tuple[str, str, str, str]], flips: list[bool], path: str, role: str, method: str
) -> None:
    respelled = [
        (r, v, _other_spelling(p) if flip else p, a) for (r, v, p, a), flip in zip(rows, flips, strict=False)
    ]
    assert _verdict(_compile(rows), role, method, path) == _verdict(_compile(respelled), role, method, path)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    passes=st.lists(_PREFIXES, max_size=4),
    blocks=st.lists(_PREFIXES, max_size=4),
    flip=st.booleans(),
    path=_paths(4),
)
def test_path_rules_decide_every_alias_alike_in_either_spelling(
    passes: list[str], blocks: list[str], flip: bool, path: str
) -> None:
    rules = PathRules(tuple(passes), tuple(blocks))
    expected = rules.classify(canonical_path(path))
    for alias in aliases(path):
        assert rules.classify(canonical_path(alias)) == expected, alias
    if flip:
        respelled = PathRules(tuple(map(_other_spelling, passes)), tuple(map(_other_spelling, blocks)))
        assert respelled.classify(canonical_path(path)) == expected


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=_ROWS, path=_paths(4), role=st.sampled_from(_ROLES), method=st.sampled_from(_VERBS[:3]))
def test_canonical_matching_never_allows_what_the_written_spelling_dropped(
    rows: list[tuple[str, str, str, str]], path: str, role: str, method: str
) -> None:
    """A DROP row that matched a path as written still refuses it: canonical matching only adds coverage."""
    for row_role, verb, prefix, action in rows:
        if action == "DROP" and row_role == role and verb in ("ALL", method) and path.startswith(prefix):
            assert not _verdict(_compile(rows), role, method, path).allowed
            return


# Through the decision endpoint, on the default policy (policies/permissions.yml, seeded by conftest).


@pytest.fixture
def settings(settings: Any) -> Any:
    return fast_settings(settings)


ADMIN_DROPPED = [
    ("GET", "api/v2/admin/permissions"),
    ("POST", "api/v2/admin/permissions"),
    ("POST", "api/v2/admin/users/role"),
    ("GET", "api/v2/admin/activities/admin"),
]


async def test_an_admin_is_refused_the_dropped_paths_under_both_spellings(
    client: Any, services: Any, clock: Any
) -> None:
    """Before, the DROP rows named only ``api/v2/barong/admin/…``: ``api/v2/admin/…`` answered 200 + JWT."""
    admin = await new_user(services, role="admin")
    cookie, csrf = await open_session(services, admin, clock)
    headers = cookie_headers(cookie, csrf=csrf)
    for method, path in ADMIN_DROPPED:
        for spelling in aliases(path):
            status, body, _ = await decide(client, method, spelling, headers)
            assert (status, body) == (401, error("authz.invalid_permission")), (method, spelling)
    for spelling in aliases("api/v2/admin/users"):
        assert (await decide(client, "GET", spelling, headers))[0] == 200, spelling


async def test_block_rules_and_audit_topics_hold_for_the_stripped_spelling(
    client: Any, services: Any, clock: Any
) -> None:
    superadmin = await new_user(services, role="superadmin")
    cookie, csrf = await open_session(services, superadmin, clock)
    for path in ("api/v2/management/users", "api/v2/barong/management/users"):
        status, body, _ = await decide(client, "GET", path, cookie_headers(cookie, csrf=csrf))
        assert (status, body) == (401, error("authz.permission_denied")), path
    status, _, _ = await decide(client, "POST", "api/v2/admin/users/labels", cookie_headers(cookie, csrf=csrf))
    assert status == 200
    (activity,) = await admin_activities(services, 1)
    assert activity.topic == "users"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part
async def test_decisions_for_random_paths_equal_those_for_their_aliases(
    client: Any, services: Any, clock: Any
) -> None:
    """Every role of the default policy, 120 random paths each: same status and body under each alias."""
    rng = random.Random(20261204)
    for role in ("superadmin", "admin", "accountant", "support", "member"):
        user = await new_user(services, role=role)
        cookie, csrf = await open_session(services, user, clock)
        headers = cookie_headers(cookie, csrf=csrf)
        for _ in range(120):
            root = rng.choice(["api/v2/barong/", "api/v2/"])
            segments = [rng.choice(sorted(ALIASED_AREAS))] + rng.sample(_SEGMENTS, rng.randint(0, 3))
            path = root + "/".join(segments)
            method = rng.choice(["GET", "POST", "PUT", "DELETE"])
            first, *others = aliases(path)
            expected = (await decide(client, method, first, headers))[:2]
            for alias in others:
                assert (await decide(client, method, alias, headers))[:2] == expected, (role, method, alias)

"""Permission decisions: the real policies/permissions.yml, Barong's §2.6 rules, and the compiled index
held to Casbin's answers on random policies."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz.authorizer import (
    ALLOWED,
    ALLOWED_AUDITED,
    DENIED,
    CompiledPermissions,
    PermissionVerdict,
    build_permission_enforcer,
    reference_decide,
)
from authz.settings import PROJECT_ROOT
from identity.models import VERBS, Permission
from identity.permissions_file import parse_permissions

POLICY_FILE = PROJECT_ROOT / "policies" / "permissions.yml"


def _with_ids(perms: list[Permission]) -> list[Permission]:
    return [replace(p, id=i) for i, p in enumerate(perms, start=1)]


@pytest.fixture(scope="module")
def default_enforcer():
    return build_permission_enforcer(_with_ids(parse_permissions(POLICY_FILE.read_text(), str(POLICY_FILE))))


@pytest.fixture(scope="module")
def default_compiled(default_enforcer):
    return CompiledPermissions.from_enforcer(default_enforcer)


def compile_rows(*rows: Permission) -> tuple[object, CompiledPermissions]:
    enforcer = build_permission_enforcer(rows)
    return enforcer, CompiledPermissions.from_enforcer(enforcer)


# (role, method, path, verdict) over Barong's default permissions.
DEFAULT_POLICY_CASES = [
    ("member", "GET", "api/v2/peatio/account/balances", ALLOWED),
    ("member", "POST", "api/v2/peatio/market/orders", ALLOWED),
    ("member", "HEAD", "api/v2/peatio/account/balances", ALLOWED),  # ALL covers any method
    ("member", "OPTIONS", "api/v2/barong/resource/users/me", ALLOWED),
    ("member", "GET", "api/v2/ranger/private", ALLOWED),
    ("member", "POST", "api/v2/ranger/private", DENIED),  # GET only
    ("member", "GET", "api/v2/open_finance/orders", ALLOWED),
    ("member", "GET", "api/v2/barong/admin/users", DENIED),
    ("member", "GET", "api/v2/peatio/accountant", ALLOWED),  # plain prefix, no segment awareness
    ("member", "GET", "api/v2/peatio", DENIED),  # shorter than every prefix
    ("member", "GET", "/api/v2/peatio/account/balances", DENIED),  # leading slash never matches
    ("member", "get", "api/v2/ranger/private", DENIED),  # methods compare exactly
    ("nobody", "GET", "api/v2/peatio/account/balances", DENIED),
    ("", "", "", DENIED),
    ("superadmin", "GET", "api/v2/barong/admin/permissions", ALLOWED),
    ("superadmin", "POST", "api/v2/x", ALLOWED_AUDITED),
    ("superadmin", "DELETE", "api/v2/barong/admin/permissions", ALLOWED_AUDITED),
    ("superadmin", "PATCH", "api/v2/x", ALLOWED),  # no AUDIT row for PATCH
    ("superadmin", "POST", "api/v2", ALLOWED),  # the AUDIT rows are on "api/v2/"
    ("admin", "GET", "api/v2/barong/admin/users", ALLOWED),
    ("admin", "PUT", "api/v2/barong/admin/users", ALLOWED_AUDITED),
    ("admin", "GET", "api/v2/barong/admin/permissions", DENIED),  # DROP beats ACCEPT
    ("admin", "POST", "api/v2/barong/admin/permissions", DENIED),  # ... and AUDIT
    ("admin", "PUT", "api/v2/barong/admin/users/role", DENIED),
    ("admin", "GET", "api/v2/barong/admin/activities/admin", DENIED),
    ("admin", "GET", "api/v2/barong/admin/activities", ALLOWED),
    ("accountant", "GET", "api/v2/barong/admin/users", ALLOWED),
    ("accountant", "POST", "api/v2/barong/admin/users", DENIED),  # only AUDIT matches
    ("accountant", "GET", "api/v2/barong/admin/users/documents/pending", DENIED),
    ("accountant", "POST", "api/v2/peatio/admin/adjustments/new", ALLOWED_AUDITED),
    ("accountant", "POST", "api/v2/peatio/admin/adjustments", DENIED),
    ("compliance", "PUT", "api/v2/barong/admin/users/labels", ALLOWED_AUDITED),
    ("compliance", "PUT", "api/v2/barong/admin/users/role", DENIED),
    ("compliance", "GET", "api/v2/peatio/admin/wallets", DENIED),
    ("technical", "DELETE", "api/v2/finex/admin/bulk/orders_by_id", ALLOWED_AUDITED),
    ("technical", "GET", "api/v2/peatio/admin/deposits", DENIED),
    ("technical", "GET", "api/v2/peatio/admin/orders", ALLOWED),
    ("technical", "POST", "api/v2/barong/admin/restrictions", ALLOWED_AUDITED),
    ("support", "POST", "api/v2/barong/admin/users/update", ALLOWED_AUDITED),
    ("support", "GET", "api/v2/barong/admin/restrictions", DENIED),
    ("sa_maker", "GET", "api/v2/barong/resource/api_keys", DENIED),
    ("sa_maker", "POST", "api/v2/barong/resource/users/password", DENIED),
    ("sa_maker", "GET", "api/v2/barong/resource/users/me", ALLOWED),
    ("sa_maker", "POST", "api/v2/peatio/market/orders", ALLOWED),
    ("sa_maker", "POST", "api/v2/peatio/account/withdraws", DENIED),
    ("sa_maker", "GET", "api/v2/applogic/private/tenants", DENIED),
]


@pytest.mark.parametrize(("role", "method", "path", "verdict"), DEFAULT_POLICY_CASES)
def test_default_policy(default_enforcer, default_compiled, role, method, path, verdict):
    assert default_compiled.decide(role, method, path) == verdict
    assert reference_decide(default_enforcer, role, method, path) == verdict


def test_default_policy_roles(default_compiled):
    assert default_compiled.roles == {
        "superadmin", "admin", "accountant", "compliance", "technical", "support",
        "trader", "broker", "member", "maker", "sa_maker",
    }  # fmt: skip


def perm(role: str, verb: str, path: str, action: str, topic: str | None = None, id: int | None = None):
    return Permission(role=role, verb=verb, path=path, action=action, topic=topic, id=id)


# (rows, (role, method, path), verdict) on small tables: Barong's §2.6 rules one by one.
SEMANTICS_CASES = [
    pytest.param([], ("r", "GET", "a"), DENIED, id="empty-table-denies"),
    pytest.param([perm("r", "ALL", "a", "ACCEPT")], ("r", "DELETE", "a/b"), ALLOWED, id="all-matches-any"),
    pytest.param([perm("r", "GET", "a", "ACCEPT")], ("r", "POST", "a"), DENIED, id="verb-must-match"),
    pytest.param([perm("r", "GET", "a", "ACCEPT")], ("q", "GET", "a"), DENIED, id="role-must-match"),
    pytest.param([perm("r", "GET", "", "ACCEPT")], ("r", "GET", "anything"), ALLOWED, id="empty-prefix"),
    pytest.param([perm("r", "GET", "a/b", "ACCEPT")], ("r", "GET", "a"), DENIED, id="prefix-too-long"),
    pytest.param([perm("r", "GET", "/a", "ACCEPT")], ("r", "GET", "a"), DENIED, id="stored-leading-slash"),
    pytest.param(
        [perm("r", "ALL", "a", "ACCEPT"), perm("r", "GET", "a/b", "DROP")], ("r", "GET", "a/b/c"), DENIED,
        id="drop-beats-accept",
    ),
    pytest.param(
        [perm("r", "GET", "a/b", "DROP"), perm("r", "ALL", "a", "ACCEPT")], ("r", "POST", "a/b"), ALLOWED,
        id="drop-of-another-verb",
    ),
    pytest.param([perm("r", "ALL", "a", "AUDIT", "t")], ("r", "GET", "a"), DENIED, id="audit-alone-denies"),
    pytest.param(
        [perm("r", "ALL", "a", "AUDIT", "t"), perm("r", "ALL", "a", "ACCEPT")], ("r", "GET", "a"),
        PermissionVerdict(True, True, "t"), id="accept-and-audit",
    ),
    pytest.param(
        [perm("r", "ALL", "a", "ACCEPT"), perm("r", "ALL", "a", "AUDIT", "t"), perm("r", "ALL", "a", "DROP")],
        ("r", "GET", "a"), DENIED, id="drop-beats-audit",
    ),
    pytest.param(
        [perm("r", "ALL", "a", "ACCEPT"), perm("r", "GET", "a/b", "AUDIT", "late", id=9),
         perm("r", "ALL", "a", "AUDIT", "early", id=3)],
        ("r", "GET", "a/b"), PermissionVerdict(True, True, "early"), id="first-audit-by-id",
    ),
    pytest.param(
        [perm("r", "ALL", "a", "ACCEPT"), perm("r", "ALL", "a/b", "AUDIT", None, id=1),
         perm("r", "ALL", "a", "AUDIT", "t", id=2)],
        ("r", "GET", "a/b"), ALLOWED_AUDITED, id="first-audit-without-topic",
    ),
    pytest.param(
        [perm("r", "ALL", "a", "ACCEPT"), perm("r", "ALL", "a", "BOGUS")], ("r", "GET", "a"), ALLOWED,
        id="unknown-action-ignored",
    ),
    pytest.param([perm("r", "ALL", "a", "BOGUS")], ("r", "GET", "a"), DENIED, id="unknown-action-alone"),
    pytest.param(
        [perm("r", "ALL", 'a,"b" \\c', "ACCEPT")], ("r", "GET", 'a,"b" \\c/d'), ALLOWED, id="odd-characters",
    ),
]


@pytest.mark.parametrize(("rows", "request_", "verdict"), SEMANTICS_CASES)
def test_barong_semantics(rows, request_, verdict):
    enforcer, compiled = compile_rows(*rows)
    assert compiled.decide(*request_) == verdict
    assert reference_decide(enforcer, *request_) == verdict


def test_roles_lists_roles_with_any_row():
    _, compiled = compile_rows(
        perm("a", "GET", "x", "ACCEPT"), perm("b", "GET", "x", "AUDIT"), perm("c", "GET", "x", "ZZ")
    )
    assert compiled.roles == {"a", "b", "c"}


def test_memo_returns_the_same_answer():
    _, compiled = compile_rows(perm("r", "ALL", "a", "ACCEPT"), perm("r", "POST", "a", "AUDIT", "t"))
    first = compiled.decide("r", "POST", "a/b")
    assert first == PermissionVerdict(True, True, "t")
    assert compiled.decide("r", "POST", "a/b") is first
    assert compiled.decide("r", "GET", "a/b") == ALLOWED


def test_a_new_compile_reflects_policy_changes():
    _, before = compile_rows(perm("r", "ALL", "a", "ACCEPT"))
    assert before.decide("r", "GET", "a/b") == ALLOWED
    _, after = compile_rows(perm("r", "ALL", "a", "ACCEPT"), perm("r", "GET", "a/b", "DROP"))
    assert after.decide("r", "GET", "a/b") == DENIED
    assert before.decide("r", "GET", "a/b") == ALLOWED  # a compiled policy never changes


def test_a_full_memo_keeps_answering_correctly():
    enforcer = build_permission_enforcer([perm("r", "ALL", "a", "ACCEPT"), perm("r", "ALL", "a/x", "DROP")])
    compiled = CompiledPermissions.from_enforcer(enforcer, memo_size=2)
    for _ in range(3):
        for path, verdict in (("a/1", ALLOWED), ("a/x1", DENIED), ("a/2", ALLOWED), ("b", DENIED)):
            assert compiled.decide("r", "GET", path) == verdict


def test_long_paths_are_decided_without_the_memo():
    _, compiled = compile_rows(perm("r", "ALL", "a", "ACCEPT"))
    long_path = "a/" + "x" * 10_000
    assert compiled.decide("r", "GET", long_path) == ALLOWED
    assert compiled.decide("r", "GET", long_path) == ALLOWED


# --- property: compiled index == Casbin == a direct reading of Barong's rule ----------------------------

ROLES = ("r", "q")
PREFIXES = ("", "a", "a/", "a/b", "a/bc", "a/b/c", "ab", "b")
SUFFIXES = ("", "/", "c", "/d", "b/c")
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "ALL")

permission_rows = st.builds(
    Permission,
    role=st.sampled_from(ROLES),
    # ALL, ACCEPT and AUDIT weighted up so that allowed and audited answers are common
    verb=st.sampled_from((*VERBS, "ALL", "ALL", "GET")),
    path=st.sampled_from((*PREFIXES, "/a")),
    action=st.sampled_from(("ACCEPT", "ACCEPT", "DROP", "AUDIT", "AUDIT", "BOGUS")),
    topic=st.sampled_from((None, "t1", "t2")),
)
random_requests = st.tuples(
    st.sampled_from((*ROLES, "zz")),
    st.sampled_from(METHODS),
    st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES)),
)


def request_near(row: Permission):
    """Requests that this row matches or nearly matches."""
    return st.tuples(
        st.just(row.role),
        st.sampled_from(METHODS) if row.verb == "ALL" else st.sampled_from((row.verb, row.verb, "GET")),
        st.builds(lambda s: row.path + s, st.sampled_from(SUFFIXES)) | st.just(row.path[:-1]),
    )


def barong_decide(rows: list[Permission], role: str, method: str, path: str) -> PermissionVerdict:
    """barong-behavior.md §2.6, word for word."""
    table = sorted(rows, key=lambda p: (p.id is None, p.id or 0))
    candidates = [
        p for p in table if p.role == role and p.verb in (method, "ALL") and path.startswith(p.path)
    ]
    actions = {p.action for p in candidates}
    if not candidates or "DROP" in actions or "ACCEPT" not in actions:
        return DENIED
    audit = next((p for p in candidates if p.action == "AUDIT"), None)
    return ALLOWED if audit is None else PermissionVerdict(True, True, audit.topic)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(permission_rows, max_size=14), with_ids=st.booleans(), data=st.data())
def test_compiled_matches_casbin_and_barong(rows, with_ids, data):
    if with_ids:
        ids = data.draw(st.permutations(range(1, len(rows) + 1)))
        rows = [replace(p, id=i) for p, i in zip(rows, ids)]
    near = [request_near(row) for row in rows]
    reqs = data.draw(st.lists(st.one_of(random_requests, *near), min_size=1, max_size=16))
    enforcer = build_permission_enforcer(rows)
    compiled = CompiledPermissions.from_enforcer(enforcer)
    for role, method, path in reqs:
        expected = barong_decide(rows, role, method, path)
        assert reference_decide(enforcer, role, method, path) == expected
        assert compiled.decide(role, method, path) == expected
        assert compiled.decide(role, method, path) == expected  # from the memo

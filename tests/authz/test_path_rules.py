"""Pass and block path rules: the real policies/authz_rules.yml and the file's validation."""

from __future__ import annotations

import pytest

from authz.canonical import canonical_path
from authz.path_rules import PathRules, PathRulesError
from authz.settings import PROJECT_ROOT

RULES_FILE = PROJECT_ROOT / "policies" / "authz_rules.yml"


@pytest.fixture(scope="module")
def default_rules() -> PathRules:
    return PathRules.load(RULES_FILE)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("api/v2/barong/public/config", "pass"),
        ("api/v2/barong/identity/sessions", "pass"),
        ("api/v2/peatio/public/markets", "pass"),
        ("api/v2/ranger/public/", "pass"),
        ("api/v2/applogic/public/x", "pass"),
        ("api/v2/arke/public/x", "pass"),
        ("api/v2/finex/public/x", "pass"),
        ("api/v2/public/config", "pass"),  # our alias naming
        ("api/v2/identity/users", "pass"),
        ("api/v2/barong/publicity", "pass"),  # plain prefix, as Barong
        ("api/v2/barong/management/users", "block"),
        ("api/v2/peatio/management/deposits", "block"),
        ("api/v2/management/users", "block"),
        ("api/v2/barong/resource/users/me", None),
        ("api/v2/peatio/account/balances", None),
        ("/api/v2/barong/public/config", None),  # paths are matched without the leading slash
        ("", None),
    ],
)
def test_default_rules(default_rules, path, expected):
    # The pipeline hands path rules the canonical path (authz.canonical).
    assert default_rules.classify(canonical_path(path)) == expected


@pytest.mark.parametrize(
    ("written", "path"),
    [
        ("api/v2/admin", "api/v2/barong/admin/permissions"),
        ("api/v2/barong/admin", "api/v2/admin/permissions"),
        ("api/v2/management", "api/v2/barong/management/users"),
        ("api/v2/barong/management", "api/v2/management/users"),
        ("api/v2/adm", "api/v2/barong/admin/users"),  # it covered api/v2/admin/..., so both spellings
    ],
)
def test_a_rule_holds_for_both_spellings(written, path):
    rules = PathRules.parse(f"rules:\n  block: [{written}]\n")
    assert rules.classify(canonical_path(path)) == "block"
    rules = PathRules.parse(f"rules:\n  pass: [{written}]\n")
    assert rules.classify(canonical_path(path)) == "pass"


def test_block_beats_pass():
    rules = PathRules.parse("rules:\n  pass: [api/v2/x]\n  block: [api/v2/x/admin]\n")
    assert rules.classify("api/v2/x/admin/users") == "block"
    assert rules.classify("api/v2/x/users") == "pass"


@pytest.mark.parametrize(
    "text",
    ["rules: {}\n", "rules:\n", "rules:\n  pass:\n  block:\n", "rules: {pass: [], block: []}\n"],
)
def test_missing_lists_are_empty(text):
    rules = PathRules.parse(text)
    assert rules == PathRules((), ())
    assert rules.classify("api/v2/anything") is None


def test_one_missing_list():
    rules = PathRules.parse("rules:\n  block: [api/v2/barong/management]\n")
    assert rules.pass_prefixes == ()
    assert rules.classify("api/v2/barong/management/x") == "block"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [a, b]\n", "rules: must be a mapping"),
        ("- a\n", "expected a top-level mapping 'rules'"),
        ("", "expected a top-level mapping 'rules'"),
        ("pass: [a]\n", "expected a top-level mapping 'rules'"),
        ("rules:\n  pass: api/v2/public\n", "rules.pass: must be a list"),
        ("rules:\n  pass: [api/v2/public, 3]\n", "rules.pass[1]: must be a string"),
        ("rules:\n  block: ['']\n", "rules.block[0]: an empty prefix would match every path"),
        ("rules:\n  block: [/api/v2/x]\n", "rules.block[0]: '/api/v2/x' starts with '/'"),
        ("rules:\n  passes: [a]\n", "rules.passes: unknown key"),
        ("rules: {pass: [a\n", "invalid YAML"),
    ],
)
def test_invalid_rules_are_reported(text, problem):
    with pytest.raises(PathRulesError) as caught:
        PathRules.parse(text, "rules.yml")
    assert any(problem in p for p in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith("rules.yml: ")


def test_every_problem_is_reported_at_once():
    with pytest.raises(PathRulesError) as caught:
        PathRules.parse("rules:\n  pass: [3, '']\n  block: [/x]\n  extra: []\n")
    assert len(caught.value.problems) == 4


def test_load_names_the_file(tmp_path):
    bad = tmp_path / "authz_rules.yml"
    bad.write_text("rules: {pass: 1}\n")
    with pytest.raises(PathRulesError, match=str(bad)):
        PathRules.load(bad)
    with pytest.raises(PathRulesError, match="cannot read"):
        PathRules.load(tmp_path / "missing.yml")


def test_path_rules_error_is_a_value_error():
    assert issubclass(PathRulesError, ValueError)

"""Barong's role × verb × path-prefix permissions (barong-behavior.md §2.6), decided in memory.

Casbin is the model (``policies/permissions_model.conf``) and the policy store: one policy line per
permission row, in table order.  The hot path never calls ``enforce()``, which scans every line and
evaluates an expression for each; :class:`CompiledPermissions` turns the same policy lines into an
index whose cost depends on the request path's length, not on the size of the table, and keeps a
bounded memo of recent answers.  A new :class:`CompiledPermissions` is built whenever the policy
changes, so the memo never goes stale.  :func:`reference_decide` answers from Casbin alone; the tests
hold the two to the same answers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import casbin

from authz.canonical import canonical_prefixes
from authz.settings import POLICIES_DIR
from identity.models import Permission

DEFAULT_MODEL_PATH = POLICIES_DIR / "permissions_model.conf"

ALL_VERBS = "ALL"

#: Permission action → Casbin effect.  Casbin counts any effect other than allow and deny as
#: indeterminate, so AUDIT lines (and rows with an unknown action, which Barong ignores too) never
#: change the decision.
EFFECTS = {"ACCEPT": "allow", "DROP": "deny", "AUDIT": "audit"}
_ALLOW, _DENY, _AUDIT = "allow", "deny", "audit"
_IGNORED_EFFECT = "none"

# Casbin logs every decision (denials at WARNING) and the model at INFO; the enforcer only disables
# its loggers after it has loaded the model.
_CASBIN_LOGGERS = ("casbin", "casbin.policy", "casbin.enforcer", "casbin.role")

_NO_AUDIT = sys.maxsize
#: Recent (role, method, path) answers kept per compiled policy; the memo is emptied when full.
DEFAULT_MEMO_SIZE = 16384
#: Requests with longer paths are decided without the memo, so junk paths cannot fill memory.
_MEMO_MAX_PATH = 512


@dataclass(frozen=True, slots=True)
class PermissionVerdict:
    """The permission step's answer; when ``audit`` is set the caller writes an admin activity.

    ``audit_topic`` is the topic of the first matching AUDIT row (table order), or ``None`` when that
    row has none and the caller derives it.
    """

    allowed: bool
    audit: bool = False
    audit_topic: str | None = None


DENIED = PermissionVerdict(allowed=False)
ALLOWED = PermissionVerdict(allowed=True)
ALLOWED_AUDITED = PermissionVerdict(allowed=True, audit=True)


def _prefix_match(path: str, prefix: str) -> bool:
    return path.startswith(prefix)


def _policy_lines(permission: Permission) -> list[list[str]]:
    """The row's policy lines: one per canonical prefix of its path (:mod:`authz.canonical`), so a row
    written as ``api/v2/admin/...`` or ``api/v2/barong/admin/...`` holds for both spellings."""
    effect = EFFECTS.get(permission.action.upper(), _IGNORED_EFFECT)
    return [
        [permission.role, prefix, permission.verb, effect, permission.topic or ""]
        for prefix in canonical_prefixes(permission.path)
    ]


def build_permission_enforcer(
    permissions: Iterable[Permission], model_path: Path | None = None
) -> casbin.Enforcer:
    """A Casbin enforcer holding ``permissions`` as policy lines, in ascending id order.

    Paths are held in their canonical form: the enforcer decides canonical request paths
    (:func:`authz.canonical.canonical_path`).

    Rows without an id keep their given order, after the rows that have one.  Identical rows collapse
    into one line (Casbin keeps a rule once); that changes no decision.
    """
    for name in _CASBIN_LOGGERS:
        logging.getLogger(name).disabled = True
    enforcer = casbin.Enforcer(str(model_path or DEFAULT_MODEL_PATH))
    enforcer.add_function("prefixMatch", _prefix_match)
    ordered = sorted(permissions, key=lambda p: (p.id is None, p.id or 0))
    if ordered:
        enforcer.add_policies([line for p in ordered for line in _policy_lines(p)])
    return enforcer


# Per (role, prefix, verb): (accept, drop, position of the first AUDIT line, verdict when allowed with
# that audit).  Positions are indexes into the policy, i.e. table order.
_Flags = tuple[bool, bool, int, PermissionVerdict | None]


def _merge(a: _Flags | None, b: _Flags) -> _Flags:
    if a is None:
        return b
    first = a if a[2] <= b[2] else b
    return (a[0] or b[0], a[1] or b[1], first[2], first[3])


class CompiledPermissions:
    """The policy of one enforcer compiled into a per-role prefix index (the hot path's view).

    For a role, ``entries`` maps every permission path to its flags per verb (verb-specific flags
    already include the ALL rows of the same path) and ``lengths`` lists the distinct path lengths in
    ascending order.  Deciding looks up ``path[:n]`` for each of those lengths: one dict lookup per
    distinct length, whatever the number of rows.
    """

    __slots__ = ("_index", "_roles", "_memo", "_memo_size")

    def __init__(
        self,
        index: dict[str, tuple[tuple[int, ...], dict[str, dict[str, _Flags]]]],
        roles: frozenset[str],
        memo_size: int = DEFAULT_MEMO_SIZE,
    ) -> None:
        self._index = index
        self._roles = roles
        self._memo: dict[tuple[str, str, str], PermissionVerdict] = {}
        self._memo_size = memo_size

    @classmethod
    def from_enforcer(
        cls, enforcer: casbin.Enforcer, memo_size: int = DEFAULT_MEMO_SIZE
    ) -> CompiledPermissions:
        """Compile ``enforcer.get_policy()`` (lines ``role, path, verb, effect, topic``)."""
        return cls.from_policy(enforcer.get_policy(), memo_size)

    @classmethod
    def from_policy(
        cls, policy: Sequence[Sequence[str]], memo_size: int = DEFAULT_MEMO_SIZE
    ) -> CompiledPermissions:
        """Compile policy lines ``role, path, verb, effect, topic`` given in table order."""
        raw: dict[str, dict[str, dict[str, _Flags]]] = {}
        audited: dict[str, PermissionVerdict] = {}
        for position, (role, prefix, verb, effect, topic) in enumerate(policy):
            by_verb = raw.setdefault(role, {}).setdefault(prefix, {})
            if effect == _AUDIT:
                verdict = audited.get(topic)
                if verdict is None:
                    verdict = audited[topic] = (
                        PermissionVerdict(True, True, topic) if topic else ALLOWED_AUDITED
                    )
                flags: _Flags = (False, False, position, verdict)
            else:
                flags = (effect == _ALLOW, effect == _DENY, _NO_AUDIT, None)
            by_verb[verb] = _merge(by_verb.get(verb), flags)

        index: dict[str, tuple[tuple[int, ...], dict[str, dict[str, _Flags]]]] = {}
        for role, by_prefix in raw.items():
            entries: dict[str, dict[str, _Flags]] = {}
            for prefix, by_verb in by_prefix.items():
                any_verb = by_verb.get(ALL_VERBS)
                merged = {
                    verb: flags if any_verb is None or verb == ALL_VERBS else _merge(any_verb, flags)
                    for verb, flags in by_verb.items()
                }
                # Only prefixes that can change a decision take part in the lookup.
                if any(f[0] or f[1] or f[2] != _NO_AUDIT for f in merged.values()):
                    entries[prefix] = merged
            lengths = tuple(sorted({len(prefix) for prefix in entries}))
            index[role] = (lengths, entries)
        return cls(index, frozenset(raw), memo_size)

    @property
    def roles(self) -> frozenset[str]:
        """Roles that have at least one permission row."""
        return self._roles

    def decide(self, role: str, method: str, path: str) -> PermissionVerdict:
        """Barong's verdict for ``role`` calling ``method path`` (path without its leading slash)."""
        key = (role, method, path)
        verdict = self._memo.get(key)
        if verdict is not None:
            return verdict
        verdict = self._decide(role, method, path)
        if len(path) <= _MEMO_MAX_PATH:
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[key] = verdict
        return verdict

    def _decide(self, role: str, method: str, path: str) -> PermissionVerdict:
        found = self._index.get(role)
        if found is None:
            return DENIED
        lengths, entries = found
        accept = False
        audit_position = _NO_AUDIT
        audit_verdict: PermissionVerdict | None = None
        size = len(path)
        for length in lengths:
            if length > size:
                break
            by_verb = entries.get(path[:length])
            if by_verb is None:
                continue
            flags = by_verb.get(method) or by_verb.get(ALL_VERBS)
            if flags is None:
                continue
            if flags[1]:
                return DENIED
            if flags[0]:
                accept = True
            if flags[2] < audit_position:
                audit_position = flags[2]
                audit_verdict = flags[3]
        if not accept:
            return DENIED
        return audit_verdict or ALLOWED


def reference_decide(enforcer: casbin.Enforcer, role: str, method: str, path: str) -> PermissionVerdict:
    """The verdict from Casbin alone: ``enforce()`` decides; the audit topic comes from a scan of
    ``get_policy()`` in table order, because ``enforce_ex()`` explains with the *last* matching line
    (or the first DROP), not the first AUDIT one.

    An empty policy is a denial: with no lines, Casbin evaluates the matcher once against blank
    policy values, which would allow a request with an empty role and an empty method.
    """
    policy = enforcer.get_policy()
    if not policy or not enforcer.enforce(role, path, method):
        return DENIED
    for sub, prefix, verb, effect, topic in policy:
        if (
            effect == _AUDIT
            and sub == role
            and (verb == ALL_VERBS or verb == method)
            and path.startswith(prefix)
        ):
            return PermissionVerdict(True, True, topic or None)
    return ALLOWED


__all__ = [
    "ALLOWED",
    "ALLOWED_AUDITED",
    "DEFAULT_MEMO_SIZE",
    "DEFAULT_MODEL_PATH",
    "DENIED",
    "EFFECTS",
    "CompiledPermissions",
    "PermissionVerdict",
    "build_permission_enforcer",
    "reference_decide",
]

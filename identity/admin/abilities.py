"""Admin abilities (barong-behavior.md §8.1–8.2): which role may read, create, update or destroy what.

The abilities file (``policies/abilities.yml``, Barong's ``abilities.yml`` shape) is read and checked at
start-up; its entries become the policy lines of a Casbin enforcer (``policies/abilities_model.conf``),
which answers every admin request.  ``manage`` grants all four actions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import casbin
import yaml

from identity.errors import AbilityDenied

ACTIONS = ("read", "create", "update", "destroy", "manage")
SUBJECTS = (
    "Ability",
    "User",
    "Level",
    "Label",
    "Profile",
    "Activity",
    "APIKey",
    "Permission",
    "Restriction",
    "Document",
)

# Casbin logs every decision, and the model at INFO.
for _name in ("casbin", "casbin.policy", "casbin.enforcer", "casbin.role"):
    logging.getLogger(_name).disabled = True


class AbilitiesFileError(ValueError):
    """The abilities file is not valid; the message lists every problem."""


def parse_abilities(text: str, source: str = "<input>") -> dict[str, dict[str, tuple[str, ...]]]:
    """``{role: {action: subjects}}`` from the file's text; every problem reported at once."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AbilitiesFileError(f"{source}: invalid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("admin_permissions"), dict):
        raise AbilitiesFileError(f"{source}: expected a top-level mapping 'admin_permissions' of roles")
    problems: list[str] = []
    table: dict[str, dict[str, tuple[str, ...]]] = {}
    for role, grants in document["admin_permissions"].items():
        where = f"admin_permissions.{role}"
        if not isinstance(role, str) or not role.strip():
            problems.append(f"{where}: a role must be a non-blank string")
            continue
        if not isinstance(grants, dict):
            problems.append(f"{where}: must map actions ({', '.join(ACTIONS)}) to lists of subjects")
            continue
        table[role] = {}
        for action, subjects in grants.items():
            if action not in ACTIONS:
                problems.append(f"{where}.{action}: unknown action (known: {', '.join(ACTIONS)})")
                continue
            if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
                problems.append(f"{where}.{action}: must be a list of subjects")
                continue
            unknown = [s for s in subjects if s not in SUBJECTS]
            if unknown:
                known = ", ".join(SUBJECTS)
                problems.append(f"{where}.{action}: unknown subjects {', '.join(unknown)} (known: {known})")
                continue
            table[role][action] = tuple(subjects)
    if problems:
        raise AbilitiesFileError(f"{source}: invalid abilities file:\n  " + "\n  ".join(problems))
    return table


@dataclass(frozen=True)
class Abilities:
    """The admin abilities of every role, decided by Casbin."""

    table: dict[str, dict[str, tuple[str, ...]]]
    enforcer: Any  # casbin.Enforcer

    @classmethod
    def load(cls, path: Path, model_path: Path) -> Abilities:
        """Read ``path``; raises :class:`AbilitiesFileError` (a ``ValueError``) naming every problem."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise AbilitiesFileError(f"{path}: cannot read: {exc.strerror}") from None
        return cls.from_table(parse_abilities(text, str(path)), model_path)

    @classmethod
    def from_table(cls, table: dict[str, dict[str, tuple[str, ...]]], model_path: Path) -> Abilities:
        enforcer = casbin.Enforcer(str(model_path))
        lines = [
            [role, subject, action]
            for role, grants in table.items()
            for action, subjects in grants.items()
            for subject in subjects
        ]
        if lines:
            enforcer.add_policies(lines)
        return cls(table, enforcer)

    def can(self, role: str, action: str, subject: str) -> bool:
        return bool(self.enforcer.enforce(role, subject, action))

    def check(self, role: str, action: str, subject: str) -> None:
        """Raise :class:`AbilityDenied` (401 ``admin.ability.not_permitted``) unless ``role`` may."""
        if not self.can(role, action, subject):
            raise AbilityDenied()

    def of_role(self, role: str) -> dict[str, list[str]]:
        """What ``GET /admin/abilities`` shows: the role's entry of the file (``{}`` for none)."""
        return {action: list(subjects) for action, subjects in self.table.get(role, {}).items()}

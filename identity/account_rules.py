"""Levels and states from labels (barong-behavior.md §4.7).

``AccountRules`` is Barong's ``barong.yml``: the private labels an account needs to be ``active`` and the
label keys that force another state.  Levels are the ``levels`` table: a user's level is the id of the
last level, in id order, whose ``key:value`` private label it carries without a gap before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from identity.models import Label, Level


@dataclass(frozen=True, slots=True)
class AccountRules:
    """Activation requirements and state triggers."""

    activation_requirements: tuple[tuple[str, str], ...] = (("email", "verified"),)
    state_triggers: tuple[tuple[str, frozenset[str]], ...] = (
        ("banned", frozenset({"ban", "fraud"})),
        ("deleted", frozenset({"delete"})),
        ("locked", frozenset({"suspicious", "lock"})),
    )

    @classmethod
    def load(cls, path: Path) -> AccountRules:
        """Read a rules file; raises ``ValueError`` listing what is wrong with it."""
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
        return cls.parse(document, source=str(path))

    @classmethod
    def parse(cls, document: Any, source: str = "account rules") -> AccountRules:
        problems: list[str] = []
        if not isinstance(document, Mapping):
            raise ValueError(f"{source}: must be a mapping")
        requirements = document.get("activation_requirements", {"email": "verified"})
        pairs: list[tuple[str, str]] = []
        if not isinstance(requirements, Mapping):
            problems.append("activation_requirements must map label keys to values")
        else:
            pairs = [(str(k).lower(), str(v).lower()) for k, v in requirements.items()]
        # A key left out keeps Barong's default (as for the requirements); an empty mapping means none.
        triggers = document.get("state_triggers")
        if triggers is None:
            triggers = {state: sorted(keys) for state, keys in cls().state_triggers}
        parsed: list[tuple[str, frozenset[str]]] = []
        if not isinstance(triggers, Mapping):
            problems.append("state_triggers must map states to lists of label keys")
        else:
            for state, keys in triggers.items():
                if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                    problems.append(f"state_triggers.{state} must be a list of label keys")
                    continue
                parsed.append((str(state), frozenset(k.lower() for k in keys)))
        if problems:
            raise ValueError(f"{source}: " + "; ".join(problems))
        return cls(tuple(pairs), tuple(parsed))

    def state_for(self, labels: Iterable[Label]) -> str:
        """The state an account with these labels is in."""
        labels = list(labels)
        private = {(label.key, label.value) for label in labels if label.scope == "private"}
        state = "active" if all(pair in private for pair in self.activation_requirements) else "pending"
        keys = {label.key for label in labels}
        for trigger_state, trigger_keys in self.state_triggers:
            if keys & trigger_keys:
                state = trigger_state
        return state


def level_for(levels: Sequence[Level], labels: Iterable[Label]) -> int:
    """Id of the last consecutive level (in id order) whose private label the user has; 0 if none."""
    private = {(label.key, label.value) for label in labels if label.scope == "private"}
    level = 0
    for candidate in sorted(levels, key=lambda lv: lv.id):
        if (candidate.key, candidate.value) not in private:
            break
        level = candidate.id
    return level

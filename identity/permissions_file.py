"""The permissions file (Barong's ``seeds.yml`` shape) read and written by the CLI.

```yaml
permissions:
  - { role: member, verb: ALL, path: api/v2/peatio/account, action: ACCEPT }
  - { role: admin, verb: POST, path: api/v2/, action: AUDIT, topic: admin }
```

Other top-level keys (Barong's seeds also hold ``users``, ``levels``, ``restrictions``) are ignored, so
a Barong seeds file imports as it is.  Verbs and actions are accepted in any case and stored upper-case;
a blank topic means none.  Every problem in the file is reported at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import yaml

from identity.models import ACTIONS, VERBS, Permission

_FIELDS = ("role", "verb", "path", "action", "topic")


class PermissionsFileError(ValueError):
    """The permissions file is not valid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: invalid permissions file:\n  " + "\n  ".join(problems))
        self.source = source
        self.problems = problems


def _required_text(row: dict[Any, Any], where: str, key: str, problems: list[str]) -> str | None:
    value = row.get(key)
    if value is None:
        problems.append(f"{where}.{key}: missing")
        return None
    if not isinstance(value, str):
        problems.append(f"{where}.{key}: must be a string, not {value!r}")
        return None
    if not value.strip():
        problems.append(f"{where}.{key}: must not be blank")
        return None
    return value


def _choice(
    row: dict[Any, Any], where: str, key: str, allowed: tuple[str, ...], problems: list[str]
) -> str | None:
    value = _required_text(row, where, key, problems)
    if value is None:
        return None
    if value.upper() not in allowed:
        problems.append(f"{where}.{key}: {value!r} is not one of {', '.join(allowed)}")
        return None
    return value.upper()


def _row(row: Any, where: str, problems: list[str]) -> Permission | None:
    if not isinstance(row, dict):
        problems.append(f"{where}: must be a mapping with role, verb, path, action (and topic)")
        return None
    before = len(problems)
    for key in row:
        if key not in _FIELDS:
            problems.append(f"{where}: unknown key {key!r} (expected {', '.join(_FIELDS)})")
    role = _required_text(row, where, "role", problems)
    verb = _choice(row, where, "verb", VERBS, problems)
    path = _required_text(row, where, "path", problems)
    action = _choice(row, where, "action", ACTIONS, problems)
    topic = row.get("topic")
    if topic is not None and not isinstance(topic, str):
        problems.append(f"{where}.topic: must be a string, not {topic!r}")
    if len(problems) > before or role is None or verb is None or path is None or action is None:
        return None
    if topic is not None and not topic.strip():
        topic = None
    return Permission(role=role, verb=verb, path=path, action=action, topic=topic)


def parse_permissions(text: str, source: str = "<input>") -> list[Permission]:
    """The permissions listed in ``text``, in file order.

    Raises :class:`PermissionsFileError` (naming ``source``) with every problem in the file.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PermissionsFileError(source, [f"invalid YAML: {exc}"]) from None
    if not isinstance(document, dict) or "permissions" not in document:
        raise PermissionsFileError(source, ["expected a top-level key 'permissions' holding a list"])
    rows = document["permissions"]
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise PermissionsFileError(source, ["permissions: must be a list of mappings"])
    problems: list[str] = []
    permissions = [_row(row, f"permissions[{i}]", problems) for i, row in enumerate(rows)]
    if problems:
        raise PermissionsFileError(source, problems)
    return [p for p in permissions if p is not None]


def dump_permissions(perms: Iterable[Permission]) -> str:
    """YAML text that :func:`parse_permissions` reads back as the same permissions (ids are left out)."""
    lines = ["permissions:"]
    for p in perms:
        row = {"role": p.role, "verb": p.verb, "path": p.path, "action": p.action}
        if p.topic:
            row["topic"] = p.topic
        flow = yaml.safe_dump(row, default_flow_style=True, sort_keys=False, width=math.inf)
        lines.append(f"  - {flow.strip()}")
    if len(lines) == 1:
        return "permissions: []\n"
    return "\n".join(lines) + "\n"


__all__ = ["PermissionsFileError", "dump_permissions", "parse_permissions"]

"""Pass (public) and block path rules, read from Barong's ``authz_rules.yml`` shape.

```yaml
rules:
  pass: [api/v2/barong/public, ...]    # answered 200 without looking at credentials
  block: [api/v2/barong/management]    # answered 401 authz.permission_denied
```

Both are plain string prefixes of the request path (no leading slash, no segment awareness); block
wins over pass.  Prefixes are held in their canonical form (:mod:`authz.canonical`) and matched against
canonical request paths, so ``api/v2/management`` and ``api/v2/barong/management`` each block both.
A missing list is empty.  Unlike Barong, the file is read once (and again when the operator reloads it),
not on every request, and it is not run through ERB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from authz.canonical import canonical_prefixes

_LISTS = ("pass", "block")


class PathRulesError(ValueError):
    """The rules file cannot be read or does not have the expected shape; ``problems`` lists why."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: invalid path rules:\n  " + "\n  ".join(problems))
        self.source = source
        self.problems = problems


def _prefixes(name: str, value: Any, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(f"rules.{name}: must be a list of path prefixes")
        return ()
    prefixes: list[str] = []
    for i, item in enumerate(value):
        where = f"rules.{name}[{i}]"
        if not isinstance(item, str):
            problems.append(f"{where}: must be a string, not {item!r}")
        elif not item.strip():
            problems.append(f"{where}: an empty prefix would match every path")
        elif item.startswith("/"):
            # Request paths are matched without their leading slash; this entry would never match.
            problems.append(f"{where}: {item!r} starts with '/'; write it without the leading slash")
        else:
            prefixes.append(item)
    return tuple(prefixes)


def _canonical(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for prefix in prefixes for c in canonical_prefixes(prefix)))


@dataclass(frozen=True, slots=True)
class PathRules:
    """Path prefixes answered without credentials (pass) or always refused (block), in canonical form."""

    pass_prefixes: tuple[str, ...] = ()
    block_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pass_prefixes", _canonical(self.pass_prefixes))
        object.__setattr__(self, "block_prefixes", _canonical(self.block_prefixes))

    @classmethod
    def load(cls, path: Path) -> PathRules:
        """Read ``path``; raises :class:`PathRulesError` naming the file and every problem in it."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PathRulesError(str(path), [f"cannot read the file: {exc}"]) from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<input>") -> PathRules:
        """Rules from YAML text; ``source`` names the text in errors."""
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PathRulesError(source, [f"invalid YAML: {exc}"]) from None
        if not isinstance(document, dict) or "rules" not in document:
            raise PathRulesError(source, ["expected a top-level mapping 'rules' (lists pass and block)"])
        rules = {} if document["rules"] is None else document["rules"]
        if not isinstance(rules, dict):
            raise PathRulesError(source, ["rules: must be a mapping with lists pass and block"])
        problems = [
            f"rules.{key}: unknown key (expected pass or block)" for key in rules if key not in _LISTS
        ]
        pass_prefixes = _prefixes("pass", rules.get("pass"), problems)
        block_prefixes = _prefixes("block", rules.get("block"), problems)
        if problems:
            raise PathRulesError(source, problems)
        return cls(pass_prefixes=pass_prefixes, block_prefixes=block_prefixes)

    def classify(self, path: str) -> Literal["block", "pass"] | None:
        """``"block"`` or ``"pass"`` when a rule covers the canonical ``path`` (block wins), else ``None``."""
        if path.startswith(self.block_prefixes):
            return "block"
        if path.startswith(self.pass_prefixes):
            return "pass"
        return None


__all__ = ["PathRules", "PathRulesError"]

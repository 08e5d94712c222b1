"""The dependency rules drawn in the README: ``identity`` never imports ``authz``, and only the identity
package's web layer (``identity/http``) knows the aiohttp server (the domain may use aiohttp's client)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def test_identity_never_imports_authz() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.split(".")[0] == "authz")
        for path in _modules("identity")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_only_the_web_layer_knows_the_aiohttp_server() -> None:
    """Domain modules import neither the aiohttp server nor ``identity.http``."""
    web = ("aiohttp.web", "aiohttp.web_request", "aiohttp.web_response", "identity.http")
    offenders = {
        str(path.relative_to(ROOT)): sorted(name for name in _imports(path) if name.startswith(web))
        for path in _modules("identity")
        if "http" not in path.relative_to(ROOT / "identity").parts
    }
    assert {path: names for path, names in offenders.items() if names} == {}

"""Fixtures of the resource API tests: cheap password hashing and a cookie-less client of the whole app."""

from __future__ import annotations

from typing import Any

import pytest

from tests.identity.helpers import cheap_argon2


@pytest.fixture(autouse=True)
def _cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_argon2(monkeypatch)


@pytest.fixture
async def api(make_client: Any) -> Any:
    """A client of the whole app with default settings (no cookie jar: each request says what it sends)."""
    return await make_client()

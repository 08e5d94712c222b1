"""The token API's access tokens (``identity.access_tokens``): their time claims follow the rule of every
verifier of the service's JWTs (the table of ``tests/authz/test_upstream.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest

from authz.keys import SigningKey
from identity.access_tokens import SUBJECT, TOKEN_TYPE, AccessTokens
from identity.errors import AccessTokenRejected
from tests.authz.helpers import signing_key_pem
from tests.authz.test_upstream import EACH_TIME_CLAIM_CASE

NOW = 1_000_000


@EACH_TIME_CLAIM_CASE
def test_time_claims_must_be_numbers_that_hold_now(
    times: Callable[[int], dict[str, Any]], accepted: bool
) -> None:
    key = SigningKey.from_pem(signing_key_pem())
    tokens = AccessTokens(
        key, {key.kid: key.private_key.public_key()}, issuer="barong", lifetime=300, clock=lambda: NOW
    )
    claims = {"iss": "barong", "sub": SUBJECT, "uid": "ID1", "sid": "S1", "jti": "j", "iat": NOW}
    claims.update({"exp": NOW + 60, **times(NOW)})
    token = jwt.encode(claims, key.private_key, "RS256", headers={"typ": TOKEN_TYPE, "kid": key.kid})
    if accepted:
        assert tokens.verify(token).uid == "ID1"
    else:
        with pytest.raises(AccessTokenRejected):
            tokens.verify(token)


def test_an_issued_token_verifies_until_it_expires() -> None:
    key = SigningKey.from_pem(signing_key_pem())
    now = [float(NOW)]
    public_keys = {key.kid: key.private_key.public_key()}
    tokens = AccessTokens(key, public_keys, issuer="barong", lifetime=60, leeway=0, clock=lambda: now[0])
    token = tokens.issue("ID1", "S1")
    assert (tokens.verify(token).uid, tokens.verify(token).session) == ("ID1", "S1")
    now[0] += 60
    with pytest.raises(AccessTokenRejected):
        tokens.verify(token)

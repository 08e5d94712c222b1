"""Password hashing: argon2id for new hashes; bcrypt hashes imported from Barong are verified and upgraded."""

from __future__ import annotations

import asyncio

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)
# Verified against unknown e-mails so that timing does not reveal which e-mails exist.
_DUMMY_HASH = _hasher.hash("dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; ``stored=None`` burns the same time and answers False."""
    if stored is None:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return False
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        try:
            return bcrypt.checkpw(password.encode()[:72], stored.encode())
        except ValueError:
            return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for bcrypt hashes and argon2 hashes made with weaker parameters than today's."""
    if stored.startswith("$2"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# argon2 (and bcrypt) release the GIL while hashing: in a thread, a 50–200 ms hash leaves the event loop,
# and with it the decision endpoint, free.
async def hash_password_off_loop(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(stored: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored, password)

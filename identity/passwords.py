"""Password hashing: argon2id for new hashes; bcrypt hashes imported from Barong are verified and upgraded."""

from __future__ import annotations

import asyncio
import secrets

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


_LOWER = "abcdefghijkmnopqrstuvwxyz"  # no l: mailed passwords are read and typed by people
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, O
_DIGITS = "23456789"  # no 0, 1


def generate_password(length: int = 16) -> str:
    """A random password for accounts that never chose one (the token API mails it), from ``secrets``.

    It always holds a lower-case letter, an upper-case letter and a digit, so it meets the password rule of
    the identity API too (an account may later change it there); 16 characters of a 57-symbol alphabet
    carry about 93 bits.
    """
    if length < 8:
        raise ValueError("a generated password needs at least 8 characters")
    alphabet = _LOWER + _UPPER + _DIGITS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c in _LOWER for c in password) and any(c in _UPPER for c in password) and any(
            c in _DIGITS for c in password
        ):
            return password

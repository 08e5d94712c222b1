"""Users' phone numbers and their verification by SMS code (Barong's ``/resource/phones``).

Numbers are stored as E.164 digits without the ``+`` (``447418084106``) with their region (``GB``).  A code
is six random digits; only its hash is kept, in Redis, for ``phone_code_expire_time`` seconds and for a few
attempts.  A verified number adds the private label ``phone:verified`` (level 2 after ``email:verified``),
in the same transaction as the phone's ``validated_at``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from redis.asyncio import Redis
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from identity.account_propagation import AccountPropagation
from identity.account_rules import AccountRules, level_for
from identity.activity_log import ClientInfo
from identity.db import phones, users, utcnow
from identity.errors import BadRequest, RecordNotFound, ValidationFailed
from identity.labels import SqlLabelRepository, SqlLevelRepository
from identity.models import Phone, User
from identity.redis_errors import redis_guard
from identity.send_throttle import SendThrottle
from identity.sms import SmsSender
from identity.storage import reading, transaction
from identity.users import SqlUserRepository

CHANNELS = ("sms",)  # Barong also knows "call" (Twilio Verify); we only send text messages
MAX_ATTEMPTS = 5  # checks of one code, right or wrong; then the code is void

INVALID_NUM = "resource.phone.invalid_num"
NUMBER_EXIST = "resource.phone.number_exist"
EXISTS = "resource.phone.exists"
DOESNT_EXIST = "resource.phone.doesnt_exist"
VERIFICATION_INVALID = "resource.phone.verification_invalid"
RESEND_TOO_EARLY = "resource.phone.exceeded_resend_limit"


def parse_number(raw: str) -> tuple[str, str]:
    """``(digits, region)`` of an international number (``"+44 7418 084106"`` → ``("447418084106", "GB")``).

    As Barong, everything but digits is dropped and the rest read as country code + number (a national
    trunk ``0`` after the country code is tolerated).  Anything that is not a valid number → 400
    ``resource.phone.invalid_num``.
    """
    digits = re.sub(r"\D", "", raw)
    if not 6 <= len(digits) <= 17:
        raise BadRequest(INVALID_NUM)
    try:
        number = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        raise BadRequest(INVALID_NUM) from None
    region = phonenumbers.region_code_for_number(number)
    if not phonenumbers.is_valid_number(number) or not region:
        raise BadRequest(INVALID_NUM)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:], region


def mask_number(number: str) -> str:
    """Barong's ``sub_masked_number``: the country code and the last four digits stay (``44******4106``)."""
    try:
        code = str(phonenumbers.parse(f"+{number}", None).country_code)
    except phonenumbers.NumberParseException:
        code = number[:1]
    keep = len(code)
    if len(number) <= keep + 4:
        return number
    return number[:keep] + "*" * (len(number) - keep - 4) + number[-4:]


def _phone(row: Row[Any]) -> Phone:
    return Phone(
        id=row.id,
        user_id=row.user_id,
        country=row.country,
        number=row.number,
        validated_at=row.validated_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlPhoneRepository:
    """Reads and writes the ``phones`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def for_user(self, user_id: int) -> list[Phone]:
        async with reading(self._engine) as conn:
            return await self.for_user_in(conn, user_id)

    @staticmethod
    async def for_user_in(conn: AsyncConnection, user_id: int) -> list[Phone]:
        query = select(phones).where(phones.c.user_id == user_id).order_by(phones.c.id)
        return [_phone(row) for row in (await conn.execute(query)).all()]

    async def find(self, user_id: int, number: str) -> Phone | None:
        """The user's phone with this number (the oldest, should there be two)."""
        query = (
            select(phones).where(phones.c.user_id == user_id, phones.c.number == number).order_by(phones.c.id)
        )
        async with reading(self._engine) as conn:
            row = (await conn.execute(query.limit(1))).first()
        return _phone(row) if row else None

    async def verified_anywhere(self, number: str) -> bool:
        """Whether any user has verified this number."""
        query = select(phones.c.id).where(phones.c.number == number, phones.c.validated_at.is_not(None))
        async with reading(self._engine) as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def add(self, user_id: int, number: str, country: str) -> Phone:
        """A new unverified phone; ``resource.phone.exists`` when the user has the number already."""
        now = utcnow()
        async with transaction(self._engine) as conn:
            # Serialises a user's phone changes on PostgreSQL (a no-op on SQLite, which writes one at a time).
            await conn.scalar(select(users.c.id).where(users.c.id == user_id).with_for_update())
            taken = select(phones.c.id).where(phones.c.user_id == user_id, phones.c.number == number)
            if (await conn.execute(taken.limit(1))).first() is not None:
                raise BadRequest(EXISTS)
            phone_id = (
                await conn.execute(
                    phones.insert()
                    .values(user_id=user_id, number=number, country=country, created_at=now, updated_at=now)
                    .returning(phones.c.id)
                )
            ).scalar_one()
        return Phone(
            id=phone_id, user_id=user_id, country=country, number=number, created_at=now, updated_at=now
        )

    async def mark_verified(self, phone: Phone, at: datetime, rules: AccountRules) -> None:
        """Set ``validated_at`` and the private label ``phone:verified``, recomputing level and state (§4.7),
        in one transaction; ``resource.phone.number_exist`` when another user verified the number first."""
        async with transaction(self._engine) as conn:
            await conn.scalar(select(users.c.id).where(users.c.id == phone.user_id).with_for_update())
            others = select(phones.c.id).where(
                phones.c.number == phone.number, phones.c.validated_at.is_not(None), phones.c.id != phone.id
            )
            if (await conn.execute(others.limit(1))).first() is not None:
                raise BadRequest(NUMBER_EXIST)
            await conn.execute(
                update(phones).where(phones.c.id == phone.id).values(validated_at=at, updated_at=utcnow())
            )
            # What SqlUserRepository.put_label does, on this transaction: the label never without the phone.
            await SqlLabelRepository.put_in(conn, phone.user_id, "phone", "verified", "private")
            labels = await SqlLabelRepository.for_user_in(conn, phone.user_id)
            levels = await SqlLevelRepository.list_in(conn)
            await conn.execute(
                update(users)
                .where(users.c.id == phone.user_id)
                .values(state=rules.state_for(labels), level=level_for(levels, labels), updated_at=utcnow())
            )


# KEYS[1] last send time; ARGV now, interval, ttl.  1 = claimed, 0 = too early.
_CLAIM_SEND = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""

# KEYS[1] code hash; ARGV now, max attempts.  The digest of a live code (counting the attempt), else nil.
_TAKE_ATTEMPT = """
local code = redis.call('HMGET', KEYS[1], 'digest', 'expires_at')
if not code[1] then return false end
if tonumber(ARGV[1]) >= tonumber(code[2]) then redis.call('DEL', KEYS[1]) return false end
if redis.call('HINCRBY', KEYS[1], 'attempts', 1) > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return false
end
return code[1]
"""


class RedisPhoneCodes:
    """Verification codes (hashed) and the time of the last send, per user and number.

    Expiry and the resend interval are judged by the service's clock (stored times), the Redis TTLs only
    clean up.
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str,
        *,
        expire_time: int,
        resend_interval: int,
        clock: Callable[[], float],
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:phone"
        self._expire = expire_time
        self._interval = resend_interval
        self._clock = clock
        self._max_attempts = max_attempts
        self._claim = redis.register_script(_CLAIM_SEND)
        self._take = redis.register_script(_TAKE_ATTEMPT)

    def _key(self, kind: str, user_id: int, number: str) -> str:
        return f"{self._prefix}:{kind}:{user_id}:{number}"

    @staticmethod
    def _digest(user_id: int, number: str, code: str) -> str:
        return hashlib.sha256(f"{user_id}:{number}:{code}".encode()).hexdigest()

    async def claim_send(self, user_id: int, number: str) -> bool:
        """Record a send now; False when the last one was less than the resend interval ago."""
        ttl = max(1, self._interval)
        async with redis_guard():
            claimed = await self._claim(
                keys=[self._key("sent", user_id, number)], args=[self._clock(), self._interval, ttl]
            )
        return bool(int(claimed))

    async def release_send(self, user_id: int, number: str) -> None:
        """Forget a claimed send that did not happen (the SMS could not be sent)."""
        async with redis_guard():
            await self._redis.delete(self._key("sent", user_id, number))

    async def store(self, user_id: int, number: str, code: str) -> None:
        """Keep ``code`` (replacing any earlier one, whose attempts are forgotten)."""
        key = self._key("code", user_id, number)
        mapping = {
            "digest": self._digest(user_id, number, code),
            "expires_at": repr(self._clock() + self._expire),
            "attempts": 0,
        }
        async with redis_guard():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, math.ceil(self._expire) + 1)
                await pipe.execute()

    async def check(self, user_id: int, number: str, code: str) -> bool:
        """Whether ``code`` is the live code of this number (each check counts as an attempt)."""
        async with redis_guard():
            digest = await self._take(
                keys=[self._key("code", user_id, number)], args=[self._clock(), self._max_attempts]
            )
        return digest is not None and hmac.compare_digest(str(digest), self._digest(user_id, number, code))

    async def forget(self, user_id: int, number: str) -> None:
        async with redis_guard():
            await self._redis.delete(self._key("code", user_id, number))


class PhoneService:
    """Adding a phone, (re)sending its code and verifying it (barong-behavior.md §1.2, §4.7)."""

    def __init__(
        self,
        phones: SqlPhoneRepository,
        codes: RedisPhoneCodes,
        sender: SmsSender,
        users: SqlUserRepository,
        propagation: AccountPropagation,
        rules: AccountRules,
        *,
        throttle: SendThrottle,
        template: str,
        app_name: str,
        clock: Callable[[], float],
    ) -> None:
        self._phones = phones
        self._throttle = throttle
        self._codes = codes
        self._sender = sender
        self._users = users
        self._propagation = propagation
        self._rules = rules
        self._template = template
        self._app_name = app_name
        self._clock = clock

    async def list(self, user: User) -> list[Phone]:
        return await self._phones.for_user(user.id)

    async def _usable_number(self, raw: str) -> tuple[str, str]:
        """Barong's ``validate_phone!``: a valid number (400 ``invalid_num``) nobody verified (400 ``number_exist``)."""
        number, region = parse_number(raw)
        if await self._phones.verified_anywhere(number):
            raise BadRequest(NUMBER_EXIST)
        return number, region

    async def add(self, user: User, raw: str, client: ClientInfo) -> Phone:
        """Add an unverified phone and send it a code (400 ``exists`` when the user has the number)."""
        number, region = await self._usable_number(raw)
        if await self._phones.find(user.id, number) is not None:
            raise BadRequest(EXISTS)
        await self._send_code(user, number, client)
        try:
            return await self._phones.add(user.id, number, region)
        except BaseException:
            await self._codes.forget(user.id, number)
            raise

    async def send_code(self, user: User, raw: str, client: ClientInfo) -> None:
        """A new code for one of the user's unverified phones (404 ``doesnt_exist`` for another number)."""
        number, _ = await self._usable_number(raw)
        if await self._phones.find(user.id, number) is None:
            raise RecordNotFound(DOESNT_EXIST)
        await self._send_code(user, number, client)

    async def _send_code(self, user: User, number: str, client: ClientInfo) -> None:
        """Send a code: within the number's and the client's limits (``TooManyRequests``), and the resend
        interval of this user and number (422 ``exceeded_resend_limit``)."""
        await self._throttle.admit(number, client.ip)
        if not await self._codes.claim_send(user.id, number):
            raise ValidationFailed(RESEND_TOO_EARLY)
        code = f"{secrets.randbelow(10**6):06d}"
        try:
            await self._sender.send(f"+{number}", self._template.format(code=code, app_name=self._app_name))
        except BaseException:
            await self._codes.release_send(user.id, number)
            raise
        await self._codes.store(user.id, number, code)

    async def verify(self, user: User, raw: str, code: str) -> User:
        """Check the code; the phone becomes verified and the user gets ``phone:verified``.

        404 ``doesnt_exist`` for a number that is not the user's, 404 ``verification_invalid`` for a wrong,
        expired or exhausted code.  Returns the user as it is afterwards.
        """
        number, _ = await self._usable_number(raw)
        phone = await self._phones.find(user.id, number)
        if phone is None:
            raise RecordNotFound(DOESNT_EXIST)
        if not await self._codes.check(user.id, number, code):
            raise RecordNotFound(VERIFICATION_INVALID)
        await self._phones.mark_verified(phone, datetime.fromtimestamp(self._clock(), UTC), self._rules)
        await self._codes.forget(user.id, number)
        after = await self._users.get_by_uid(user.uid)
        if after is None:
            raise RecordNotFound("record.not_found")
        await self._propagation.user_changed(user, after)  # also announces user:<uid> (level, maybe state)
        return after

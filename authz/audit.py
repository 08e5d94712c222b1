"""Admin activities written by the decision endpoint (RBAC denials and AUDIT permissions), off the hot path.

The decision only enqueues; a background task writes batches to SQL.  On shutdown the batch being written
is finished and the queue is drained.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl

import orjson

from authz.decision import DecisionRequest, Principal
from identity.activities import SqlActivityRepository
from identity.activity_log import header_text
from identity.db import utcnow
from identity.input_limits import NUL
from identity.models import Activity

log = logging.getLogger(__name__)

_ACTIONS = {"POST": "create", "PUT": "update", "PATCH": "update", "GET": "read", "DELETE": "delete"}


def admin_topic(path: str, audit_topic: str | None) -> str:
    """The AUDIT permission's topic, else the segment after the first ``admin/``, else ``general``."""
    if audit_topic:
        return audit_topic
    marker = path.find("admin/")
    if marker >= 0:
        segment = path[marker + len("admin/") :].split("/", 1)[0]
        if segment:
            return segment
    return "general"


def admin_activity(
    request: DecisionRequest, principal: Principal, result: str, topic: str | None, country: str | None
) -> Activity:
    params = dict(parse_qsl(request.query_string, keep_blank_values=True))
    target = params.get("uid") or params.get("user_uid")
    if target and NUL in target:
        target = None  # no user's uid, and PostgreSQL's text cannot hold it: the whole batch would be lost
    return Activity(
        category="admin",
        topic=admin_topic(request.path, topic),
        action=_ACTIONS.get(request.method, "system"),
        result=result,
        user_id=principal.user_id,
        target_uid=target[:32] if target else None,
        user_ip=request.client_ip,
        user_ip_country=country,
        user_agent=header_text(request.headers.get("User-Agent", "")),
        data=orjson.dumps({**params, "path": request.path}).decode(),
        created_at=utcnow(),
    )


class ActivityRecorder:
    """A bounded queue of activities and the task that writes them in batches."""

    def __init__(self, activities: SqlActivityRepository, *, max_queue: int = 10_000, batch: int = 200) -> None:
        self._activities = activities
        self._queue: asyncio.Queue[Activity] = asyncio.Queue(max_queue)
        self._batch = batch
        self._writing: asyncio.Future[None] | None = None  # the batch taken off the queue, being written
        self.dropped = 0

    def record(self, activity: Activity) -> None:
        try:
            self._queue.put_nowait(activity)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("activity queue full; dropped an admin activity (%s)", activity.topic)

    async def run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # Shielded: cancelling the recorder at shutdown must not lose the batch it already took off the
            # queue; :meth:`drain` waits for it.
            self._writing = asyncio.ensure_future(self._write(batch))
            await asyncio.shield(self._writing)

    async def _write(self, batch: list[Activity]) -> None:
        for attempt in range(5):
            try:
                await self._activities.add_many(batch)
                return
            except Exception as exc:  # noqa: BLE001 - retried, then logged; the decision already answered
                log.warning("writing %d activities failed (attempt %d): %s", len(batch), attempt + 1, exc)
                await asyncio.sleep(0.2 * 2**attempt)
        log.error("dropped %d activities after retries", len(batch))

    async def drain(self) -> None:
        """Write what is left: the batch in flight, then the queue (call after cancelling :meth:`run`)."""
        if self._writing is not None:
            await self._writing
        batch: list[Activity] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._write(batch)

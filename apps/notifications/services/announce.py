"""Announcing what happened to users' points: in-site notifications and the webhook outbox, in one go.

Every service that changes points or what they bought calls `announce` inside its own
transaction, so an announcement commits or rolls back with what it announces: a notification
for a rolled-back award never appears, and a committed award is never left unannounced. The
webhook deliveries are outbox rows: Celery sends them later (`services.deliveries`), never the
request or the worker's batch.

Cost: one multi-row INSERT of notifications per call, and one of deliveries when an active
endpoint wants one of the types; which endpoints want what is read at most once a second per
process (`JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S`), so a new endpoint starts receiving within that.
"""

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.utils import timezone

from apps.core.multirow import rows_insert
from apps.notifications.events import EVENT_TYPES
from apps.notifications.models import Notification, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class Announcement:
    """One thing to announce.

    `key` is unique and stable for what is announced (the ledger entry's idempotency key, the
    redemption's id and new status…): the webhook message id derives from it, so a receiver sees
    the same `webhook-id` on every attempt. `data` must be JSON-ready; it is the webhook payload's
    `data` and what the notification's text is made of.
    """

    type: str
    user_id: int | None
    key: str
    data: dict = field(default_factory=dict)
    notify: bool = True  # becomes an in-site notification for `user_id`
    webhook: bool = True  # becomes a delivery for each active endpoint that wants `type`
    once: bool = False  # the notification keeps `key`; a second announcement of it is refused by the database

    def __post_init__(self):
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")


def message_id(key: str) -> str:
    """The `webhook-id` of an announcement: the same for the same key, on every attempt and every endpoint."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def webhook_body(*, event_type: str, data: dict, at: datetime) -> str:
    """The JSON body a receiver gets (Standard Webhooks' shape: type, timestamp, data)."""
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return orjson.dumps({"type": event_type, "timestamp": stamp, "data": data}).decode()


class _Subscriptions:
    """{event type: [endpoint ids]} of the active endpoints, read at most once per refresh interval per process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._value: dict[str, list[int]] | None = None
        self._read_at = 0.0

    def get(self) -> dict[str, list[int]]:
        now = time.monotonic()
        value = self._value
        if value is not None and now - self._read_at < settings.JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S:
            return value
        with self._lock:
            wanted: dict[str, list[int]] = {}
            for pk, types in WebhookEndpoint.objects.filter(active=True).order_by("pk").values_list("pk", "event_types"):
                for event_type in types or ():
                    wanted.setdefault(event_type, []).append(pk)
            self._value, self._read_at = wanted, now
            return wanted

    def clear(self) -> None:
        with self._lock:
            self._value = None


subscriptions = _Subscriptions()


def subscriptions_changed(**_signal) -> None:
    """An endpoint was saved or deleted in this process: read the subscriptions again at the next announcement."""
    subscriptions.clear()


_DELIVERY_COLUMNS = (
    "endpoint_id",
    "message_id",
    "event_type",
    "payload",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "created_at",
)


def announce(announcements: Sequence[Announcement], *, now: datetime | None = None) -> None:
    """Write the notifications and webhook deliveries of `announcements`, in the caller's transaction."""
    if not announcements:
        return
    now = now or timezone.now()
    rows_insert(
        Notification,
        ("user_id", "kind", "data", "key", "created_at"),
        [(a.user_id, a.type, a.data, a.key if a.once else "", now) for a in announcements if a.notify and a.user_id],
    )
    wanted = subscriptions.get()
    if not wanted:
        return
    deliveries = []
    for a in announcements:
        endpoints = wanted.get(a.type) if a.webhook else None
        if not endpoints:
            continue
        body, msg = webhook_body(event_type=a.type, data=a.data, at=now), message_id(a.key)
        pending = WebhookDelivery.Status.PENDING
        deliveries.extend((endpoint_id, msg, a.type, body, pending, 0, "", now, now) for endpoint_id in endpoints)
    rows_insert(
        WebhookDelivery,
        _DELIVERY_COLUMNS,
        deliveries,
    )

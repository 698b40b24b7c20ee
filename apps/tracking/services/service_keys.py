"""Writes behind the events API: service keys, the signatures seen, and accepting a batch of events."""

import logging
import secrets
import time
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core import metrics
from apps.tracking.events import ACCEPTED_AT, Event
from apps.tracking.handoff import HandoffUnavailable, handoff
from apps.tracking.models import OutboxEvent, SeenSignature, ServiceKey
from apps.tracking.signing import SignedRequest

logger = logging.getLogger(__name__)

# A key's last use is written at most this often: not a write on every request.
_LAST_USED_RESOLUTION_S = 60


class SignatureReplayed(Exception):
    """The signature was accepted before (a concurrent replay lost the race on the unique constraint)."""


class KeyRevoked(Exception):
    """The key was revoked while its request was being read (the revocation committed first)."""


def _normalized_task_types(task_types: str) -> str:
    return ",".join(sorted({item.strip() for item in task_types.split(",") if item.strip()}))


def service_key_create(*, name: str, task_types: str = "", may_hold: bool = False, created_by=None) -> tuple[ServiceKey, str]:
    """A new active key; returns it with its secret, which is not shown anywhere again."""
    secret = secrets.token_urlsafe(32)
    key = ServiceKey.objects.create(
        name=name,
        key_id=f"jk_{secrets.token_hex(8)}",
        secret=secret,
        task_types=_normalized_task_types(task_types),
        may_hold=may_hold,
        created_by=created_by,
    )
    return key, secret


def service_key_revoke(*, key: ServiceKey, revoked_by=None) -> bool:
    """Revoke the key now, for every process (each request reads its key); False if it was revoked already."""
    with transaction.atomic():
        locked = ServiceKey.objects.select_for_update().get(pk=key.pk)
        if locked.revoked_at is not None:
            return False
        locked.revoked_at = timezone.now()
        locked.revoked_by = revoked_by
        locked.save(update_fields=["revoked_at", "revoked_by"])
    key.revoked_at, key.revoked_by = locked.revoked_at, locked.revoked_by
    return True


def service_key_touch(*, key: ServiceKey) -> None:
    """Note that the key was just used (to the minute)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(seconds=_LAST_USED_RESOLUTION_S):
        ServiceKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def seen_signatures_prune() -> int:
    """Forget signatures whose timestamps are stale now (a replay of one is refused as stale); return how many."""
    deleted, _ = SeenSignature.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def signature_use(*, signed: SignedRequest) -> None:
    """Mark the request's signature used, in the caller's transaction, so that a replay is refused.

    For requests that write in the same transaction (the holds API): if the write fails, the
    signature stays unused. The key's row is read FOR SHARE: requests of one key do not wait for
    each other, and a revocation (FOR UPDATE) waits for them, or they see it. Raises KeyRevoked or
    SignatureReplayed.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {ServiceKey._meta.db_table} WHERE id = %s AND revoked_at IS NULL"  # noqa: S608 - the model's table
            + (" FOR SHARE" if connection.vendor == "postgresql" else ""),
            [signed.key.pk],
        )
        if cursor.fetchone() is None:
            raise KeyRevoked
    try:
        with transaction.atomic():
            SeenSignature.objects.create(signature=signed.signature, key=signed.key, expires_at=signed.expires_at)
    except IntegrityError:
        raise SignatureReplayed from None


def events_accept(*, signed: SignedRequest, events: list[Event]) -> str:
    """Mark the request's signature used and make its events durable; return where they went.

    "broker" (the Redis inbox, or the embedded broker), "outbox" (the broker could not take them:
    the outbox table keeps them until it can), or "none" (nothing to hand off). The signature and
    the outbox rows are one transaction: if the events cannot be kept, the signature stays unused
    and the same request may be sent again. Raises SignatureReplayed (nothing handed off), or the
    database's error when neither the broker nor the database could take the events. Raises
    KeyRevoked if the key was revoked since the request's signature was checked.
    """
    payloads = {}
    for event in events:  # an event_id seen before is skipped (SPEC §2): the first copy stands
        payloads.setdefault(event.event_id, event.to_payload())
    payloads = list(payloads.values())
    accepted_at = time.time()
    for payload in payloads:
        payload[ACCEPTED_AT] = accepted_at
    with transaction.atomic():
        # Serialised with service_key_revoke on the key's row: a request is accepted wholly before
        # a revocation commits, or refused after it; none slips through in between.
        if not ServiceKey.objects.select_for_update().filter(pk=signed.key.pk, revoked_at__isnull=True).exists():
            raise KeyRevoked
        try:
            with transaction.atomic():
                SeenSignature.objects.create(signature=signed.signature, key=signed.key, expires_at=signed.expires_at)
        except IntegrityError:
            raise SignatureReplayed from None
        if not payloads:
            return "none"
        # Counted when the signature (and any outbox row) commits: a request that fails after
        # the hand-off is answered 503 and sent again, and is counted then.
        count = len(payloads)
        metrics.after_commit(lambda: metrics.EVENTS_ACCEPTED.labels(source=metrics.SOURCE_API).inc(count))
        try:
            handoff().send(payloads)
        except HandoffUnavailable as exc:
            logger.warning("api: %d events from key %s kept in the outbox: %s", len(payloads), signed.key.key_id, exc)
            OutboxEvent.objects.bulk_create(
                [OutboxEvent(event_id=payload["event_id"], payload=payload, last_error=str(exc)[:2000]) for payload in payloads],
                ignore_conflicts=True,
            )
            return "outbox"
    return "broker"

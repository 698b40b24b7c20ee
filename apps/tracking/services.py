"""Moving events from the web process to the workers, and processing them there."""

import logging
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.db import transaction

from apps.ledger.services import EntryMeta, account_lock
from apps.rules.services import completion_evaluate, completion_reverse
from apps.tasks.models import TaskConfig
from apps.tasks.services import completion_record
from apps.tracking.events import Event
from apps.tracking.models import OutboxEvent

logger = logging.getLogger(__name__)

OUTBOX_BATCH = 500


class Outcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"  # this event_id was processed before
    UNKNOWN_TASK = "unknown_task"
    UNKNOWN_USER = "unknown_user"


def _publish(payload: dict) -> None:
    from apps.tracking.tasks import process_event

    process_event.apply_async(args=[payload], retry=False)


def event_dispatch(*, event: Event) -> None:
    """Hand the event to the broker; if the broker fails, keep it in the outbox instead."""
    payload = event.to_payload()
    try:
        _publish(payload)
    except Exception as exc:
        logger.warning("broker unavailable, event %s for user %s kept in the outbox: %s", event.event_id, event.user_id, exc)
        OutboxEvent.objects.get_or_create(event_id=event.event_id, defaults={"payload": payload, "last_error": str(exc)[:2000]})


def outbox_flush(*, limit: int = OUTBOX_BATCH) -> int:
    """Publish waiting outbox events, oldest first; return how many went out.

    A row is deleted in the same transaction that published it. If the commit fails after the
    publish, the event goes out again later, and processing skips it by its event_id.
    """
    sent = 0
    with transaction.atomic():
        rows = list(OutboxEvent.objects.select_for_update(skip_locked=True).order_by("created_at", "id")[:limit])
        for row in rows:
            try:
                _publish(row.payload)
            except Exception as exc:
                OutboxEvent.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, last_error=str(exc)[:2000])
                logger.warning("outbox: broker still unavailable after %d events: %s", sent, exc)
                break
            row.delete()
            sent += 1
    return sent


def event_process(*, event: Event) -> Outcome:
    """Record the completion and apply every rule to it, in one transaction, exactly once."""
    config = TaskConfig.objects.filter(task_type=event.task_type).first()
    if config is None:
        logger.warning("event %s for user %s names unknown task type %r; skipped", event.event_id, event.user_id, event.task_type)
        return Outcome.UNKNOWN_TASK
    if not get_user_model().objects.filter(pk=event.user_id).exists():
        logger.warning("event %s names unknown user %s; skipped", event.event_id, event.user_id)
        return Outcome.UNKNOWN_USER
    meta = EntryMeta(location=event.location, country=event.country, lang_type=event.lang_type)
    with transaction.atomic():
        # The account lock comes first: it serializes all of this user's events, so progress,
        # recipients and balance are read and written by one worker at a time.
        account = account_lock(user_id=event.user_id)
        record = completion_record(
            config=config,
            user_id=event.user_id,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            business_id=event.business_id,
            method=event.method,
            path=event.path,
            status_code=event.status,
            location=event.location,
            country=event.country,
            lang_type=event.lang_type,
        )
        if record is None:
            return Outcome.DUPLICATE
        if config.reverses:
            completion_reverse(record=record, account=account, meta=meta)
        decisions = completion_evaluate(record=record, account=account, meta=meta)
        record.decisions = [decision.as_record() for decision in decisions]
        record.save(update_fields=["decisions", "updated_at"])
    return Outcome.PROCESSED

"""Celery tasks: thin wrappers around tracking.services."""

import logging

from celery import shared_task
from django.db import OperationalError

from apps.tracking.events import Event, EventError
from apps.tracking.services import event_process, outbox_flush

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def process_event(payload: dict) -> str:
    try:
        event = Event.from_payload(payload)
    except EventError as exc:
        logger.error("malformed event dropped: %s; payload %r", exc, payload)
        return "malformed"
    return str(event_process(event=event))


@shared_task
def flush_outbox() -> int:
    return outbox_flush()

"""Celery tasks: thin wrappers around tracking.services."""

import logging

from celery import shared_task
from django.db import OperationalError

from apps.tracking.services.pipeline import event_payload_process, heartbeat_record, inbox_drain, inbox_sweep, outbox_flush
from apps.tracking.services.service_keys import seen_signatures_prune

logger = logging.getLogger(__name__)

# Acknowledged only when done, and given back to the broker if the worker dies: a killed worker
# loses nothing, and processing is idempotent on event_id, so a redelivery doubles nothing.
_RELIABLE = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(**_RELIABLE, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def process_event(payload: dict) -> str:
    """One event (the embedded broker's path; Redis deployments drain the inbox instead)."""
    return event_payload_process(payload=payload)


@shared_task(**_RELIABLE, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=10)
def drain_inbox() -> dict:
    return dict(inbox_drain())


@shared_task(ignore_result=True)
def sweep_inbox() -> int:
    return inbox_sweep()


@shared_task(ignore_result=True)
def flush_outbox() -> int:
    return outbox_flush()


@shared_task(ignore_result=True)
def heartbeat() -> None:
    heartbeat_record()


@shared_task(ignore_result=True)
def prune_seen_signatures() -> int:
    return seen_signatures_prune()

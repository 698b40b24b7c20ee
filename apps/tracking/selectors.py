"""Reads about the pipeline's health (GET /healthz)."""

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.tracking.handoff import handoff, uses_inbox
from apps.tracking.models import FailedEvent, Heartbeat, OutboxEvent


@dataclass
class Health:
    checks: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _age_s(moment) -> float | None:
    return None if moment is None else round((timezone.now() - moment).total_seconds(), 1)


def health_report() -> Health:
    """Database, broker, outbox backlog, oldest unprocessed event, last worker heartbeat."""
    health = Health()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        health.checks["database"] = "ok"
    except Exception as exc:
        health.checks["database"] = f"error: {exc}"
        health.problems.append("database")
        return health  # everything below needs the database

    oldest = None
    if uses_inbox():
        try:
            inbox = handoff().inbox  # the process's client: no new connection pool per check
            inbox.ping()
            health.checks["broker"] = "ok"
            health.checks["inbox_backlog"] = inbox.backlog()
            oldest = inbox.oldest_age_s()
        except Exception as exc:
            health.checks["broker"] = f"error: {type(exc).__name__}: {exc}"
            health.problems.append("broker")
    else:
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
        health.checks["broker"] = "ok" if folder else "unknown"

    outbox = OutboxEvent.objects.order_by("created_at").values_list("created_at", flat=True)
    first_waiting = outbox.first()
    health.checks["outbox_backlog"] = outbox.count() if first_waiting else 0
    outbox_age = _age_s(first_waiting)
    ages = [age for age in (oldest, outbox_age) if age is not None]
    health.checks["oldest_unprocessed_age_s"] = round(max(ages), 1) if ages else None
    if ages and max(ages) > settings.JIFEN_HEALTH_MAX_EVENT_AGE_S:
        health.problems.append("oldest_unprocessed_age_s")

    beat = Heartbeat.objects.filter(name="worker").values_list("seen_at", flat=True).first()
    health.checks["worker_heartbeat_age_s"] = _age_s(beat)
    if beat is None or _age_s(beat) > settings.JIFEN_HEALTH_MAX_HEARTBEAT_AGE_S:
        health.problems.append("worker_heartbeat_age_s")

    health.checks["failed_events"] = FailedEvent.objects.filter(status=FailedEvent.Status.FAILED).count()
    health.checks["checked_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return health

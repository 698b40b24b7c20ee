"""Reads about webhooks for the admin: what the dashboard says, the endpoints' counts."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.notifications.models import WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class DisabledEndpoint:
    pk: int
    name: str
    disabled_at: datetime
    reason: str


@dataclass(frozen=True)
class WebhooksDashboard:
    waiting: int  # deliveries still to be sent (or retried)
    failed: int  # deliveries given up
    disabled: list[DisabledEndpoint]  # endpoints disabled for failing, newest first


def webhooks_dashboard() -> WebhooksDashboard:
    """The dashboard's webhook figures: three small reads, each on a partial index (or the endpoints)."""
    status = WebhookDelivery.Status
    disabled = [
        DisabledEndpoint(pk, name, at, reason)
        for pk, name, at, reason in WebhookEndpoint.objects.filter(active=False, disabled_at__isnull=False)
        .order_by("-disabled_at")
        .values_list("pk", "name", "disabled_at", "disabled_reason")
    ]
    return WebhooksDashboard(
        waiting=WebhookDelivery.objects.filter(status=status.PENDING).count(),
        failed=WebhookDelivery.objects.filter(status=status.FAILED).count(),
        disabled=disabled,
    )


def _count(status: str) -> Subquery:
    per_endpoint = (
        WebhookDelivery.objects.filter(endpoint=OuterRef("pk"), status=status)
        .order_by()
        .values("endpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(per_endpoint), 0)


def endpoints_with_counts(queryset: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
    """The endpoints, each with `waiting` and `given_up`: its deliveries pending and failed."""
    status = WebhookDelivery.Status
    return queryset.annotate(waiting=_count(status.PENDING), given_up=_count(status.FAILED))

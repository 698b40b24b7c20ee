"""Reads: a user's notifications (the unread count in the header, pages of them, newest first), and
the webhook figures of the admin (the dashboard's, the endpoints' counts of deliveries)."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from apps.notifications.models import Notification, WebhookDelivery, WebhookEndpoint


@dataclass(frozen=True)
class NotificationPage:
    notifications: list[Notification]
    next_before: int | None  # the id to pass as `before` for the next, older page; None on the last page


def unread_count(*, user_id: int) -> int:
    """How many of the user's notifications are unread: one COUNT on the partial index `notification_unread`."""
    return Notification.objects.filter(user_id=user_id, read_at__isnull=True).count()


def notifications_page(*, user_id: int, before: int | None = None, limit: int = 20, unread: bool = False) -> NotificationPage:
    """The user's notifications with id below `before` (the newest, without it), newest first, `limit` at a time.

    Keyed by id, so a page does not shift when new ones arrive meanwhile; `unread` keeps the unread only.
    """
    rows = Notification.objects.filter(user_id=user_id).order_by("-id")
    if unread:
        rows = rows.filter(read_at__isnull=True)
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows[: limit + 1])
    has_next = len(page) > limit
    page = page[:limit]
    return NotificationPage(page, page[-1].pk if has_next and page else None)


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

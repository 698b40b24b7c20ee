"""Reading a user's notifications: the unread count (the header's badge) and pages of them, newest first."""

from dataclasses import dataclass

from apps.notifications.models import Notification


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

"""Marking a user's notifications read: by the list page that shows them, or by `POST /api/me/notifications/read`."""

from collections.abc import Collection

from django.utils import timezone

from apps.notifications.models import Notification


def notifications_mark_read(*, user, ids: Collection[int] | None = None, everything: bool = False) -> int:
    """Mark the user's unread notifications of `ids` read, or all of them with `everything`; return how many changed.

    Ids of other users' notifications, unknown ids and ones already read are left alone (the
    read time of a notification is when it was first seen). Raises ValueError if given neither.
    """
    if ids is None and not everything:
        raise ValueError("name the notifications to mark read (ids), or mark everything")
    rows = Notification.objects.filter(user_id=user.pk, read_at__isnull=True)
    if not everything:
        wanted = [int(pk) for pk in ids]
        if not wanted:
            return 0
        rows = rows.filter(pk__in=wanted)
    return rows.update(read_at=timezone.now())

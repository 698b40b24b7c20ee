"""Telling users ahead of time that points will expire (SPEC §12): `points.expiring`, once per account and day.

Beat runs `expiry_notices_send` daily with the expiry job. For every account with live lots that
end within `JIFEN_EXPIRY_NOTICE_DAYS` from now, it announces the points that end on each local
day, once: the notification keeps a key per (account, day), and the database refuses a second
(the `notification_key_once` index), so a run repeated, or two at once, tell each user once.
The amount is what is left of those lots when the notice goes out; spending first takes the
soonest-expiring lots (§11), so spending after the notice lowers what actually expires.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.clock import local_date
from apps.core.multirow import db_time, fetch, read_time
from apps.ledger.models import Account, PointLot, PointType
from apps.notifications import events
from apps.notifications.models import Notification
from apps.notifications.services.announce import Announcement, announce

logger = logging.getLogger(__name__)

_CHUNK = 1000


def notice_key(account_id: int, day) -> str:
    return f"{events.POINTS_EXPIRING}:{account_id}:{day.isoformat()}"


def expiry_notices_send(*, now: datetime | None = None, days: int | None = None) -> int:
    """Announce the points ending within `days` (default JIFEN_EXPIRY_NOTICE_DAYS) of `now`; return how many notices went out."""
    now = now or timezone.now()
    days = settings.JIFEN_EXPIRY_NOTICE_DAYS if days is None else days
    if days <= 0:
        return 0
    q = connection.ops.quote_name
    rows = fetch(
        f"SELECT a.id, a.user_id, a.point_type_id, l.expires_at, l.remaining FROM {q(PointLot._meta.db_table)} l "  # noqa: S608
        f"JOIN {q(Account._meta.db_table)} a ON a.id = l.account_id "
        "WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at > %s AND l.expires_at <= %s",
        [db_time(now), db_time(now + timedelta(days=days))],
    )
    # (account, local day) → [user, type, points, earliest end that day]
    due: dict[tuple[int, object], list] = {}
    for account_id, user_id, point_type_id, expires_at, remaining in rows:
        expires_at = read_time(expires_at)
        key = (account_id, local_date(expires_at))
        found = due.setdefault(key, [user_id, point_type_id, 0, expires_at])
        found[2] += remaining
        found[3] = min(found[3], expires_at)
    if not due:
        return 0
    codes = dict(PointType.objects.values_list("pk", "code"))
    by_key: dict[str, Announcement] = {}
    for (account_id, day), (user_id, point_type_id, points, expires_at) in sorted(due.items(), key=lambda kv: kv[0][0]):
        data = {
            "user_id": user_id,
            "point_type": codes.get(point_type_id, ""),
            "amount": points,
            "expires_at": expires_at.astimezone(UTC).isoformat(),
        }
        key = notice_key(account_id, day)
        by_key[key] = Announcement(events.POINTS_EXPIRING, user_id, key, data, once=True)
    keys = list(by_key)
    sent = 0
    for start in range(0, len(keys), _CHUNK):
        sent += _send_chunk([by_key[k] for k in keys[start : start + _CHUNK]], now)
    if sent:
        logger.info("expiry notices: %d sent for points ending within %d days", sent, days)
    return sent


def _send_chunk(announcements: list[Announcement], now: datetime) -> int:
    for _attempt in range(3):
        try:
            with transaction.atomic():
                done = set(Notification.objects.filter(key__in=[a.key for a in announcements]).values_list("key", flat=True))
                fresh = [a for a in announcements if a.key not in done]
                announce(fresh, now=now)
                return len(fresh)
        except IntegrityError:
            # Another run sent some of these meanwhile: read again what is done and send the rest.
            continue
    raise RuntimeError("expiry notices: three runs at once kept colliding")

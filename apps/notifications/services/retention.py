"""Forgetting old notifications: those written more than `JIFEN_NOTIFICATIONS_KEEP_DAYS` ago, read or not.

Every award writes one, so the table grows with the ledger, and nobody reads a year-old "+5 coins".
The table has no index on `created_at` (one more index written with every batch of awards, for a
daily job): ids grow with time, so the job finds the first id that is young enough by a binary
search on the primary key (a few dozen single-row reads) and deletes everything below it, a chunk
at a time. Rows of one batch share a moment, and concurrent batches interleave by seconds at most,
which does not matter at a retention counted in days.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from apps.notifications.models import Notification


def _first_young_id(before) -> int | None:
    """The smallest id written at or after `before` (ids grow with time), or None if every row is older."""
    bounds = Notification.objects.aggregate(low=Min("id"), high=Max("id"))
    low, high = bounds["low"], bounds["high"]
    if low is None:
        return None
    if Notification.objects.filter(pk=high, created_at__lt=before).exists():
        return None
    while low < high:  # invariant: the answer is in [low, high]
        middle = (low + high) // 2
        row = Notification.objects.filter(pk__gte=middle).order_by("pk").values_list("pk", "created_at").first()
        if row[1] < before:
            low = row[0] + 1
        else:
            high = row[0]
    return low


def notifications_prune(*, keep_days: int | None = None, chunk: int = 5000) -> int:
    """Delete notifications written more than `keep_days` ago (0: keep all); return how many went."""
    keep_days = settings.JIFEN_NOTIFICATIONS_KEEP_DAYS if keep_days is None else keep_days
    if keep_days <= 0:
        return 0
    before = timezone.now() - timedelta(days=keep_days)
    young = _first_young_id(before)
    older = Notification.objects.all() if young is None else Notification.objects.filter(pk__lt=young)
    done = 0
    while True:
        ids = list(older.order_by("pk").values_list("pk", flat=True)[:chunk])
        if not ids:
            return done
        with transaction.atomic():
            done += Notification.objects.filter(pk__in=ids).delete()[0]

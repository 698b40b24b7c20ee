"""What expires when (SPEC §11): a user's points by expiry date, and every account's per month ahead.

Read from the live lots (`remaining > 0`) that have an end: what the expiry job will take when
their time comes, unless they are spent first (debits take the soonest-expiring lots first). A lot
past its end that the job has not reached yet (it runs daily, shortly after local midnight) is
listed as due now. Dates are the site's local dates (apps.core.clock).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from apps.core.clock import local_date
from apps.core.periods import site_timezone
from apps.ledger.models import Account, PointLot, PointType


@dataclass(frozen=True)
class ExpiringOn:
    """Points of one type that expire together: on the same local day."""

    point_type: PointType
    day: date  # the site's local date of their end
    expires_at: datetime  # the earliest end that day (the annual 清零: the midnight that starts the day)
    points: int

    @property
    def due(self) -> bool:
        """Past its end already: the next expiry run takes it."""
        return self.expires_at <= timezone.now()


def expiring_of(*, user_id: int, point_type_id: int | None = None, limit: int | None = None) -> list[ExpiringOn]:
    """The user's points that will expire, by type and day, soonest first (one read on the live-lot index).

    `limit` keeps the first days only (of all types together).
    """
    accounts = Account.objects.filter(user_id=user_id)
    if point_type_id is not None:
        accounts = accounts.filter(point_type_id=point_type_id)
    types = {a.pk: a.point_type for a in accounts.select_related("point_type")}
    if not types:
        return []
    lots = (
        PointLot.objects.filter(account_id__in=types, remaining__gt=0, expires_at__isnull=False)
        .order_by("expires_at", "id")
        .values_list("account_id", "expires_at", "remaining")
    )
    grouped: dict[tuple[int, date], list] = {}
    for account_id, expires_at, remaining in lots:
        key = (account_id, local_date(expires_at))
        if key in grouped:
            grouped[key][1] += remaining
        else:
            grouped[key] = [expires_at, remaining]
    rows = [ExpiringOn(types[account_id], day, expires_at, points) for (account_id, day), (expires_at, points) in grouped.items()]
    rows.sort(key=lambda row: (row.expires_at, row.point_type.position, row.point_type.pk))
    return rows[:limit] if limit is not None else rows


@dataclass(frozen=True)
class MonthAhead:
    """One local month's expiry of one point type over all accounts."""

    point_type: PointType
    month: date  # the first day of the month (local); for `overdue`, the current month
    points: int
    accounts: int
    overdue: bool = False  # past its end already, waiting for the next run


def expiring_by_month(*, months: int = 12) -> tuple[list[date], list[MonthAhead]]:
    """(the months, rows) of what expires in the current local month and the `months` - 1 after it, per type.

    Lots already past their end (the daily run has not taken them yet) form one `overdue` row per
    type. One aggregate over the live lots with an end (the `pointlot_due` index), up to the end
    of the last month.
    """
    tz = site_timezone()
    now = timezone.now()
    first = local_date(now).replace(day=1)
    month_starts = [_add_months(first, n) for n in range(months)]
    end = datetime.combine(_add_months(first, months), datetime.min.time(), tzinfo=tz)
    types = {t.pk: t for t in PointType.objects.all()}
    live = PointLot.objects.filter(remaining__gt=0, expires_at__isnull=False)
    rows: list[MonthAhead] = []
    overdue = (
        live.filter(expires_at__lte=now)
        .values("account__point_type")
        .annotate(points=Sum("remaining"), accounts=Count("account", distinct=True))
        .order_by()
    )
    for row in overdue:
        point_type = types[row["account__point_type"]]
        rows.append(MonthAhead(point_type, first, row["points"], row["accounts"], overdue=True))
    ahead = (
        live.filter(expires_at__gt=now, expires_at__lt=end)
        .annotate(month=TruncMonth("expires_at", tzinfo=tz))
        .values("month", "account__point_type")
        .annotate(points=Sum("remaining"), accounts=Count("account", distinct=True))
        .order_by()
    )
    by_month: dict[tuple[int, date], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for row in ahead:
        month = row["month"]
        day = local_date(month) if isinstance(month, datetime) else month
        by_month[(row["account__point_type"], day)] = (row["points"], row["accounts"])
    for (point_type_id, month), (points, accounts) in by_month.items():
        rows.append(MonthAhead(types[point_type_id], month, points, accounts))
    rows.sort(key=lambda r: (not r.overdue, r.month, r.point_type.position, r.point_type.pk))
    return month_starts, rows


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)

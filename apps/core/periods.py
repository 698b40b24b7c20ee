"""Calendar periods in the site's time zone.

A period is [start, end) between two local midnights, so a day across a DST change is 23 or
25 hours long and is still one day. Weeks start on Monday. The `none` period is one period that
began at the epoch and never ends.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

DAY, WEEK, MONTH, YEAR, NONE = "day", "week", "month", "year", "none"
LIFETIME_START = datetime(1970, 1, 1, tzinfo=UTC)


def site_timezone() -> ZoneInfo:
    """The zone whose calendar the periods follow: `settings.TIME_ZONE`."""
    return ZoneInfo(settings.TIME_ZONE)


def _first_day(period: str, day: date) -> date:
    if period == DAY:
        return day
    if period == WEEK:
        return day - timedelta(days=day.weekday())
    if period == MONTH:
        return day.replace(day=1)
    if period == YEAR:
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown period {period!r}")


def _next_first_day(period: str, first: date) -> date:
    if period == DAY:
        return first + timedelta(days=1)
    if period == WEEK:
        return first + timedelta(days=7)
    if period == MONTH:
        return date(first.year + first.month // 12, first.month % 12 + 1, 1)
    if period == YEAR:
        return date(first.year + 1, 1, 1)
    raise ValueError(f"unknown period {period!r}")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of `day` in `tz`, in UTC.

    fold=0 takes a repeated midnight's first occurrence, and a skipped midnight (a DST gap, as in
    America/Santiago) at the offset before the change, which is the instant the day begins.
    Returning UTC makes the bound a plain instant: an aware time inside a gap or fold never
    compares equal to one in another zone (PEP 495), which would break period equality.
    """
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


# The latest bounds computed per (period kind, zone). Completions mostly fall in the current
# period (and a replay reads them in time order), so this spares most of the date arithmetic;
# a period is a plain interval of instants, so a hit is exactly what computing would give.
_latest: dict[tuple[str, ZoneInfo], tuple[datetime, datetime]] = {}


def period_bounds(period: str, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime | None]:
    """Return (start, end), in UTC, of the period that contains the aware datetime `at`; end is None for `none`."""
    if period == NONE:
        return LIFETIME_START, None
    latest = _latest.get((period, tz))
    if latest is not None and latest[0] <= at < latest[1]:
        return latest
    bounds = _latest[(period, tz)] = _computed_bounds(period, at, tz)
    return bounds


def _computed_bounds(period: str, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    first = _first_day(period, at.astimezone(tz).date())
    return _local_midnight(first, tz), _local_midnight(_next_first_day(period, first), tz)


# Next period starts already worked out, per (period kind, zone, start). A streak asks for the
# one after each user's last counted period, mostly a few recent ones; asking `period_bounds`
# would also evict the current period from `_latest` and cost the next completion a computation.
# A pure function of its key (instants), so a hit is exact; cleared when it grows large.
_next_starts: dict[tuple[str, ZoneInfo, datetime], datetime | None] = {}
_NEXT_STARTS_MAX = 4096


def next_period_start(period: str, start: datetime, tz: ZoneInfo) -> datetime | None:
    """Return the start of the period after the one that starts at `start` (None for `none`)."""
    if period == NONE:
        return None
    key = (period, tz, start)
    found = _next_starts.get(key)
    if found is None:
        if len(_next_starts) >= _NEXT_STARTS_MAX:
            _next_starts.clear()
        found = _next_starts[key] = _computed_bounds(period, start, tz)[1]
    return found


def previous_period_start(period: str, start: datetime, tz: ZoneInfo) -> datetime:
    """Return the start of the period before the one that starts at `start` (itself for `none`)."""
    if period == NONE:
        return start
    return period_bounds(period, start - timedelta(microseconds=1), tz)[0]

"""The one place that turns instants into the dates and times people see: always in settings.TIME_ZONE.

Times are stored and compared as aware instants (UTC). Whenever one becomes a calendar date, a
wall-clock text, a file name or a serial number, it goes through here, so a page, an export file
name and a ledger serial number made at 23:30 UTC in Asia/Shanghai all carry the Shanghai date.
tests/test_clock.py forbids the unsafe forms (`.date()`, `.strftime(`, `date.today()`,
`datetime.utcnow()`, f-string `%` formats of times) anywhere else.
"""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from apps.core.periods import LIFETIME_START, site_timezone


def local_now() -> datetime:
    """Now, as an aware time in the site's zone."""
    return timezone.now().astimezone(site_timezone())


def local(moment: datetime, tz: ZoneInfo | None = None) -> datetime:
    """The aware `moment` in the site's zone, or `tz` (a naive one is taken to be in that zone already)."""
    tz = tz or site_timezone()
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=tz)
    return moment.astimezone(tz)


def local_date(moment: datetime | None = None, tz: ZoneInfo | None = None) -> date:
    """The site's (or `tz`'s) calendar date of `moment` (default: now)."""
    return local(moment if moment is not None else timezone.now(), tz).date()


def local_today() -> date:
    """Today's date in the site's zone: not the server's, not UTC's."""
    return local_date()


def local_text(moment: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """`moment` written with strftime's `fmt`, in the site's zone."""
    return local(moment).strftime(fmt)


def serial_stamp(moment: datetime) -> str:
    """The leading part of a ledger serial number: the site's wall clock down to the microsecond."""
    at = local(moment)
    return at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond:06d}"


def file_stamp(moment: datetime | None = None) -> str:
    """The date in an export file's name, e.g. 2026-12-01 (the site's date)."""
    return local_date(moment).isoformat()


def period_start_text(start: datetime, fmt: str | None = None) -> str:
    """When a rule's period began, as people read it: "since the start" for a lifetime rule's period.

    A lifetime period starts at the epoch, an implementation detail that would otherwise show as
    "Jan. 1, 1970, 8 a.m." in Shanghai. `fmt` is strftime's; without it, the active language's format.
    """
    if start == LIFETIME_START:
        return _("since the start")
    if fmt is not None:
        return local_text(start, fmt)
    return date_format(local(start), "DATETIME_FORMAT")

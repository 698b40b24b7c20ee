"""A reward item's terms as people read them: price, stock, per-user limit, window, level.

Shared by the admin's list, its confirmation pages and the review queue. Times are the site's
(apps.core.clock), never UTC.
"""

from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from apps.core.clock import local
from apps.rewards.models import RewardItem

_PERIODS = {
    RewardItem.Period.DAY: lambda n: _("%(n)s per user per day") % {"n": n},
    RewardItem.Period.WEEK: lambda n: _("%(n)s per user per week") % {"n": n},
    RewardItem.Period.MONTH: lambda n: _("%(n)s per user per month") % {"n": n},
    RewardItem.Period.YEAR: lambda n: _("%(n)s per user per year") % {"n": n},
    RewardItem.Period.NONE: lambda n: _("%(n)s per user, ever") % {"n": n},
}


def when_text(moment, *, short: bool = False) -> str:
    return date_format(local(moment), "SHORT_DATE_FORMAT" if short else "DATETIME_FORMAT")


def _number(n: int) -> str:
    return number_format(n, force_grouping=True)


def price_text(item: RewardItem) -> str:
    """E.g. "50 Coins"."""
    return _("%(cost)s %(type)s") % {"cost": number_format(item.cost, force_grouping=True), "type": item.point_type}


def stock_text(item: RewardItem) -> str:
    """E.g. "3 left of 10", or "unlimited (7 redeemed)"."""
    if item.stock is None:
        return _("unlimited (%(n)s redeemed)") % {"n": _number(item.redeemed_count)}
    left = max(item.stock - item.redeemed_count, 0)
    return _("%(left)s left of %(stock)s") % {"left": _number(left), "stock": _number(item.stock)}


def limit_text(item: RewardItem) -> str:
    """E.g. "1 per user per day", or "no limit"."""
    if item.per_user_limit is None:
        return _("no limit per user")
    return _PERIODS[RewardItem.Period(item.limit_period)](item.per_user_limit)


def window_text(item: RewardItem, *, short: bool = False) -> str:
    """E.g. "from … until …", "until …", "from …", or "always"; `short`: dates only (the list)."""
    start = when_text(item.start_time, short=short) if item.start_time else None
    end = when_text(item.end_time, short=short) if item.end_time else None
    if start and end:
        return _("from %(start)s until %(end)s") % {"start": start, "end": end}
    if end:
        return _("until %(end)s") % {"end": end}
    if start:
        return _("from %(start)s") % {"start": start}
    return _("always")


def level_text(item: RewardItem) -> str:
    """E.g. "Gold (Experience) or above", or "anyone"."""
    if item.min_level is None:
        return _("anyone")
    return _("%(level)s (%(type)s) or above") % {"level": item.min_level, "type": item.min_level.point_type}


def terms(item: RewardItem) -> list[str]:
    """What a user gets and under which conditions, one sentence each (activation and the review queue)."""
    lines = [
        _("It costs %(price)s; the points are spent at once when a user redeems it.") % {"price": price_text(item)},
        _("Stock: %(stock)s.") % {"stock": stock_text(item)} if item.stock is not None else _("Stock: unlimited."),
        _("Limit: %(limit)s.") % {"limit": limit_text(item)},
        _("Who may redeem it: %(level)s.") % {"level": level_text(item)},
        _("When: %(window)s") % {"window": window_text(item)},
    ]
    if item.end_time and item.end_time <= timezone.now():
        lines.append(_("Its window has already ended: it will not show in the shop."))
    elif item.start_time and item.start_time > timezone.now():
        lines.append(
            _("Its window has not started yet: it shows in the shop from %(start)s.") % {"start": when_text(item.start_time)}
        )
    return lines

"""Whether a user may redeem an item, and if not why, in words for people (SPEC §11).

The same checks serve the shop page (read without locks, to say what the button would do) and
`redemption_create` (read again under the user's account lock, where they decide). Each refusal
carries a code for programs (`GET`/`POST /api/me/redemptions`) and a message for people. Stock is
only *shown* from the row as read; redeeming takes it by one conditional UPDATE.
"""

from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.core.clock import local_text
from apps.core.periods import period_bounds, site_timezone
from apps.rewards.models import RewardItem

NOT_AVAILABLE = "not_available"
LEVEL_REQUIRED = "level_required"
LIMIT_REACHED = "limit_reached"
INSUFFICIENT_POINTS = "insufficient_points"
OUT_OF_STOCK = "out_of_stock"
KEY_REUSED = "key_reused"
BAD_KEY = "bad_key"

# The user could redeem if something changed on their side or the shop's (a conflict: 409);
# the others are refused whatever happens meanwhile, or the request itself is wrong (422).
CONFLICTS = frozenset({INSUFFICIENT_POINTS, OUT_OF_STOCK, LIMIT_REACHED})


class RedemptionRefused(Exception):
    """A redemption was refused; nothing was spent or taken. `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    @property
    def http_status(self) -> int:
        return 409 if self.code in CONFLICTS else 422


def unknown_item(code: str) -> RedemptionRefused:
    return RedemptionRefused(NOT_AVAILABLE, _("No item in the shop has the code “%(code)s”.") % {"code": code[:64]})


def availability_refusal(item: RewardItem, *, now: datetime) -> RedemptionRefused | None:
    """not_available: soft-deleted, not active, outside its window, or paid in a type that cannot be spent."""
    name = {"item": item.name}
    if item.deleted_at is not None or item.status == RewardItem.Status.RETIRED:
        return RedemptionRefused(NOT_AVAILABLE, _("%(item)s is no longer in the shop.") % name)
    if item.status != RewardItem.Status.ACTIVE:
        return RedemptionRefused(NOT_AVAILABLE, _("%(item)s is not in the shop yet.") % name)
    if item.start_time is not None and now < item.start_time:
        return RedemptionRefused(
            NOT_AVAILABLE, _("%(item)s can be redeemed from %(start)s.") % {**name, "start": local_text(item.start_time)}
        )
    if item.end_time is not None and now >= item.end_time:
        return RedemptionRefused(
            NOT_AVAILABLE, _("%(item)s could be redeemed until %(end)s.") % {**name, "end": local_text(item.end_time)}
        )
    if not item.point_type.spendable:
        return RedemptionRefused(
            NOT_AVAILABLE, _("%(item)s cannot be redeemed: %(type)s cannot be spent.") % {**name, "type": item.point_type}
        )
    return None


def level_refusal(item: RewardItem, *, earned: int) -> RedemptionRefused | None:
    """level_required: `earned` (lifetime earned points of the level's type) is below the item's minimum level."""
    level = item.min_level
    if level is None or earned >= level.threshold:
        return None
    return RedemptionRefused(
        LEVEL_REQUIRED,
        _(
            "%(item)s needs the level %(level)s in %(type)s (%(threshold)s points earned); "
            "you have earned %(earned)s, %(missing)s to go."
        )
        % {
            "item": item.name,
            "level": level.name,
            "type": level.point_type,
            "threshold": level.threshold,
            "earned": earned,
            "missing": level.threshold - earned,
        },
    )


def limit_window(item: RewardItem, *, now: datetime) -> tuple[datetime, datetime | None] | None:
    """The period the per-user limit counts in (site's time zone), or None when the item has no limit."""
    if item.per_user_limit is None:
        return None
    return period_bounds(item.limit_period, now, site_timezone())


def limit_refusal(item: RewardItem, *, used: int) -> RedemptionRefused | None:
    """limit_reached: the user's redemptions of the item in the current period (not cancelled) reached its limit."""
    limit = item.per_user_limit
    if limit is None or used < limit:
        return None
    values = {"item": item.name, "limit": limit}
    period = item.limit_period
    if period == RewardItem.Period.DAY:
        text = ngettext(
            "You may redeem %(item)s %(limit)d time a day and have done so today; try again tomorrow.",
            "You may redeem %(item)s %(limit)d times a day and have done so today; try again tomorrow.",
            limit,
        )
    elif period == RewardItem.Period.WEEK:
        text = ngettext(
            "You may redeem %(item)s %(limit)d time a week and have done so this week; try again next week.",
            "You may redeem %(item)s %(limit)d times a week and have done so this week; try again next week.",
            limit,
        )
    elif period == RewardItem.Period.MONTH:
        text = ngettext(
            "You may redeem %(item)s %(limit)d time a month and have done so this month; try again next month.",
            "You may redeem %(item)s %(limit)d times a month and have done so this month; try again next month.",
            limit,
        )
    elif period == RewardItem.Period.YEAR:
        text = ngettext(
            "You may redeem %(item)s %(limit)d time a year and have done so this year; try again next year.",
            "You may redeem %(item)s %(limit)d times a year and have done so this year; try again next year.",
            limit,
        )
    else:
        text = ngettext(
            "You may redeem %(item)s %(limit)d time in all, and have done so.",
            "You may redeem %(item)s %(limit)d times in all, and have done so.",
            limit,
        )
    return RedemptionRefused(LIMIT_REACHED, text % values)


def balance_refusal(item: RewardItem, *, balance: int) -> RedemptionRefused | None:
    """insufficient_points: the balance of the item's point type is below its cost."""
    if balance >= item.cost:
        return None
    return RedemptionRefused(
        INSUFFICIENT_POINTS,
        _("%(item)s costs %(cost)s %(type)s; you have %(balance)s.")
        % {"item": item.name, "cost": item.cost, "type": item.point_type, "balance": balance},
    )


def out_of_stock(item: RewardItem) -> RedemptionRefused:
    return RedemptionRefused(OUT_OF_STOCK, _("%(item)s is out of stock.") % {"item": item.name})


def stock_left(item: RewardItem) -> int | None:
    """What is left as the row was read (None: unlimited); only a hint: redeeming decides."""
    return None if item.stock is None else max(item.stock - item.redeemed_count, 0)


def refusal_of(
    item: RewardItem, *, now: datetime, earned: int, used: int, balance: int, stock_as_read: bool = True
) -> RedemptionRefused | None:
    """The first reason, in the order redeeming checks them, why the user may not redeem `item`; None if they may.

    `earned`: the user's lifetime earned points in the type of the item's minimum level; `used`:
    their redemptions of it in the limit's current period, not cancelled; `balance`: of its point type.
    """
    refusal = (
        availability_refusal(item, now=now)
        or level_refusal(item, earned=earned)
        or limit_refusal(item, used=used)
        or balance_refusal(item, balance=balance)
    )
    if refusal is None and stock_as_read and stock_left(item) == 0:
        refusal = out_of_stock(item)
    return refusal


def limit_text(item: RewardItem) -> str | None:
    """The per-user limit in words for the shop ("at most 1 per person a day"), or None without one."""
    if item.per_user_limit is None:
        return None
    values = {"limit": item.per_user_limit}
    texts = {
        RewardItem.Period.DAY: _("at most %(limit)d per person a day"),
        RewardItem.Period.WEEK: _("at most %(limit)d per person a week"),
        RewardItem.Period.MONTH: _("at most %(limit)d per person a month"),
        RewardItem.Period.YEAR: _("at most %(limit)d per person a year"),
    }
    return texts.get(item.limit_period, _("at most %(limit)d per person")) % values

"""A notification as a reader sees it: one short sentence in their language, and where it leads.

A notification stores what happened (`kind` and `data`, shapes in apps.notifications.events), not
a text, so the same row reads in English or Chinese as the page does, and renaming a point type,
a rule's description or a badge shows the new name. The names are looked up in bulk for a page of
notifications: one query each for the point types, the rules and the badges named, whatever the
page's length.

Data written by an older version may lack a key: a missing name shows as its code, a missing
amount as 0, so a page never fails on a row.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from apps.core.clock import local_date
from apps.ledger.models import PointType
from apps.notifications import events
from apps.notifications.models import Notification
from apps.rules.models import Badge, ScoreRule


@dataclass(frozen=True)
class NotificationText:
    notification: Notification
    text: str
    url: str | None  # the page to see it on, or None


@dataclass
class _Names:
    """Point type, rule and badge names of a page of notifications, read in one query per model."""

    point_types: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    badges: dict[str, str] = field(default_factory=dict)

    def point_type(self, code: str | None) -> str:
        return self.point_types.get(code or "", code or "")

    def rule(self, code: str) -> str:
        return self.rules.get(code, code)

    def badge(self, data: dict) -> str:
        code = data.get("badge") or ""
        # The name it has now (in the reader's language where the catalogue has it), else the one announced.
        return self.badges.get(code) or data.get("badge_name") or code


def _codes(notifications: Iterable[Notification]) -> tuple[set[str], set[str], set[str]]:
    types, rules, badges = set(), set(), set()
    for notification in notifications:
        data = notification.data or {}
        if data.get("point_type"):
            types.add(data["point_type"])
        for amount in data.get("amounts") or ():
            types.add(amount.get("point_type") or "")
        rules.update(code for code in data.get("rules") or () if code)
        if data.get("badge"):
            badges.add(data["badge"])
    return types - {""}, rules, badges


def _names(notifications: Sequence[Notification]) -> _Names:
    types, rules, badges = _codes(notifications)
    names = _Names()
    if types:
        names.point_types = {pt.code: str(pt) for pt in PointType.objects.filter(code__in=types)}
    if rules:
        # A deleted rule keeps its code among the soft-deleted ones; a live rule of the same code wins.
        found = ScoreRule.all_objects.filter(score_type__in=rules).order_by("-deleted_at", "id")
        for code, description in found.values_list("score_type", "score_desc"):
            names.rules[code] = _(description) if description else code
    if badges:
        names.badges = {code: _(name) for code, name in Badge.objects.filter(code__in=badges).values_list("code", "name")}
    return names


def _url(name: str, anchor: str = "") -> str | None:
    # The site's pages belong to the host site (apps.community): without them, no link.
    try:
        return reverse(name) + anchor
    except NoReverseMatch:
        return None


def _number(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _signed(amount: int, type_name: str) -> str:
    return f"{amount:+d} {type_name}"


def _amounts(data: dict, names: _Names) -> str:
    parts = [_signed(_number(a.get("amount")), names.point_type(a.get("point_type"))) for a in data.get("amounts") or ()]
    return pgettext("between amounts of points", ", ").join(parts)


def _reasons(data: dict, names: _Names) -> str:
    return pgettext("between rules", "; ").join(names.rule(code) for code in data.get("rules") or ())


def _points_text(kind: str, data: dict, names: _Names) -> str:
    values = {"amounts": _amounts(data, names), "rules": _reasons(data, names)}
    if kind == events.POINTS_AWARDED:
        if not values["amounts"]:
            return _("Awarded for %(rules)s") % values
        return _("%(amounts)s for %(rules)s") % values
    return _("%(amounts)s taken back: %(rules)s") % values


def _amount_values(data: dict, names: _Names) -> dict:
    return {"amount": abs(_number(data.get("amount"))), "type": names.point_type(data.get("point_type"))}


def _adjusted_text(data: dict, names: _Names) -> str:
    values = {**_amount_values(data, names), "reason": data.get("reason") or "-"}
    if _number(data.get("amount")) >= 0:
        return _("An operator added %(amount)s %(type)s: %(reason)s") % values
    return _("An operator took away %(amount)s %(type)s: %(reason)s") % values


def _expiring_text(data: dict, names: _Names) -> str:
    moment = parse_datetime(data.get("expires_at") or "")
    day = local_date(moment).isoformat() if moment else "?"
    return _("%(amount)s %(type)s expire on %(day)s unless spent") % {**_amount_values(data, names), "day": day}


def _redemption_text(kind: str, data: dict, names: _Names) -> str:
    values = {
        "item": _(data["item_name"]) if data.get("item_name") else data.get("item", ""),
        "cost": abs(_number(data.get("cost"))),
        "type": names.point_type(data.get("point_type")),
    }
    if kind == events.REDEMPTION_CREATED:
        return _("You redeemed %(item)s for %(cost)s %(type)s") % values
    if kind == events.REDEMPTION_FULFILLED:
        return _("Your %(item)s is on its way: the redemption was fulfilled") % values
    text = _("Your redemption of %(item)s was cancelled and %(cost)s %(type)s refunded") % values
    return f"{text}: {data['note']}" if data.get("note") else text


_HOLD_TEXTS = {
    events.HOLD_CREATED: gettext_lazy("%(amount)s %(type)s held for %(service)s: %(description)s"),
    events.HOLD_CAPTURED: gettext_lazy("%(amount)s %(type)s paid to %(service)s: %(description)s"),
    events.HOLD_RELEASED: gettext_lazy("%(amount)s %(type)s held for %(service)s came back: %(description)s"),
    events.HOLD_EXPIRED: gettext_lazy("%(amount)s %(type)s held for %(service)s came back (the hold ran out): %(description)s"),
}


def _hold_text(kind: str, data: dict, names: _Names) -> str:
    values = {**_amount_values(data, names), "service": data.get("service") or "-", "description": data.get("description") or "-"}
    return str(_HOLD_TEXTS[kind]) % values


def _text(notification: Notification, names: _Names) -> str:
    kind, data = notification.kind, notification.data or {}
    if kind in (events.POINTS_AWARDED, events.POINTS_REVERSED):
        return _points_text(kind, data, names)
    if kind == events.POINTS_ADJUSTED:
        return _adjusted_text(data, names)
    if kind == events.POINTS_EXPIRED:
        return _("%(amount)s %(type)s expired") % _amount_values(data, names)
    if kind == events.POINTS_EXPIRING:
        return _expiring_text(data, names)
    if kind == events.LEVEL_REACHED:
        level = _(data["level"]) if data.get("level") else "?"
        type_name = names.point_type(data.get("point_type"))
        return _("You reached the level %(level)s in %(type)s") % {"level": level, "type": type_name}
    if kind == events.BADGE_EARNED:
        return _("You earned the badge %(badge)s") % {"badge": names.badge(data)}
    if kind == events.BADGE_REVOKED:
        return _("The badge %(badge)s was taken back with the award that granted it") % {"badge": names.badge(data)}
    if kind.startswith("redemption."):
        return _redemption_text(kind, data, names)
    if kind in _HOLD_TEXTS:
        return _hold_text(kind, data, names)
    return str(events.EVENT_TYPES.get(kind, kind))


def _link(notification: Notification) -> str | None:
    kind, data = notification.kind, notification.data or {}
    if kind.startswith("redemption."):
        return _url("shop", "#my-redemptions")
    if kind in (events.BADGE_EARNED, events.BADGE_REVOKED):
        return _url("my-points", f"#badge-{data['badge']}" if kind == events.BADGE_EARNED and data.get("badge") else "#badges")
    return _url("my-points")


def notification_texts(notifications: Sequence[Notification]) -> list[NotificationText]:
    """Each notification's sentence (in the active language) and link; at most three queries for the whole list."""
    names = _names(notifications)
    return [NotificationText(n, _text(n, names), _link(n)) for n in notifications]

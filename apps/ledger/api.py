"""The ledger's endpoints: `GET /api/me`, `/api/me/ledger`, `/api/me/expiring` (the signed-in user), `/api/leaderboards`.

Everything is per point type (SPEC §11): `/api/me` lists every type with its balance, earned
points and level, and keeps `balance` (the default type's) for clients from before types; the
ledger and the leaderboards take an optional `point_type` (a type's code).
"""

from datetime import date, datetime
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.security import django_auth

from apps.ledger.models import Level, PointType, ScoreRecord
from apps.ledger.point_types import point_type_by_code
from apps.ledger.selectors.expiring import expiring_of
from apps.ledger.selectors.leaderboard import (
    MAX_LIMIT,
    LeaderboardEntry,
    leaderboard_page,
    leaderboard_rank_of,
    leaderboard_rules,
)
from apps.ledger.selectors.ledger import account_of, ledger_page
from apps.ledger.selectors.levels import Standing, standings_of
from config.api_errors import ErrorOut

me_router = Router(tags=["me"], auth=django_auth)
leaderboards_router = Router(tags=["leaderboards"])


class LevelOut(Schema):
    name: str  # in the request's language where the catalogue has it (the demo's levels)
    threshold: int  # lifetime earned points that reach it


class PointTypeStandingOut(Schema):
    code: str
    name: str
    spendable: bool
    expiry: Literal["never", "rolling", "year_end"]
    expiry_months: int | None  # for "rolling" only
    balance: int
    earned: int  # lifetime earned points (awards less their reversals, plus credit adjustments): what levels count
    level: LevelOut | None  # null below the first level, or when the type has no levels
    next_level: LevelOut | None  # null at the top
    to_next_level: int | None  # earned points still needed for next_level
    level_percent: int | None  # how far from the level (or 0) to the next one, 0-100; null at the top


class MeOut(Schema):
    username: str
    balance: int  # the default type's, as before point types
    last_activity_at: datetime | None  # the default type's account's
    point_types: list[PointTypeStandingOut]  # every point type, in the site's order


class LedgerEntryOut(Schema):
    point_type: str  # the type's code
    seq: int  # the entry's number in its type's account
    serial_number: str
    amount: int
    balance_before: int
    balance_after: int
    kind: str
    rule: str | None  # the rule's score_type, for awards and their reversals
    business_type: str
    created_at: datetime


class LedgerPageOut(Schema):
    entries: list[LedgerEntryOut]
    next_before: int | None  # pass as ?before= for the next, older page; null on the last page


def _unknown_point_type(code: str) -> Status:
    return Status(404, {"error": "unknown_point_type", "message": _("No point type has the code %(code)s.") % {"code": code}})


def _level(level: Level | None) -> dict | None:
    return None if level is None else {"name": str(level), "threshold": level.threshold}


def _standing(standing: Standing) -> dict:
    point_type: PointType = standing.point_type
    return {
        "code": point_type.code,
        "name": str(point_type),
        "spendable": point_type.spendable,
        "expiry": point_type.expiry,
        "expiry_months": point_type.expiry_months,
        "balance": standing.balance,
        "earned": standing.earned,
        "level": _level(standing.level),
        "next_level": _level(standing.next_level),
        "to_next_level": standing.to_next,
        "level_percent": standing.percent,
    }


def _ledger_entry(entry: ScoreRecord) -> dict:
    return {
        "point_type": entry.point_type.code,
        "seq": entry.seq,
        "serial_number": entry.serial_number,
        "amount": entry.trade_amount,
        "balance_before": entry.amount_before_trade,
        "balance_after": entry.amount_after_trade,
        "kind": entry.kind,
        "rule": entry.rule.score_type if entry.rule_id else None,
        "business_type": entry.business_type,
        "created_at": entry.created_at,
    }


@me_router.get("", response={200: MeOut, 401: ErrorOut}, summary="The signed-in user's balance and level in each point type")
def me(request: HttpRequest):
    account = account_of(user_id=request.user.pk)
    return {
        "username": request.user.get_username(),
        "balance": account.balance if account else 0,
        "last_activity_at": account.last_activity_at if account else None,
        "point_types": [_standing(standing) for standing in standings_of(user_id=request.user.pk)],
    }


@me_router.get(
    "/ledger", response={200: LedgerPageOut, 401: ErrorOut, 404: ErrorOut}, summary="The signed-in user's ledger, newest first"
)
def ledger(
    request: HttpRequest,
    before: int | None = Query(None, ge=1, le=2**63 - 1),
    limit: int = Query(20, ge=1),
    point_type: str | None = Query(None, description="A point type's code; leave out for every type's entries."),
):
    """A page of entries older than `before` (the newest, without it); `limit` is capped at JIFEN_API_LEDGER_PAGE_MAX.

    With `point_type`, that type's entries and `before` is a seq of that type; without, every
    type's entries and `before` is the `next_before` of the page before.
    """
    chosen = None
    if point_type is not None:
        chosen = point_type_by_code(point_type)
        if chosen is None:
            return _unknown_point_type(point_type)
    page = ledger_page(
        user_id=request.user.pk,
        before=before,
        limit=min(limit, settings.JIFEN_API_LEDGER_PAGE_MAX),
        point_type_id=chosen.pk if chosen else None,
    )
    return {"entries": [_ledger_entry(entry) for entry in page.entries], "next_before": page.next_before}


MAX_OFFSET = 10_000_000  # past any board: a larger offset is a mistake, answered 422


class LeaderboardEntryOut(Schema):
    rank: int  # equal points share a rank (1, 2, 2, 4)
    username: str
    points: int
    reached_at: datetime  # ties are listed by who reached the total first, then by user id


class LeaderboardOut(Schema):
    point_type: str  # the board's type's code: a rule's board is in its rule's type
    rule: str | None  # the rule's score_type; null for the overall board
    period: str
    period_start: datetime
    period_end: datetime | None  # exclusive; null for all time
    offset: int
    entries: list[LeaderboardEntryOut]
    next_offset: int | None  # pass as ?offset= for the next page; null on the last page
    me: LeaderboardEntryOut | None  # the signed-in user's own standing, wherever it is; null if unranked or anonymous


def _board_entry(entry: LeaderboardEntry) -> dict:
    return {"rank": entry.rank, "username": entry.username, "points": entry.points, "reached_at": entry.reached_at}


@leaderboards_router.get(
    "",
    response={200: LeaderboardOut, 404: ErrorOut, 422: ErrorOut},
    summary="A leaderboard: a point type's overall one or a rule's, in a period",
)
def leaderboard(
    request: HttpRequest,
    period: Literal["day", "week", "month", "year", "all"] = "week",
    rule: str | None = Query(None, description="A rule's score_type; leave out for the overall board."),
    point_type: str | None = Query(None, description="A point type's code; leave out for the default type (or the rule's)."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
):
    """Points earned in the current period: earning only (awards net of their reversals).

    Spending, expiry and adjustments do not count.
    """
    kind = None
    if point_type is not None:
        kind = point_type_by_code(point_type)
        if kind is None:
            return _unknown_point_type(point_type)
    chosen = None
    if rule is not None:
        chosen = leaderboard_rules().select_related("point_type").filter(score_type=rule).first()
        if chosen is None:
            return Status(404, {"error": "unknown_rule", "message": _("No rule has the code %(rule)s.") % {"rule": rule}})
        if kind is not None and kind.pk != chosen.point_type_id:
            message = _("The rule %(rule)s awards %(type)s (%(code)s): its board is in that type; leave point_type out.") % {
                "rule": rule,
                "type": chosen.point_type,
                "code": chosen.point_type.code,
            }
            return Status(422, {"error": "point_type_mismatch", "message": message})
        kind = chosen.point_type
    if kind is None:
        kind = point_type_by_code(None)
    page = leaderboard_page(rule=chosen, period=period, offset=offset, limit=limit, point_type_id=kind.pk)
    mine = None
    if request.user.is_authenticated:
        mine = leaderboard_rank_of(user_id=request.user.pk, rule=chosen, period=period, point_type_id=kind.pk)
    return {
        "point_type": kind.code,
        "rule": chosen.score_type if chosen else None,
        "period": period,
        "period_start": page.period_start,
        "period_end": page.period_end,
        "offset": offset,
        "entries": [_board_entry(entry) for entry in page.entries],
        "next_offset": offset + len(page.entries) if page.has_next else None,
        "me": _board_entry(mine) if mine else None,
    }


# --- What expires when (SPEC §11): GET /api/me/expiring ----------------------------------------


class ExpiringOut(Schema):
    point_type: str  # the type's code
    expires_on: date  # the site's local date
    expires_at: datetime  # the exact end (the annual 清零: local midnight)
    points: int
    due: bool  # past its end already: the next daily run takes it


class ExpiringListOut(Schema):
    expiring: list[ExpiringOut]  # soonest first; points that never expire are not listed


_EXPIRING_TYPE = Query(None, description="A point type's code; all types without it.")


@me_router.get(
    "/expiring",
    response={200: ExpiringListOut, 401: ErrorOut, 404: ErrorOut},
    summary="The signed-in user's points by expiry date",
)
def expiring(request: HttpRequest, point_type: str | None = _EXPIRING_TYPE):
    """What will expire and when, per type and local date, unless spent first (spends take the soonest-expiring first)."""
    chosen = None
    if point_type is not None:
        chosen = point_type_by_code(point_type)
        if chosen is None:
            message = _("No point type has the code %(code)s.") % {"code": point_type}
            return Status(404, {"error": "unknown_point_type", "message": message})
    rows = expiring_of(user_id=request.user.pk, point_type_id=chosen.pk if chosen else None)
    return {
        "expiring": [
            {
                "point_type": row.point_type.code,
                "expires_on": row.day,
                "expires_at": row.expires_at,
                "points": row.points,
                "due": row.due,
            }
            for row in rows
        ]
    }

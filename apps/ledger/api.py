"""The ledger's endpoints: `GET /api/me`, `GET /api/me/ledger`, `GET /api/me/expiring` (the signed-in user), the leaderboards."""

from datetime import date, datetime
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.security import django_auth

from apps.ledger.models import ScoreRecord
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
from config.api_errors import ErrorOut

me_router = Router(tags=["me"], auth=django_auth)
leaderboards_router = Router(tags=["leaderboards"])


class MeOut(Schema):
    username: str
    balance: int
    last_activity_at: datetime | None


class LedgerEntryOut(Schema):
    seq: int
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


def _ledger_entry(entry: ScoreRecord) -> dict:
    return {
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


@me_router.get("", response={200: MeOut, 401: ErrorOut}, summary="The signed-in user's balance")
def me(request: HttpRequest):
    account = account_of(user_id=request.user.pk)
    return {
        "username": request.user.get_username(),
        "balance": account.balance if account else 0,
        "last_activity_at": account.last_activity_at if account else None,
    }


@me_router.get("/ledger", response={200: LedgerPageOut, 401: ErrorOut}, summary="The signed-in user's ledger, newest first")
def ledger(request: HttpRequest, before: int | None = Query(None, ge=1, le=2**63 - 1), limit: int = Query(20, ge=1)):
    """A page of entries with seq below `before` (the newest, without it); `limit` is capped at JIFEN_API_LEDGER_PAGE_MAX."""
    page = ledger_page(user_id=request.user.pk, before_seq=before, limit=min(limit, settings.JIFEN_API_LEDGER_PAGE_MAX))
    return {"entries": [_ledger_entry(entry) for entry in page.entries], "next_before": page.next_before}


MAX_OFFSET = 10_000_000  # past any board: a larger offset is a mistake, answered 422


class LeaderboardEntryOut(Schema):
    rank: int  # equal points share a rank (1, 2, 2, 4)
    username: str
    points: int
    reached_at: datetime  # ties are listed by who reached the total first, then by user id


class LeaderboardOut(Schema):
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
    "", response={200: LeaderboardOut, 404: ErrorOut}, summary="A leaderboard: the overall one or a rule's, in a period"
)
def leaderboard(
    request: HttpRequest,
    period: Literal["day", "week", "month", "year", "all"] = "week",
    rule: str | None = Query(None, description="A rule's score_type; leave out for the overall board."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
):
    """Points earned in the current period (awards net of their reversals; adjustments do not count)."""
    chosen = None
    if rule is not None:
        chosen = leaderboard_rules().filter(score_type=rule).first()
        if chosen is None:
            return Status(404, {"error": "unknown_rule", "message": _("No rule has the code %(rule)s.") % {"rule": rule}})
    page = leaderboard_page(rule=chosen, period=period, offset=offset, limit=limit)
    mine = None
    if request.user.is_authenticated:
        mine = leaderboard_rank_of(user_id=request.user.pk, rule=chosen, period=period)
    return {
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

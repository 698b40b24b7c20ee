"""`GET /api/leaderboards`: a board in a period, for the site's own pages and apps (public, like `/leaderboard/`)."""

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status

from apps.ledger.selectors_leaderboard import (
    MAX_LIMIT,
    LeaderboardEntry,
    leaderboard_page,
    leaderboard_rank_of,
    leaderboard_rules,
)
from config.api_errors import ErrorOut

router = Router(tags=["leaderboards"])
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


def _entry(entry: LeaderboardEntry) -> dict:
    return {"rank": entry.rank, "username": entry.username, "points": entry.points, "reached_at": entry.reached_at}


@router.get("", response={200: LeaderboardOut, 404: ErrorOut}, summary="A leaderboard: the overall one or a rule's, in a period")
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
        "entries": [_entry(entry) for entry in page.entries],
        "next_offset": offset + len(page.entries) if page.has_next else None,
        "me": _entry(mine) if mine else None,
    }

"""Reading the leaderboards: a page of a board in a period, and one user's standing.

The interface the site, the admin and the JSON API share. Boards are a rule's or the overall one
(rule=None); periods are `LeaderboardTotal.Period` values (day, week, month, year, all) and mean
the period that contains `at` (default: now) in settings.TIME_ZONE. Only positive totals are
ranked. Equal totals share a rank (1, 2, 2, 4) and are listed in one order everywhere: who
reached the total first (`reached_at`), then the lower user id.

Every read is a range of the `leaderboardtotal_rank` index: a page is LIMIT/OFFSET along it, a
rank a count of the totals above the user's.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.core.clock import local_text
from apps.core.periods import next_period_start
from apps.ledger.models import LeaderboardTotal
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.leaderboard import OVERALL, PERIODS, expected_totals, period_start, site_timezone
from apps.rules.models import ScoreRule

MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    rank: int  # 1 + the number of users with more points
    position: int  # 0-based place in the listing order (rank ties broken by reached_at, then user id)
    user_id: int
    username: str
    points: int
    reached_at: datetime


@dataclass(frozen=True, slots=True)
class LeaderboardPage:
    rule: ScoreRule | None  # None: the overall board
    period: str
    period_start: datetime  # UTC
    period_end: datetime | None  # UTC, exclusive; None for all time
    offset: int
    limit: int
    entries: list[LeaderboardEntry]
    has_next: bool  # more entries after these
    # Users with a positive total on this board in this period; None unless asked for
    # (`count_ranked`): counting is a scan of the board's whole index range, ~25 ms at 100,000.
    ranked: int | None = None


def _scope(
    *, rule: ScoreRule | None, period: str, at: datetime | None, point_type_id: int | None = None
) -> tuple[QuerySet, datetime]:
    """The board's totals in the period of `at`, and that period's start. Raises ValueError for an unknown period.

    The overall board is one per point type (`point_type_id`, default: the default type); a
    rule's board is in its rule's type.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown leaderboard period {period!r}")
    start = period_start(period, at or timezone.now())
    if rule is not None:
        board, point_type_id = rule.pk, rule.point_type_id
    else:
        board, point_type_id = OVERALL, point_type_id or default_point_type_id()
    totals = LeaderboardTotal.objects.filter(point_type_id=point_type_id, board=board, period=period, period_start=start)
    return totals, start


def _listed(totals: QuerySet) -> QuerySet:
    return totals.filter(points__gt=0).order_by("-points", "reached_at", "user_id")


def leaderboard_page(
    *,
    rule: ScoreRule | None,
    period: str,
    at: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
    count_ranked: bool = False,
    point_type_id: int | None = None,
) -> LeaderboardPage:
    """Entries `offset` to `offset + limit` (at most MAX_LIMIT) of a board in the period that contains `at`.

    One index range read (one row more than asked, for `has_next`), plus a count of the totals
    above the first entry when `offset` > 0 (its rank may be shared with the page before), plus
    the count of ranked users with `count_ranked`. Raises ValueError for an unknown period or a
    negative offset or limit.
    """
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must not be negative")
    limit = min(limit, MAX_LIMIT)
    totals, start = _scope(rule=rule, period=period, at=at, point_type_id=point_type_id)
    username = f"user__{get_user_model().USERNAME_FIELD}"
    rows = list(_listed(totals).values_list("user_id", username, "points", "reached_at")[offset : offset + limit + 1])
    has_next = len(rows) > limit
    rows = rows[:limit]
    entries: list[LeaderboardEntry] = []
    for i, (user_id, name, points, reached_at) in enumerate(rows):
        if entries and entries[-1].points == points:
            rank = entries[-1].rank
        elif i == 0 and offset > 0:  # a tie may go on from the page before
            rank = 1 + totals.filter(points__gt=points).count()
        else:
            rank = offset + i + 1
        entries.append(LeaderboardEntry(rank, offset + i, user_id, name, points, reached_at))
    end = next_period_start(PERIODS[period], start, site_timezone())
    return LeaderboardPage(
        rule=rule,
        period=period,
        period_start=start,
        period_end=end,
        offset=offset,
        limit=limit,
        entries=entries,
        has_next=has_next,
        ranked=_listed(totals).count() if count_ranked else None,
    )


def leaderboard_rank_of(
    *, user_id: int, rule: ScoreRule | None, period: str, at: datetime | None = None, point_type_id: int | None = None
) -> LeaderboardEntry | None:
    """The user's entry on a board in the period that contains `at`, or None when they have no positive total there.

    Two index range counts: the totals above the user's (rank) and the equal ones listed before it
    (position). Raises ValueError for an unknown period.
    """
    totals, _ = _scope(rule=rule, period=period, at=at, point_type_id=point_type_id)
    mine = totals.filter(user_id=user_id, points__gt=0).values_list(
        "points", "reached_at", f"user__{get_user_model().USERNAME_FIELD}"
    )
    row = mine.first()
    if row is None:
        return None
    points, reached_at, name = row
    above = totals.filter(points__gt=points).count()
    before = totals.filter(Q(reached_at__lt=reached_at) | Q(reached_at=reached_at, user_id__lt=user_id), points=points).count()
    return LeaderboardEntry(above + 1, above + before, user_id, name, points, reached_at)


def leaderboard_rules() -> QuerySet[ScoreRule]:
    """Rules whose boards can be chosen: every rule that has been active (not drafts), by code."""
    return ScoreRule.objects.exclude(status=ScoreRule.Status.EDITING).order_by("score_type")


# --- Checking the totals against the ledger -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaderboardProblem:
    user_id: int
    key: tuple  # (point_type_id, board, period, period_start, user_id)
    stored: tuple[int, datetime] | None  # (points, reached_at) in the table; None: missing
    expected: tuple[int, datetime] | None  # what the ledger implies; None: the ledger has nothing there

    def __str__(self) -> str:
        point_type_id, board, period, start, user_id = self.key
        where = f"type {point_type_id}, board {board or 'overall'}, {period} from {local_text(start)}, user {user_id}"
        return f"leaderboard total {where}: stored {self._show(self.stored)}, ledger says {self._show(self.expected)}"

    @staticmethod
    def _show(value: tuple[int, datetime] | None) -> str:
        return "nothing" if value is None else f"{value[0]} points (reached {local_text(value[1], '%Y-%m-%d %H:%M:%S.%f')})"


def _stored_totals():
    """Every stored total as (key, points, reached_at), ascending by user id, from a server-side cursor."""
    columns = ("point_type_id", "board", "period", "period_start", "user_id", "points", "reached_at")
    for *key, points, reached in LeaderboardTotal.objects.order_by("user_id").values_list(*columns).iterator(20_000):
        yield tuple(key), points, reached


def _by_user(rows):
    """(user_id, {key: (points, reached_at)}) per user, from rows ascending by user id."""
    current, totals = None, {}
    for key, points, reached in rows:
        if key[4] != current:
            if current is not None:
                yield current, totals
            current, totals = key[4], {}
        totals[key] = (points, reached)
    if current is not None:
        yield current, totals


def leaderboard_problems(*, limit: int = 100) -> list[LeaderboardProblem]:
    """Totals that disagree with the ledger (points or reached_at), at most `limit` of them; empty when all agree.

    Both sides are read in user order and compared one user at a time, so memory stays small at
    any size. A stored total of 0 with nothing in the ledger is a disagreement too: totals only
    come from entries.
    """
    problems: list[LeaderboardProblem] = []
    stored, expected = _by_user(_stored_totals()), _by_user(expected_totals())
    have, want = next(stored, None), next(expected, None)
    while (have or want) and len(problems) < limit:
        user = min(u for u, _ in filter(None, (have, want)))
        mine = have[1] if have and have[0] == user else {}
        ledger = want[1] if want and want[0] == user else {}
        for key in sorted(mine.keys() | ledger.keys()):
            if mine.get(key) != ledger.get(key):
                problems.append(LeaderboardProblem(user, key, mine.get(key), ledger.get(key)))
        if mine:
            have = next(stored, None)
        if ledger:
            want = next(expected, None)
    return problems[:limit]

"""Leaderboard totals: each user's points per board and period, kept with the ledger entries that change them.

What counts: award entries, net of their reversals, on the overall board (0) and on the board of
the entry's rule. An award counts in the periods (day, week from Monday, month, year, all time,
in settings.TIME_ZONE) of `earned_at`, the occurred_at of the completion that earned it, so a
backfill of old completions lands in their own periods; a reversal takes its points back from the
same periods. Adjustments do not count: an operator's correction is not a performance.

`leaderboard_totals_add` runs inside the ledger's posting, in the transaction and under the
account lock of the entries, with one multi-row upsert per batch; `leaderboards_rebuild`
recomputes every total from the ledger with the same period arithmetic (`expected_totals`).
"""

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from apps.core.clock import local_date
from apps.core.multirow import read_time, rows_accumulate
from apps.core.periods import DAY, MONTH, NONE, WEEK, YEAR, period_bounds, site_timezone
from apps.ledger.models import LeaderboardTotal, ScoreRecord
from apps.tasks.models import UserTaskRecord

OVERALL = 0
COUNTED_KINDS = frozenset({ScoreRecord.Kind.AWARD, ScoreRecord.Kind.REVERSAL})
# Leaderboard period -> calendar period of apps.core.periods.
PERIODS = {
    LeaderboardTotal.Period.DAY: DAY,
    LeaderboardTotal.Period.WEEK: WEEK,
    LeaderboardTotal.Period.MONTH: MONTH,
    LeaderboardTotal.Period.YEAR: YEAR,
    LeaderboardTotal.Period.ALL: NONE,
}
KEY_COLUMNS = ("point_type_id", "board", "period", "period_start", "user_id")
# Rows read and written per round trip by the rebuild and the check.
_CHUNK_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one ledger entry adds to its user's totals: `amount` points, earned at `earned_at`, by `rule_id`.

    `created_at` is the entry's: the latest one of a total becomes its `reached_at`.
    """

    user_id: int
    point_type_id: int
    rule_id: int | None
    earned_at: datetime
    amount: int
    created_at: datetime


@functools.lru_cache(maxsize=4096)
def _starts_of_day(day: date, tz: ZoneInfo) -> tuple[tuple[str, datetime], ...]:
    # Noon exists on every day in every zone (DST changes happen at night), and every period
    # boundary is a local midnight, so the local day decides every period of its instants.
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return tuple((board_period, period_bounds(calendar, noon, tz)[0]) for board_period, calendar in PERIODS.items())


def period_starts(at: datetime, tz: ZoneInfo | None = None) -> tuple[tuple[str, datetime], ...]:
    """((period, start in UTC), …) of every leaderboard period that contains the aware time `at`."""
    tz = tz or site_timezone()
    return _starts_of_day(local_date(at, tz), tz)


def period_start(period: str, at: datetime, tz: ZoneInfo | None = None) -> datetime:
    """The start, in UTC, of the leaderboard `period` (day, week, month, year, all) that contains `at`."""
    if period not in PERIODS:
        raise ValueError(f"unknown leaderboard period {period!r}")
    return dict(period_starts(at, tz))[period]


def _summed(contributions: Iterable[Contribution], tz: ZoneInfo) -> dict[tuple, list]:
    """{(point_type_id, board, period, period_start, user_id): [points, reached_at]} of the contributions."""
    totals: dict[tuple, list] = {}
    for c in contributions:
        boards = (OVERALL, c.rule_id) if c.rule_id else (OVERALL,)
        for period, start in period_starts(c.earned_at, tz):
            for board in boards:
                total = totals.get(key := (c.point_type_id, board, period, start, c.user_id))
                if total is None:
                    totals[key] = [c.amount, c.created_at]
                else:
                    total[0] += c.amount
                    total[1] = max(total[1], c.created_at)
    return totals


def leaderboard_totals_add(*, contributions: Sequence[Contribution]) -> int:
    """Add the contributions to their users' totals, in one upsert; return the number of totals touched.

    Must run in the transaction that posts the entries, under their users' account locks (the
    ledger's posting functions call it). A touched total's `reached_at` becomes the latest
    contributing entry's created_at unless its own is later. The rows are summed per key and
    sorted, so a statement changes each row once and any two statements lock shared rows in the
    same order (the account locks already keep two batches off one user's rows).
    """
    if not contributions:
        return 0
    totals = _summed(contributions, site_timezone())
    rows = [(*key, points, reached) for key, (points, reached) in sorted(totals.items())]
    rows_accumulate(LeaderboardTotal, KEY_COLUMNS, ("points",), ("reached_at",), rows)
    return len(rows)


# --- Recomputing from the ledger ----------------------------------------------------------------


def _earned_sql(tz: ZoneInfo) -> tuple[str, list]:
    """Each counting entry's user, rule, earning day (local, in `tz`), amount and created_at, by user.

    The earning time is the occurred_at of the completion of the award (the entry itself, or the
    award a reversal undoes), or that award's created_at when it has no completion: the same time
    the posting code gives as `earned_at`. On PostgreSQL the entries are summed per user, rule and
    local day in the database; SQLite has no time zones, so it hands back each time for Python.
    """
    entries, completions = ScoreRecord._meta.db_table, UserTaskRecord._meta.db_table
    earned = "COALESCE(c.occurred_at, s.created_at)"
    source = (
        f"FROM {entries} e JOIN {entries} s ON s.id = COALESCE(e.reverses_id, e.id) "
        f"LEFT JOIN {completions} c ON c.id = s.completion_id WHERE e.kind IN (%s, %s)"
    )
    kinds = [ScoreRecord.Kind.AWARD.value, ScoreRecord.Kind.REVERSAL.value]
    if connection.vendor == "postgresql":
        # MATERIALIZED: planned for all its rows (hash joins over the whole ledger, then one sort),
        # not for a cursor's first rows, which would walk the ledger by user through an index.
        day = f"({earned} AT TIME ZONE %s)::date"
        sql = (
            f"WITH g AS MATERIALIZED (SELECT e.user_id, e.point_type_id, e.rule_id, {day} AS day, "  # noqa: S608 - table names only
            f"SUM(e.trade_amount) AS points, MAX(e.created_at) AS reached {source} "
            "GROUP BY e.user_id, e.point_type_id, e.rule_id, day) "
            "SELECT user_id, point_type_id, rule_id, day, points, reached FROM g ORDER BY user_id"
        )
        return sql, [tz.key, *kinds]
    sql = f"SELECT e.user_id, e.point_type_id, e.rule_id, {earned}, e.trade_amount, e.created_at {source} ORDER BY e.user_id"  # noqa: S608
    return sql, kinds


def expected_totals() -> Iterator[tuple[tuple, int, datetime]]:
    """Every total the ledger implies, as ((point_type_id, board, period, period_start, user_id), points, reached_at).

    Grouped by user in ascending user id order (within a user, in key order), streamed from a
    server-side cursor: memory stays one user's totals whatever the size of the ledger.
    """
    tz = site_timezone()
    sql, params = _earned_sql(tz)
    current, points, reached = None, defaultdict(int), {}

    def flushed():
        for key in sorted(points):
            yield key, points[key], reached[key]

    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_CHUNK_ROWS):
            for user_id, point_type_id, rule_id, earned, amount, created in rows:
                if user_id != current:
                    yield from flushed()
                    current, points, reached = user_id, defaultdict(int), {}
                created = read_time(created)
                if isinstance(earned, date) and not isinstance(earned, datetime):
                    starts = _starts_of_day(earned, tz)
                else:
                    starts = period_starts(read_time(earned), tz)
                boards = (OVERALL, rule_id) if rule_id else (OVERALL,)
                for period, start in starts:
                    for board in boards:
                        key = (point_type_id, board, period, start, user_id)
                        points[key] += amount
                        if key not in reached or reached[key] < created:
                            reached[key] = created
    yield from flushed()


def leaderboards_rebuild() -> int:
    """Replace every leaderboard total by the one the ledger implies; return the number of totals written.

    Idempotent. Takes the totals table's EXCLUSIVE lock first (readers go on): a batch that has
    posted entries but not yet its totals waits, adds them after the rebuild commits, and the
    rebuild's reads, which begin after the lock, do not see its uncommitted entries; a batch
    that added its totals before the lock committed them, entries included, before the rebuild
    could take it. So no award is counted twice or missed.
    """
    columns = [*KEY_COLUMNS, "points", "reached_at"]
    written = 0
    with transaction.atomic():
        table = connection.ops.quote_name(LeaderboardTotal._meta.db_table)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - the model's own table
        batch: list[tuple] = []
        for key, points, reached in expected_totals():
            batch.append((*key, points, reached))
            if len(batch) >= _CHUNK_ROWS:
                written += _insert(batch, columns)
                batch = []
        written += _insert(batch, columns)
    return written


def _insert(rows: list[tuple], columns: list[str]) -> int:
    # Imported here: the community app's bulk writer is the seed's (COPY on PostgreSQL).
    from apps.community.bulk_write import BulkTable

    if rows:
        BulkTable(LeaderboardTotal, columns).write(rows, now=rows[0][-1])
    return len(rows)

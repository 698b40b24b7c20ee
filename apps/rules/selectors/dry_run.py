"""Reads for the dry run: a rule's past completions, streamed in time order, replayed without writing.

A completion that was reversed, or deleted, since it was recorded is not read: it would not count
today. Completions are read with a raw server-side cursor on PostgreSQL (`rule_completions`), a
chunk at a time, so a million rows never sit in memory together.
"""

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.multirow import read_time
from apps.rules.engine import RuleSpec
from apps.rules.models import RuleRecipient, ScoreRule, ScoreRuleObjectPoints
from apps.rules.replay import Replay, Tally
from apps.rules.selectors.rules import rule_spec
from apps.tasks.models import TaskConfig, UserTaskRecord

STREAM_CHUNK = 20000  # rows per fetch from the server-side cursor
TOP_USERS = 10
_cursor_names = itertools.count()


@dataclass(frozen=True)
class Window:
    """[start, end) of the completions replayed: the asked range cut to the rule's own window."""

    start: datetime | None
    end: datetime

    @classmethod
    def of(cls, rule: ScoreRule, *, since: datetime | None, until: datetime | None = None) -> "Window":
        until = until or timezone.now()
        starts = [at for at in (since, rule.start_time) if at is not None]
        ends = [at for at in (until, rule.end_time) if at is not None]
        return cls(max(starts) if starts else None, min(ends))

    @property
    def empty(self) -> bool:
        return self.start is not None and self.start >= self.end


def replay_spec(rule: ScoreRule) -> RuleSpec:
    """The rule as the engine sees it, active (a draft is replayed as if it were), with every per-object amount."""
    amounts = dict(ScoreRuleObjectPoints.objects.filter(rule=rule).values_list("business_id", "points"))
    return dataclasses.replace(rule_spec(rule, object_points=amounts), active=True)


def completions_query(*, task_type: str, window: Window) -> QuerySet:
    """(occurred_at, id, user id, business id) of the task's live, unreversed completions in `window`, in time order."""
    # Configs since deleted count too: their completions carry the task type they had then.
    task_ids = list(TaskConfig.all_objects.filter(task_type=task_type).values_list("id", flat=True))
    rows = UserTaskRecord.objects.filter(task_id__in=task_ids, reversed_at__isnull=True, occurred_at__lt=window.end)
    if window.start is not None:
        rows = rows.filter(occurred_at__gte=window.start)
    return rows.order_by("occurred_at", "id").values_list("occurred_at", "id", "user_id", "business_id")


def rule_completions(*, task_type: str, window: Window) -> Iterator[tuple[datetime, int, int, str]]:
    """`completions_query`'s rows, streamed a chunk at a time by a raw cursor, as the ORM would give them.

    The ORM's per-row work (on PostgreSQL, Django's Python loader setting the tzinfo of every
    `timestamptz`) would cost more than the replay itself over a million rows, so the query's own
    SQL is run on the connection: on PostgreSQL through a named (server-side) psycopg cursor in
    binary with psycopg's own C loaders (the session runs in UTC, so times come back aware in UTC,
    the same instants), on SQLite through a plain cursor, its naive UTC times made aware.
    Call it inside a transaction: a PostgreSQL cursor declared outside one would be WITH HOLD,
    every row materialized before the first is read.
    """
    query = completions_query(task_type=task_type, window=window).query
    try:
        sql, params = query.sql_with_params()
    except EmptyResultSet:  # no config of that task type, ever: nothing to read
        return iter(())
    if connection.vendor == "postgresql":
        return _stream_postgresql(sql, params)
    return _stream_plain(sql, params)


def _stream_postgresql(sql: str, params: tuple) -> Iterator[tuple[datetime, int, int, str]]:
    from psycopg.types.datetime import TimestamptzBinaryLoader

    connection.ensure_connection()
    if connection.get_autocommit():
        raise transaction.TransactionManagementError("rule_completions streams inside a transaction only.")
    with connection.connection.cursor(name=f"dry_run_{next(_cursor_names)}", binary=True) as cursor:
        # psycopg's C loader, not Django's Python one (same instants: the connection's TimeZone is UTC).
        cursor.adapters.register_loader("timestamptz", TimestamptzBinaryLoader)
        cursor.itersize = STREAM_CHUNK
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            yield from rows


def _stream_plain(sql: str, params: tuple) -> Iterator[tuple[datetime, int, int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_CHUNK):
            for occurred_at, pk, user_id, business_id in rows:
                yield read_time(occurred_at), pk, user_id, business_id


def undecided_completions(*, rule: ScoreRule, window: Window, recorded_since: datetime | None = None) -> list:
    """`completions_query`'s rows in `window` whose recorded decisions do not name `rule`: what its backfill takes.

    Each completion's decisions are read and looked at in Python (JSON lookups differ between
    the backends), so this is for the backfill and its dry run, not for a draft's dry run over a
    million rows. `recorded_since` keeps only completions recorded (created) from then on.
    """
    query = completions_query(task_type=rule.task_type, window=window)
    if recorded_since is not None:
        query = query.filter(created_at__gte=recorded_since)
    rows = query.values_list("occurred_at", "id", "user_id", "business_id", "decisions")
    return [row[:4] for row in rows.iterator(chunk_size=5000) if not any(d.get("rule_id") == rule.pk for d in row[4])]


def completions_more_than(*, task_type: str, window: Window, limit: int) -> bool:
    """Whether the dry run of `window` would read more than `limit` completions (counts `limit` + 1 at most)."""
    return completions_query(task_type=task_type, window=window)[: limit + 1].count() > limit


def stream_whole_result() -> None:
    """Plan this transaction's cursors for reading every row, not the first few.

    PostgreSQL plans a cursor for its first 10 % of rows by default (`cursor_tuple_fraction`),
    which picks a walk of the occurred_at index with a heap read per row over a scan and a sort:
    many times slower when every row is read, as the dry run does.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")


@dataclass(frozen=True)
class TopUser:
    user_id: int
    username: str
    points: int
    awards: int


@dataclass(frozen=True)
class DryRun:
    """What a rule would have awarded over a window of past completions, had it been active."""

    rule: ScoreRule
    window: Window
    tally: Tally
    top: list[TopUser]

    @property
    def rate(self) -> float:
        """Completions replayed per second."""
        return self.tally.completions / self.tally.seconds if self.tally.seconds else 0.0

    def reasons(self) -> list[tuple[str, int]]:
        """(reason, completions) by number of completions, most first."""
        return sorted(self.tally.reasons.items(), key=lambda item: (-item[1], item[0]))

    def as_dict(self) -> dict:
        return {
            "rule": self.rule.score_type,
            "point_type": self.rule.point_type.code,
            "since": self.window.start.isoformat() if self.window.start else None,
            "until": self.window.end.isoformat(),
            "completions": self.tally.completions,
            "counted": self.tally.counted,
            "recipients": self.tally.recipients,
            "awards": self.tally.awards,
            "points": self.tally.points,
            "reasons": dict(self.reasons()),
            "top": [dataclasses.asdict(user) for user in self.top],
            "seconds": round(self.tally.seconds, 3),
        }


@dataclass(frozen=True)
class StoredTally:
    completions: int
    counted: int
    recipients: int
    awards: int
    points: int
    seconds: float


@dataclass(frozen=True)
class StoredDryRun:
    """A dry run's figures read back from its `as_dict` (one a worker ran): what its page shows of a `DryRun`."""

    rule: ScoreRule
    window: Window
    tally: StoredTally
    top: list[TopUser]
    reason_counts: dict[str, int]

    @classmethod
    def of(cls, rule: ScoreRule, data: dict) -> "StoredDryRun":
        since = datetime.fromisoformat(data["since"]) if data["since"] else None
        return cls(
            rule=rule,
            window=Window(since, datetime.fromisoformat(data["until"])),
            tally=StoredTally(*(data[name] for name in ("completions", "counted", "recipients", "awards", "points", "seconds"))),
            top=[TopUser(**user) for user in data["top"]],
            reason_counts=dict(data["reasons"]),
        )

    def reasons(self) -> list[tuple[str, int]]:
        return sorted(self.reason_counts.items(), key=lambda item: (-item[1], item[0]))


def _top_users(tally: Tally, n: int) -> list[TopUser]:
    ranked = tally.top(n)
    names = dict(get_user_model().objects.filter(pk__in=[row[0] for row in ranked]).values_list("pk", "username"))
    return [TopUser(user_id, names.get(user_id, str(user_id)), points, awards) for user_id, points, awards in ranked]


def rule_dry_run(
    *,
    rule: ScoreRule,
    since: datetime | None,
    until: datetime | None = None,
    top: int = TOP_USERS,
    live_recipients: bool = False,
    undecided_only: bool = False,
) -> DryRun:
    """Replay the rule over its task's completions in [since, until) ∩ its window; write nothing.

    With `live_recipients`, the users who already hold one of a capped rule's places keep them in
    the replay (what a backfill starts from); otherwise the rule starts with every place free.
    With `undecided_only`, only the completions whose decisions do not name the rule are replayed
    (`undecided_completions`: exactly what its backfill takes; slower, it reads their decisions).
    """
    window = Window.of(rule, since=since, until=until)
    tally = Tally()
    if not window.empty:
        replay = replay_for(rule, live_recipients=live_recipients)
        step, add = replay.step, tally.add
        # In a transaction: one snapshot, and PostgreSQL streams the cursor instead of first
        # materializing every row, as it must for a cursor that outlives its transaction (WITH HOLD).
        with transaction.atomic():
            stream_whole_result()
            rows = (
                undecided_completions(rule=rule, window=window)
                if undecided_only
                else rule_completions(task_type=rule.task_type, window=window)
            )
            for occurred_at, _id, user_id, business_id in rows:
                add(user_id, step(user_id, occurred_at, business_id))
    tally.stop()
    return DryRun(rule=rule, window=window, tally=tally, top=_top_users(tally, top))


def replay_for(rule: ScoreRule, *, live_recipients: bool) -> Replay:
    """A fresh replay of `rule`; with `live_recipients`, its capped places already taken stay taken."""
    spec = replay_spec(rule)
    holders: set[int] = set()
    if live_recipients and spec.recipient_cap is not None:
        holders = set(RuleRecipient.objects.filter(rule=rule).values_list("user_id", flat=True))
    return Replay(spec, ZoneInfo(settings.TIME_ZONE), recipients=len(holders), recipient_ids=holders)

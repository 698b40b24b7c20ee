"""A large, consistent demo data set for trying the admin at scale (SPEC §10 P5).

`demo_data_seed` writes users, their accounts, completions, progress rows, counted completions,
ledger entries and adjustments straight into the tables, with PostgreSQL's COPY (or multi-row
INSERTs on SQLite). Nothing goes through the pipeline, so the rows are made to be what the
pipeline would have written:

- every ledger entry of an account has the next `seq` from 1 with no gap, its before is the
  previous after, and the account's balance and `last_seq` are the last after and the count
  (invariant 1); entries are only ever inserted (2);
- each award has its own completion and rule (3), and only rules without a recipient cap award (4);
- awards respect `award_limit_per_period` and, under `can_repeat = false`, a business id counts
  once per period; progress rows count exactly the completions counted in them;
- adjustments never take a balance below zero (5).

Only active count rules with N = 1, no recipient cap and no badge are used, so every completion awards
exactly once. Each user's history is planned first (its chain needs it whole); then the rows are
written in time order across all users, as the pipeline writes them, so ids and the tables'
physical order follow `created_at` and "the last two weeks" is a compact range of pages, as on a
real site. Each table's ids are reserved up front by moving its id sequence past the block, so a
pipeline writing meanwhile cannot collide; still, seed a database that is otherwise quiet.
"""

import functools
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from apps.community.bulk_write import BulkTable, ids_reserve
from apps.core.clock import local_date, serial_stamp
from apps.core.periods import period_bounds
from apps.ledger.models import Account, Adjustment, LeaderboardTotal, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.leaderboard import leaderboards_rebuild
from apps.ledger.services.lots import accounts_open
from apps.rules.models import CountedCompletion, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.tasks.models import TaskConfig, UserTaskRecord

ADJUSTMENT_REASONS = ("Goodwill for a support ticket", "Event prize", "Correction of a double sign-in", "Moderation penalty")
COUNTRIES = ("CN", "CN", "CN", "US", "JP", "DE", "")
LANGUAGES = ("zh-hans", "zh-hans", "en", "ja")


@dataclass(frozen=True)
class SeedPlan:
    users: int
    entries: int
    days: int = 60
    adjustment_share: float = 0.01  # of the entries; a fifth as many more wait for approval (no entry yet)
    chunk_users: int = 5000  # users (and their accounts) written per transaction
    chunk_postings: int = 50_000  # ledger entries (with their completions, progress, ...) written per transaction
    seed: int = 1
    username_prefix: str = "demo"


@dataclass
class SeedReport:
    users: int = 0
    accounts: int = 0
    completions: int = 0
    progress_rows: int = 0
    entries: int = 0
    adjustments: int = 0
    pending_adjustments: int = 0
    leaderboard_totals: int = 0
    per_table_s: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Rule:
    id: int
    code: str
    period: str
    points: int
    limit: int | None
    can_repeat: bool
    task_id: int
    method: str
    path_for: Callable[[str], str]
    uses_business_id: bool
    object_points: dict[str, int]


class SeedError(Exception):
    """The database lacks what the data set needs, or the plan cannot be met."""


def _path_maker(config: TaskConfig) -> Callable[[str], str]:
    """A request path that the config's regex matches, with the business id in its group (or "" if none can be made)."""
    group = config.id_group_name

    @functools.lru_cache(maxsize=10_000)
    def path_for(business_id: str) -> str:
        text = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: business_id if m.group(1) == group else "1", config.interface_name)
        text = text.strip("^$").replace("\\d+", "1").replace("\\", "")
        return text if re.fullmatch(config.interface_name, text) else ""

    return path_for


def _seedable_rules(*, since: datetime) -> list[_Rule]:
    """The rules that award once per completion and whose window covers everything since `since`."""
    now = timezone.now()
    configs = {c.task_type: c for c in TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE)}
    rules = ScoreRule.objects.filter(
        Q(start_time__isnull=True) | Q(start_time__lte=since),
        Q(end_time__isnull=True) | Q(end_time__gt=now),
        status=ScoreRule.Status.ACTIVE,
        kind=ScoreRule.Kind.COUNT,
        required_number_of_times=1,
        number_limit_all__isnull=True,
        task_type__in=list(configs),
        point_type_id=default_point_type_id(),  # one account per user: the main one
        badge__isnull=True,  # a badge's award is a BadgeAward row too, which the seed does not write
    ).order_by("id")
    amounts = defaultdict(dict)
    for row in ScoreRuleObjectPoints.objects.filter(rule__in=rules):
        amounts[row.rule_id][row.business_id] = row.points
    seedable = []
    for rule in rules:
        config = configs[rule.task_type]
        seedable.append(
            _Rule(
                id=rule.pk,
                code=rule.score_type,
                period=rule.statistical_period,
                points=rule.points,
                limit=rule.award_limit_per_period,
                can_repeat=rule.can_repeat,
                task_id=config.pk,
                method=config.method,
                path_for=_path_maker(config),
                uses_business_id=bool(config.id_group_name),
                object_points=amounts[rule.pk],
            )
        )
    return seedable


class _Clock:
    """Random instants in the last `days` local days, and the calendar periods that hold them."""

    def __init__(self, rng: random.Random, days: int, now: datetime, tz: ZoneInfo):
        self.rng, self.now, self.tz = rng, now, tz
        today = local_date(now)
        self.days = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
        self._midnights = {d: datetime(d.year, d.month, d.day, tzinfo=tz) for d in [*self.days, today + timedelta(days=1)]}
        self._bounds: dict[tuple[str, date], tuple[datetime, datetime | None]] = {}

    def instant(self, day: date) -> datetime:
        start = self._midnights[day]
        end = min(self._midnights[day + timedelta(days=1)], self.now - timedelta(seconds=10))
        return start + timedelta(seconds=self.rng.uniform(0, max((end - start).total_seconds(), 0)))

    def period(self, period: str, day: date, at: datetime) -> tuple[datetime, datetime | None]:
        key = (period, day)
        if key not in self._bounds:
            self._bounds[key] = period_bounds(period, at, self.tz)
        return self._bounds[key]


@dataclass
class _Progress:
    """One progress row of a user, rule and period, with its final counts (known before it is written)."""

    user_id: int
    rule_id: int
    period_start: datetime
    deadline: datetime | None
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    id: int | None = None  # given when its first completion is written


# What each user did, planned user by user (the per-account chain needs a user's whole history) and
# written in time order across users, as the pipeline writes: ids and the tables' physical order
# follow created_at, so a range of recent rows is a compact range of pages, as on a real site.
AWARD, ADJUST, PENDING = 0, 1, 2


class _Seeder:
    def __init__(self, plan: SeedPlan, rules: list[_Rule], operator_id: int, report: SeedReport):
        self.plan, self.rules, self.operator_id, self.report = plan, rules, operator_id, report
        self.rng = random.Random(plan.seed)
        self.point_type_id = default_point_type_id()
        self.now = timezone.now()
        self.clock = _Clock(self.rng, plan.days, self.now, ZoneInfo(settings.TIME_ZONE))
        rng = self.rng
        self.addresses = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(4096)]
        user_model = get_user_model()
        self.tables = {
            "users": BulkTable(user_model, ["id", "username", "password", "date_joined", "is_active"]),
            "accounts": BulkTable(
                Account,
                ["id", "user_id", "balance", "last_seq", "last_activity_at", "created_at", "updated_at", "point_type_id"],
            ),
            "completions": BulkTable(
                UserTaskRecord,
                [
                    "id", "user_id", "task_id", "business_id", "event_id", "occurred_at", "method", "path", "status_code",
                    "location", "country", "lang_type", "decisions", "created_at", "updated_at",
                ],
            ),
            "progress": BulkTable(
                UserScoreInfo,
                [
                    "id", "user_id", "achievement_type_id", "period_start", "deadline", "required_number",
                    "achievement_amount_now", "achieved", "awards_in_period", "streak_length", "created_at", "updated_at",
                ],
            ),
            "counted": BulkTable(
                CountedCompletion, ["id", "rule_id", "score_info_id", "completion_id", "dedupe_key", "created_at"]
            ),
            "entries": BulkTable(
                ScoreRecord,
                [
                    "id", "account_id", "user_id", "point_type_id", "serial_number", "seq", "trade_amount", "amount_before_trade",
                    "amount_after_trade", "business_type", "kind", "score_info_id", "rule_id", "completion_id",
                    "location", "country", "lang_type", "idempotency_key", "created_at",
                ],
            ),
            "adjustments": BulkTable(
                Adjustment,
                ["id", "user_id", "amount", "reason", "status", "requested_by_id", "decided_by_id", "entry_id", "request_token",
                 "created_at", "decided_at", "point_type_id"],
            ),
        }  # fmt: skip
        history = getattr(Adjustment, "history", None)  # django-simple-history's manager, where it is kept
        if history is not None:
            self.tables["adjustments_history"] = BulkTable(
                history.model, [*self.tables["adjustments"].columns, "history_date", "history_type", "history_user_id"]
            )

    def _write(self, name: str, rows: list[tuple]) -> None:
        started = time.perf_counter()
        self.tables[name].write(rows, now=self.now)
        self.report.per_table_s[name] += time.perf_counter() - started

    def _awards_for(self, count: int) -> list[tuple[_Rule, datetime, tuple, str]]:
        """`count` (rule, instant, period bounds, business id) that the rules' limits allow."""
        taken: Counter = Counter()
        seen: set = set()
        awards = []
        for _ in range(50 * count + 1000):
            if len(awards) == count:
                break
            rule = self.rng.choice(self.rules)
            day = self.rng.choice(self.clock.days)
            at = self.clock.instant(day)
            bounds = self.clock.period(rule.period, day, at)
            if rule.limit is not None and taken[(rule.id, bounds[0])] >= rule.limit:
                continue
            business_id = str(self.rng.randint(1, 5000)) if rule.uses_business_id else ""
            if not rule.can_repeat:
                if (rule.id, bounds[0], business_id) in seen:
                    continue
                seen.add((rule.id, bounds[0], business_id))
            taken[(rule.id, bounds[0])] += 1
            awards.append((rule, at, bounds, business_id))
        else:
            raise SeedError(f"{count} awards for one user do not fit the rules' limits over {len(self.clock.days)} days")
        return awards

    def plan_user(self, uid: int, aid: int, awards: int, adjustments: int, pending: int, postings: list) -> tuple:
        """Append the user's postings, balances and sequence numbers decided; return the account's row."""
        rng = self.rng
        mine = []
        rows: dict[tuple, _Progress] = {}
        for rule, at, (start, deadline), business_id in sorted(self._awards_for(awards), key=lambda a: a[1]):
            row = rows.get((rule.id, start))
            if row is None:
                row = rows[(rule.id, start)] = _Progress(uid, rule.id, start, deadline, first_at=at)
            row.count += 1
            row.last_at = at
            written = min(at + timedelta(seconds=rng.uniform(0.05, 3)), self.now)
            amount = rule.object_points.get(business_id, rule.points)
            mine.append([written, AWARD, amount, (rule, row, row.count, business_id, at)])
        for _ in range(adjustments):
            # Mostly credits; the sign is settled below, where the balance at that moment is known.
            mine.append([self.clock.instant(rng.choice(self.clock.days)), ADJUST, rng.randint(1, 50), None])
        mine.sort(key=lambda posting: posting[0])
        balance = seq = 0
        for posting in mine:
            written, kind, amount, detail = posting
            if kind == ADJUST and balance >= amount and rng.random() < 0.3:
                amount = -amount  # a debit only where the balance covers it (invariant 5)
            seq += 1
            postings.append((written, kind, uid, aid, seq, balance, amount, detail))
            balance += amount
        for _ in range(pending):
            postings.append((self.clock.instant(self.clock.days[-1]), PENDING, uid, aid, 0, 0, rng.randint(100, 500), None))
        opened = mine[0][0] if mine else self.now
        last = mine[-1][0] if mine else None
        return (aid, uid, balance, seq, last, opened, last or opened)

    def write_in_time_order(self, postings: list, ids: dict[str, int], progress: Callable[[str], None]) -> None:
        rng, report = self.rng, self.report
        postings.sort(key=lambda posting: posting[0])
        next_id = dict(ids)

        def take(name: str) -> int:
            next_id[name] += 1
            return next_id[name] - 1

        for start in range(0, len(postings), self.plan.chunk_postings):
            completions, rows, counted, entries, adjustments = [], [], [], [], []
            for written, kind, uid, aid, seq, before, amount, detail in postings[start : start + self.plan.chunk_postings]:
                if kind == PENDING:
                    adjustments.append(
                        (take("adjustments"), uid, amount, "Compensation for a lost prize (needs approval)",
                         Adjustment.Status.PENDING, self.operator_id, None, None, uuid.uuid4(), written, None,
                         self.point_type_id)
                    )  # fmt: skip
                    continue
                eid = take("entries")
                serial = f"{serial_stamp(written)}-{aid}-{seq}"
                if kind == ADJUST:
                    # Event ids and request tokens are new on every run, whatever the seed.
                    token = uuid.uuid4()
                    entries.append(
                        (eid, aid, uid, self.point_type_id, serial, seq, amount, before, before + amount, "adjustment",
                         ScoreRecord.Kind.ADJUSTMENT, None, None, None, "", "", "", f"adjustment:{token}", written)
                    )  # fmt: skip
                    adjustments.append(
                        (take("adjustments"), uid, amount, rng.choice(ADJUSTMENT_REASONS), Adjustment.Status.POSTED,
                         self.operator_id, None, eid, token, written, written, self.point_type_id)
                    )  # fmt: skip
                    continue
                rule, row, nth, business_id, at = detail
                if row.id is None:
                    row.id = take("progress")
                    rows.append(
                        (row.id, uid, rule.id, row.period_start, row.deadline, 1, row.count, True, row.count, 0,
                         row.first_at, row.last_at)
                    )  # fmt: skip
                cid, event_id = take("completions"), uuid.uuid4()
                address, country, lang = rng.choice(self.addresses), rng.choice(COUNTRIES), rng.choice(LANGUAGES)
                decision = {"rule": rule.code, "rule_id": rule.id, "counted": True, "reason": "awarded"}
                completions.append(
                    (cid, uid, rule.task_id, business_id, event_id, at, rule.method, rule.path_for(business_id), 200,
                     address, country, lang, [decision | {"progress": nth, "points": amount}], written, written)
                )  # fmt: skip
                counted.append((take("counted"), rule.id, row.id, cid, None if rule.can_repeat else business_id, written))
                entries.append(
                    (eid, aid, uid, self.point_type_id, serial, seq, amount, before, before + amount, rule.code,
                     ScoreRecord.Kind.AWARD, row.id, rule.id, cid, address, country, lang, f"award:{event_id}:{rule.id}", written)
                )  # fmt: skip
            with transaction.atomic():
                for name, batch in (
                    ("completions", completions),
                    ("progress", rows),
                    ("counted", counted),
                    ("entries", entries),
                    ("adjustments", adjustments),
                ):
                    self._write(name, batch)
                if "adjustments_history" in self.tables:
                    # An adjustment's history starts with its creation by the operator, as the admin records it.
                    self._write("adjustments_history", [(*a, a[9], "+", self.operator_id) for a in adjustments])
            report.completions += len(completions)
            report.progress_rows += len(rows)
            report.entries += len(entries)
            report.adjustments += sum(1 for a in adjustments if a[7] is not None)
            report.pending_adjustments += sum(1 for a in adjustments if a[7] is None)
            progress(f"{report.entries}/{self.plan.entries} entries")


def _split(total: int, buckets: int, rng: random.Random) -> list[int]:
    """`total` spread at random over `buckets` (each unit lands in a uniformly chosen bucket)."""
    counts = [0] * buckets
    for index in rng.choices(range(buckets), k=total):
        counts[index] += 1
    return counts


def _reserve_all(counts: dict[str, tuple[type[models.Model], int]]) -> dict[str, int]:
    """{name: first id} of a block of ids per table, reserved in one short transaction."""
    with transaction.atomic():
        return {name: ids_reserve(model, max(count, 1)) for name, (model, count) in counts.items()}


def demo_data_seed(*, plan: SeedPlan, operator_id: int, progress: Callable[[str], None] = lambda line: None) -> SeedReport:
    """Add `plan.users` users and exactly `plan.entries` ledger entries (awards and adjustments) with everything behind them.

    Raises SeedError when no rule can award (load the demo rules first) or the entries cannot
    fit the users, days and per-period limits.
    """
    if connection.vendor not in ("postgresql", "sqlite"):
        raise ImproperlyConfigured("seed_demo_data writes with PostgreSQL's COPY or SQLite's INSERT only")
    rules = _seedable_rules(since=timezone.now() - timedelta(days=plan.days + 1))
    if not rules:
        raise SeedError(
            "No active count rule with N = 1 and no recipient cap, on a task config in use: load the demo rules first."
        )
    if plan.users < 1 or plan.entries < 0 or plan.days < 1:
        raise SeedError("Give at least one user and one day, and no negative number of entries.")
    capacity = plan.days * sum(rule.limit or 1000 for rule in rules)
    if plan.entries > plan.users * capacity // 2:
        raise SeedError(f"{plan.entries} entries do not fit {plan.users} users over {plan.days} days under the rules' limits.")

    report = SeedReport()
    rng = random.Random(plan.seed)
    adjustments = round(plan.entries * plan.adjustment_share)
    awards_per_user = _split(plan.entries - adjustments, plan.users, rng)
    adjustments_per_user = _split(adjustments, plan.users, rng)
    pending_per_user = _split(max(adjustments // 5, 1 if adjustments else 0), plan.users, rng)
    awards = plan.entries - adjustments
    user_model = get_user_model()
    first_user = user_model.objects.filter(username__startswith=plan.username_prefix).count()
    ids = _reserve_all(
        {
            "users": (user_model, plan.users),
            "accounts": (Account, plan.users),
            "completions": (UserTaskRecord, awards),
            "counted": (CountedCompletion, awards),
            "progress": (UserScoreInfo, awards),  # at most one row per award; the unused rest is a gap
            "entries": (ScoreRecord, plan.entries),
            "adjustments": (Adjustment, adjustments + sum(pending_per_user)),
        }
    )
    seeder = _Seeder(plan, rules, operator_id, report)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A lost last chunk on a crash is acceptable for demo data; waiting for every flush is not.
            cursor.execute("SET synchronous_commit = off")

    postings: list[tuple] = []
    for start in range(0, plan.users, plan.chunk_users):
        end = min(start + plan.chunk_users, plan.users)
        users, accounts = [], []
        for index in range(start, end):
            uid, aid = ids["users"] + index, ids["accounts"] + index
            joined = seeder.now - timedelta(days=plan.days + rng.randint(0, 365))
            users.append((uid, f"{plan.username_prefix}{first_user + index:07d}", "!", joined, True))
            accounts.append(
                (
                    *seeder.plan_user(
                        uid, aid, awards_per_user[index], adjustments_per_user[index], pending_per_user[index], postings
                    ),
                    seeder.point_type_id,
                )
            )
        with transaction.atomic():
            seeder._write("users", users)
            seeder._write("accounts", accounts)
        report.users += len(users)
        report.accounts += len(accounts)
        progress(f"{end}/{plan.users} users and accounts")
    seeder.write_in_time_order(postings, ids, progress)
    # Levels' earned totals and one lot per account holding its balance, as the posting keeps them.
    accounts_open(first_id=ids["accounts"], last_id=ids["accounts"] + plan.users - 1)

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = on")
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            # Fresh statistics and visibility maps, so the admin's first queries are planned on the new sizes.
            tables = (user_model, Account, UserTaskRecord, UserScoreInfo, CountedCompletion, ScoreRecord, Adjustment)
            for model in tables:
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    # The totals are recomputed from the whole ledger rather than written with the entries: the
    # same arithmetic as `verify_ledger` checks them with. After the statistics above, so the
    # rebuild's query is planned on the ledger's real size.
    report.leaderboard_totals = leaderboards_rebuild()
    progress(f"{report.leaderboard_totals} leaderboard totals")
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(LeaderboardTotal._meta.db_table)}")
    return report

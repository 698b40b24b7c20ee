"""A large, consistent demo data set for trying the admin at scale (SPEC §10 P5).

`demo_data_seed` writes users, their accounts, completions, progress rows, counted completions,
ledger entries and adjustments straight into the tables, in chunks of users, with PostgreSQL's
COPY (or multi-row INSERTs on SQLite). Nothing goes through the pipeline, so the rows are made
to be what the pipeline would have written:

- every ledger entry of an account has the next `seq` from 1 with no gap, its before is the
  previous after, and the account's balance and `last_seq` are the last after and the count
  (invariant 1); entries are only ever inserted (2);
- each award has its own completion and rule (3), and only rules without a recipient cap award (4);
- awards respect `award_limit_per_period` and, under `can_repeat = false`, a business id counts
  once per period; progress rows count exactly the completions counted in them;
- adjustments never take a balance below zero (5).

Only active count rules with N = 1 and no recipient cap are used, so every completion awards
exactly once. Ids are reserved per chunk by moving each table's id sequence past the block,
under a table lock, so a pipeline writing meanwhile waits instead of colliding; still, seed a
database that is otherwise quiet.
"""

import functools
import json
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone

from apps.ledger.models import Account, Adjustment, ScoreRecord
from apps.rules.models import CountedCompletion, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.rules.periods import period_bounds
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
    chunk_users: int = 5000
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


# --- Writing rows -----------------------------------------------------------------------------


class _Table:
    """Rows for one model's table: the given columns plus every other column at its default."""

    def __init__(self, model: type[models.Model], columns: list[str]):
        self.model = model
        self.columns = columns
        fields = {f.attname: f for f in model._meta.concrete_fields}
        self.fields = [fields[name] for name in columns]
        # An auto-increment key left out is the database's to give (a history table's history_id).
        generated = {name for name, f in fields.items() if f.primary_key and isinstance(f, AutoFieldMixin)}
        self.filled = [f for name, f in fields.items() if name not in columns and name not in generated]
        for f in self.filled:
            # A text column without a default gets "", as Django itself gives it.
            known = f.has_default() or f.null or f.empty_strings_allowed
            if not (known or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)):
                raise SeedError(f"{model._meta.label}.{f.name} has no default: seed_demo_data must be taught to fill it")

    @property
    def all_columns(self) -> list[str]:
        return self.columns + [f.column for f in self.filled]

    def defaults(self, now: datetime) -> list:
        values = []
        for f in self.filled:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                values.append(now)
            else:
                values.append(f.get_default())
        return values

    def write(self, rows: list[tuple], *, now: datetime) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        table, columns = quote(self.model._meta.db_table), ", ".join(quote(c) for c in self.all_columns)
        fields = self.fields + self.filled
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # JSON goes as its text; everything else psycopg writes natively.
                json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - quoted names
                    for row in rows:
                        values = [*row, *self.defaults(now)]
                        for i in json_at:
                            values[i] = json.dumps(values[i])
                        copy.write_row(values)
            else:
                placeholders = ", ".join(["%s"] * len(fields))
                prepared = [
                    [f.get_db_prep_save(value, connection) for f, value in zip(fields, [*row, *self.defaults(now)], strict=True)]
                    for row in rows
                ]
                for start in range(0, len(prepared), 500):
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared[start : start + 500])  # noqa: S608


def _reserve_ids(model: type[models.Model], count: int) -> int:
    """The first of `count` consecutive ids nobody else will use; the table stays locked until commit."""
    quote = connection.ops.quote_name
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Readers go on; a concurrent writer waits for this chunk's commit and then takes ids
            # after the block, since the sequence has moved past it.
            cursor.execute(f"LOCK TABLE {quote(table)} IN EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {quote(table)}), last_value) FROM {sequence}")  # noqa: S608
            first = cursor.fetchone()[0] + 1
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote(table)}")  # noqa: S608
            first = cursor.fetchone()[0] + 1
    return first


# --- What to write ----------------------------------------------------------------------------


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
        today = now.astimezone(tz).date()
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
class _Chunk:
    users: list[tuple] = field(default_factory=list)
    accounts: list[tuple] = field(default_factory=list)
    completions: list[tuple] = field(default_factory=list)
    progress: list[tuple] = field(default_factory=list)
    counted: list[tuple] = field(default_factory=list)
    entries: list[tuple] = field(default_factory=list)
    adjustments: list[tuple] = field(default_factory=list)


class _Writer:
    def __init__(self, plan: SeedPlan, rules: list[_Rule], operator_id: int, report: SeedReport):
        self.plan, self.rules, self.operator_id, self.report = plan, rules, operator_id, report
        self.rng = random.Random(plan.seed)
        self.now = timezone.now()
        self.clock = _Clock(self.rng, plan.days, self.now, ZoneInfo(settings.TIME_ZONE))
        rng = self.rng
        self.addresses = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(4096)]
        user_model = get_user_model()
        self.tables = {
            "users": _Table(user_model, ["id", "username", "password", "date_joined", "is_active"]),
            "accounts": _Table(Account, ["id", "user_id", "balance", "last_seq", "last_activity_at", "created_at", "updated_at"]),
            "completions": _Table(
                UserTaskRecord,
                [
                    "id", "user_id", "task_id", "business_id", "event_id", "occurred_at", "method", "path", "status_code",
                    "location", "country", "lang_type", "decisions", "created_at", "updated_at",
                ],
            ),
            "progress": _Table(
                UserScoreInfo,
                [
                    "id", "user_id", "achievement_type_id", "period_start", "deadline", "required_number",
                    "achievement_amount_now", "achieved", "awards_in_period", "streak_length", "created_at", "updated_at",
                ],
            ),
            "counted": _Table(CountedCompletion, ["id", "rule_id", "score_info_id", "completion_id", "dedupe_key", "created_at"]),
            "entries": _Table(
                ScoreRecord,
                [
                    "id", "account_id", "user_id", "serial_number", "seq", "trade_amount", "amount_before_trade",
                    "amount_after_trade", "business_type", "kind", "score_info_id", "rule_id", "completion_id",
                    "location", "country", "lang_type", "idempotency_key", "created_at",
                ],
            ),
            "adjustments": _Table(
                Adjustment,
                ["id", "user_id", "amount", "reason", "status", "requested_by_id", "decided_by_id", "entry_id", "request_token",
                 "created_at", "decided_at"],
            ),
        }  # fmt: skip
        history = getattr(Adjustment, "history", None)  # django-simple-history's manager, where it is kept
        if history is not None:
            self.tables["adjustments_history"] = _Table(
                history.model, [*self.tables["adjustments"].columns, "history_date", "history_type", "history_user_id"]
            )

    def _uuid(self) -> uuid.UUID:
        # Event ids and request tokens are unique across runs, whatever the seed: not from `rng`.
        return uuid.uuid4()

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

    def chunk(self, first_user: int, awards_per_user: list[int], adjustments_per_user: list[int], pending: list[int]) -> _Chunk:
        plan, rng, chunk = self.plan, self.rng, _Chunk()
        n = len(awards_per_user)
        total_awards, total_adjustments = sum(awards_per_user), sum(adjustments_per_user)
        user_id = _reserve_ids(get_user_model(), n)
        account_id = _reserve_ids(Account, n)
        completion_id = _reserve_ids(UserTaskRecord, total_awards)
        counted_id = _reserve_ids(CountedCompletion, total_awards)
        entry_id = _reserve_ids(ScoreRecord, total_awards + total_adjustments)
        adjustment_id = _reserve_ids(Adjustment, total_adjustments + sum(pending))
        # At most one new progress row per award; the ids a chunk leaves unused are a harmless gap.
        progress_id = _reserve_ids(UserScoreInfo, total_awards)
        progress_rows: list[list] = []

        for offset in range(n):
            uid, aid = user_id + offset, account_id + offset
            joined = self.now - timedelta(days=plan.days + rng.randint(0, 365))
            chunk.users.append((uid, f"{plan.username_prefix}{first_user + offset:07d}", "!", joined, True))
            postings = []  # (created_at, kind, payload)
            rows_of_user: dict[tuple, list] = {}
            for rule, at, bounds, business_id in sorted(self._awards_for(awards_per_user[offset]), key=lambda a: a[1]):
                key = (rule.id, bounds[0])
                row = rows_of_user.get(key)
                if row is None:
                    row = [progress_id, uid, rule.id, bounds[0], bounds[1], 1, 0, True, 0, 0, at, at]
                    progress_id += 1
                    rows_of_user[key] = row
                    progress_rows.append(row)
                row[6] += 1  # achievement_amount_now
                row[8] += 1  # awards_in_period
                row[11] = at  # updated_at
                amount = rule.object_points.get(business_id, rule.points)
                event_id = self._uuid()
                meta = (rng.choice(self.addresses), rng.choice(COUNTRIES))
                lang = rng.choice(LANGUAGES)
                decisions = [
                    {"rule": rule.code, "rule_id": rule.id, "counted": True, "reason": "awarded"}
                    | {"progress": row[6], "points": amount}
                ]
                cid = completion_id
                completion_id += 1
                written = min(at + timedelta(seconds=rng.uniform(0.05, 3)), self.now)
                chunk.completions.append(
                    (cid, uid, rule.task_id, business_id, event_id, at, rule.method, rule.path_for(business_id), 200,
                     meta[0], meta[1], lang, decisions, written, written)
                )  # fmt: skip
                dedupe = None if rule.can_repeat else business_id
                chunk.counted.append((counted_id, rule.id, row[0], cid, dedupe, written))
                counted_id += 1
                postings.append((written, "award", (rule, row, cid, amount, event_id, meta, lang)))
            for _ in range(adjustments_per_user[offset]):
                day = rng.choice(self.clock.days)
                postings.append((self.clock.instant(day), "adjustment", None))
            postings.sort(key=lambda p: p[0])

            balance, seq, last = 0, 0, None
            for created, kind, payload in postings:
                seq += 1
                eid = entry_id
                entry_id += 1
                serial = f"{created:%Y%m%d%H%M%S}{created.microsecond:06d}-{aid}-{seq}"
                if kind == "award":
                    rule, row, cid, amount, event_id, meta, lang = payload
                    chunk.entries.append(
                        (eid, aid, uid, serial, seq, amount, balance, balance + amount, rule.code, ScoreRecord.Kind.AWARD,
                         row[0], rule.id, cid, meta[0], meta[1], lang, f"award:{event_id}:{rule.id}", created)
                    )  # fmt: skip
                else:
                    # Mostly credits; a debit only where the balance covers it (invariant 5).
                    amount = rng.randint(1, 50)
                    if balance >= amount and rng.random() < 0.3:
                        amount = -amount
                    token = self._uuid()
                    chunk.entries.append(
                        (eid, aid, uid, serial, seq, amount, balance, balance + amount, "adjustment",
                         ScoreRecord.Kind.ADJUSTMENT, None, None, None, "", "", "", f"adjustment:{token}", created)
                    )  # fmt: skip
                    chunk.adjustments.append(
                        (adjustment_id, uid, amount, rng.choice(ADJUSTMENT_REASONS), Adjustment.Status.POSTED,
                         self.operator_id, None, eid, token, created, created)
                    )  # fmt: skip
                    adjustment_id += 1
                balance += amount
                last = created
            for _ in range(pending[offset]):
                asked = self.clock.instant(self.clock.days[-1])
                chunk.adjustments.append(
                    (adjustment_id, uid, rng.randint(100, 500), "Compensation for a lost prize (needs approval)",
                     Adjustment.Status.PENDING, self.operator_id, None, None, self._uuid(), asked, None)
                )  # fmt: skip
                adjustment_id += 1
            opened = postings[0][0] if postings else joined
            chunk.accounts.append((aid, uid, balance, seq, last, opened, last or opened))
        chunk.progress = [tuple(row) for row in progress_rows]
        return chunk

    def write(self, chunk: _Chunk) -> None:
        for name in ("users", "accounts", "completions", "progress", "counted", "entries", "adjustments"):
            started = time.perf_counter()
            self.tables[name].write(getattr(chunk, name), now=self.now)
            self.report.per_table_s[name] += time.perf_counter() - started
        if "adjustments_history" in self.tables:
            # Each adjustment's history starts with its creation by the operator, as the admin would record it.
            history = [(*row, row[9], "+", self.operator_id) for row in chunk.adjustments]
            self.tables["adjustments_history"].write(history, now=self.now)
        report = self.report
        report.users += len(chunk.users)
        report.accounts += len(chunk.accounts)
        report.completions += len(chunk.completions)
        report.progress_rows += len(chunk.progress)
        report.entries += len(chunk.entries)
        report.adjustments += sum(1 for a in chunk.adjustments if a[7] is not None)
        report.pending_adjustments += sum(1 for a in chunk.adjustments if a[7] is None)


def _split(total: int, buckets: int, rng: random.Random) -> list[int]:
    """`total` spread at random over `buckets` (each unit lands in a uniformly chosen bucket)."""
    counts = [0] * buckets
    for index in rng.choices(range(buckets), k=total):
        counts[index] += 1
    return counts


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


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
    user_model = get_user_model()
    first_user = user_model.objects.filter(username__startswith=plan.username_prefix).count()
    writer = _Writer(plan, rules, operator_id, report)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # A lost last chunk on a crash is acceptable for demo data; waiting for every flush is not.
            cursor.execute("SET synchronous_commit = off")
    for start, end in _chunks(plan.users, plan.chunk_users):
        with transaction.atomic():
            chunk = writer.chunk(
                first_user + start, awards_per_user[start:end], adjustments_per_user[start:end], pending_per_user[start:end]
            )
            writer.write(chunk)
        progress(f"{end}/{plan.users} users, {report.entries} entries")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = on")
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            # Fresh statistics and visibility maps, so the admin's first queries are planned on the new sizes.
            for model in (user_model, Account, UserTaskRecord, UserScoreInfo, CountedCompletion, ScoreRecord, Adjustment):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return report

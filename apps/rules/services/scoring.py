"""Applying the engine's decisions: progress rows, counted completions, recipients, awards.

A batch of completions is scored in two steps under its users' account locks: `completions_plan`
reads what the rules need for all of them (one query per table), asks the engine about each
completion and rule in order while keeping progress in memory, and `scoring_plan_write` stores
the outcome once the completion rows exist, with one statement per table for the whole batch.
"""

import logging
import uuid
from bisect import bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import F
from django.utils import timezone

from apps.core.multirow import db_time, fetch, int_list, read_time, rows_insert, rows_update
from apps.core.periods import period_bounds, previous_period_start, site_timezone
from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services.entries import EntryMeta, EntrySpec, ledger_post_batch
from apps.rules.engine import STREAK, Completion, Decision, Progress, RuleSpec, evaluate
from apps.rules.models import CountedCompletion, RuleRecipient, ScoreRule, UserScoreInfo
from apps.rules.selectors.rules import active_rules_for, object_points_for_many, rule_spec
from apps.rules.services.badges import Granted, badges_grant

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScoringItem:
    """One new completion to score: who, which task, when, which object, and where (for the ledger)."""

    user_id: int
    task_type: str
    event_id: uuid.UUID
    occurred_at: datetime
    business_id: str = ""
    meta: EntryMeta = EntryMeta()


@dataclass(slots=True, eq=False)
class _Row:
    """A UserScoreInfo row as scoring sees it: plain values, far cheaper than a model instance per row."""

    pk: int | None
    user_id: int
    rule_id: int
    period_start: datetime
    deadline: datetime | None
    required: int
    count: int = 0
    achieved: bool = False
    awards: int = 0
    streak: int = 0
    last_counted_at: datetime | None = None  # when its latest counted completion occurred
    in_batch: bool = False  # `last_counted_at` was set by this batch (whose completions come in time order)


# A progress row's columns as scoring reads them (`_Row`'s fields in order) and, after the id,
# writes them; the re-score (apps.rules.services.rescore) writes the same ones.
PROGRESS_COLUMNS = (
    "id",
    "user_id",
    "achievement_type_id",
    "period_start",
    "deadline",
    "required_number",
    "achievement_amount_now",
    "achieved",
    "awards_in_period",
    "streak_length",
    "last_counted_at",
)

# What a progress row's update writes: what scoring changes, and the stamp.
PROGRESS_UPDATE_COLUMNS = (*PROGRESS_COLUMNS[6:], "updated_at")


def _periods(spec: RuleSpec, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(start of the period of `at`, earliest period start the rule reads): a streak also reads the period before."""
    start = period_bounds(spec.period, at, tz)[0]
    return start, previous_period_start(spec.period, start, tz) if spec.kind == STREAK else start


def _progress_rows(exact: dict[tuple[int, datetime], set[int]], onward: dict[tuple[int, datetime], set[int]]) -> list[tuple]:
    """UserScoreInfo rows, as `PROGRESS_COLUMNS` tuples: of each (rule, period start) in `exact` for
    its users, and of each (rule, earliest period start) in `onward` from then on. One query.
    """
    terms, params = [], []
    for groups, compare in ((exact, "="), (onward, ">=")):
        for (rule_id, start), users in groups.items():
            terms.append(f"(achievement_type_id = %s AND period_start {compare} %s AND user_id IN ({int_list(sorted(users))}))")
            params += [rule_id, db_time(start)]
    if not terms:
        return []
    rows = fetch(
        f"SELECT {', '.join(PROGRESS_COLUMNS)} FROM {UserScoreInfo._meta.db_table} "  # noqa: S608 - integers and parameters only
        f"WHERE deleted_at IS NULL AND ({' OR '.join(terms)})",
        params,
    )
    # Times as the ORM would give them (SQLite hands back naive UTC), and `achieved` as a bool.
    return [
        (pk, user, rule, read_time(start), read_time(end), required, count, bool(achieved), awards, streak, read_time(last))
        for pk, user, rule, start, end, required, count, achieved, awards, streak, last in rows
    ]


def _cooldown_key(item: ScoringItem, spec: RuleSpec) -> tuple[int, int, str]:
    """Whose counted completions a cooldown keeps apart: (user, rule, business id if per object)."""
    return item.user_id, spec.id, item.business_id if spec.cooldown_per_object else ""


def _counted_times(cooled: list[tuple[ScoringItem, RuleSpec]]) -> dict[tuple[int, int, str], list[datetime]]:
    """When the users' counted completions of rules with a cooldown happened, near the batch's: one query.

    `cooled` pairs each completion with each of its rules that has a cooldown. Only counted
    completions within a cooldown of one of the batch's can block it, so each rule reads from its
    earliest completion in the batch less the cooldown to its latest plus the cooldown (index
    `counted_cooldown_lookup`); a neighbour farther away than that is left out, which the engine
    takes the same as none. Sorted lists, keyed by `_cooldown_key`.
    """
    ranges: dict[int, tuple[timedelta, set[int], datetime, datetime]] = {}
    for item, spec in cooled:
        at = item.occurred_at
        _, users, first, last = ranges.get(spec.id, (None, set(), at, at))
        users.add(item.user_id)
        ranges[spec.id] = (spec.cooldown, users, min(first, at), max(last, at))
    times: dict[tuple[int, int, str], list[datetime]] = {}
    terms, params = [], []
    for rule_id, (cooldown, users, first, last) in sorted(ranges.items()):
        terms.append(f"(rule_id = %s AND user_id IN ({int_list(sorted(users))}) AND occurred_at > %s AND occurred_at < %s)")
        params += [rule_id, db_time(first - cooldown), db_time(last + cooldown)]
    rows = fetch(
        f"SELECT user_id, rule_id, business_id, occurred_at FROM {CountedCompletion._meta.db_table} "  # noqa: S608 - integers and parameters only
        f"WHERE occurred_at IS NOT NULL AND reversed_at IS NULL AND ({' OR '.join(terms)})",
        params,
    )
    per_object = {spec.id for _, spec in cooled if spec.cooldown_per_object}
    for user_id, rule_id, business_id, occurred_at in rows:
        key = (user_id, rule_id, (business_id or "") if rule_id in per_object else "")
        times.setdefault(key, []).append(read_time(occurred_at))
    for moments in times.values():
        moments.sort()
    return times


class BatchState:
    """The progress rows, recipient places and counted business ids that a batch's completions read.

    Read with one query per table for the whole batch and then kept in memory, where each
    completion's changes are seen by the next: the batch runs under its users' account locks, so
    nothing else changes these rows meanwhile.
    """

    def __init__(self, *, wanted: list[tuple[ScoringItem, list[RuleSpec]]], tz: ZoneInfo):
        # A count rule needs the row of the completion's period; a streak also looks one period
        # back (does the streak go on?) and forward (is the completion late?). Grouped by rule and
        # period, so a batch in one day is a query of two or three terms whatever its size.
        exact: dict[tuple[int, datetime], set[int]] = {}
        onward: dict[tuple[int, datetime], set[int]] = {}
        exclusive: set[tuple[int, int, datetime]] = set()
        cooled: list[tuple[ScoringItem, RuleSpec]] = []
        for item, specs in wanted:
            for spec in specs:
                start, since = _periods(spec, item.occurred_at, tz)
                (onward if spec.kind == STREAK else exact).setdefault((spec.id, since), set()).add(item.user_id)
                if not spec.can_repeat and spec.kind != STREAK:
                    exclusive.add((item.user_id, spec.id, start))
                if spec.cooldown is not None:
                    cooled.append((item, spec))
        self.rows: dict[tuple[int, int, datetime], _Row] = {}
        self.of_rule: dict[tuple[int, int], list[_Row]] = {}  # (user, rule): its rows, for streaks
        for values in _progress_rows(exact, onward):
            self._add(_Row(*values))
        self.created: list[_Row] = []
        self.changed: dict[int, _Row] = {}
        capped = sorted({spec.id for _, specs in wanted for spec in specs if spec.recipient_cap is not None})
        self.recipients: set[tuple[int, int]] = set()
        if capped:
            users = int_list(sorted({item.user_id for item, _ in wanted}))
            self.recipients = set(
                fetch(
                    f"SELECT user_id, rule_id FROM {RuleRecipient._meta.db_table} "  # noqa: S608 - integers only
                    f"WHERE rule_id IN ({int_list(capped)}) AND user_id IN ({users})"
                )
            )
        # (user, rule, period start, business id) counted and not reversed, for can_repeat = false.
        self.objects_seen: set[tuple[int, int, datetime, str]] = set()
        exclusive_rows = {row.pk: row for key in exclusive if (row := self.rows.get(key))}
        if exclusive_rows:
            keys = sorted({item.business_id for item, _ in wanted})
            counted = CountedCompletion.objects.filter(
                score_info_id__in=sorted(exclusive_rows), dedupe_key__in=keys, reversed_at__isnull=True
            ).values_list("score_info_id", "dedupe_key")
            for pk, key in counted:
                row = exclusive_rows[pk]
                self.objects_seen.add((row.user_id, row.rule_id, row.period_start, key))
        # (user, rule, business id or ""): when counted completions happened, for rules with a cooldown.
        self.counted_at = _counted_times(cooled) if cooled else {}

    def _add(self, row: _Row) -> None:
        self.rows[(row.user_id, row.rule_id, row.period_start)] = row
        self.of_rule.setdefault((row.user_id, row.rule_id), []).append(row)

    def progress(self, item: ScoringItem, spec: RuleSpec, tz: ZoneInfo) -> Progress:
        start, since = _periods(spec, item.occurred_at, tz)
        current = self.rows.get((item.user_id, spec.id, start))
        common = {
            "awards": current.awards if current else 0,
            "is_recipient": (item.user_id, spec.id) in self.recipients,
            # The cached count can only be behind the real one, so a "cap reached" it shows is
            # real; every award that takes a place is still decided by the conditional UPDATE.
            "recipients": spec.recipients_count,
        }
        if spec.cooldown is not None:
            times = self.counted_at.get(_cooldown_key(item, spec), ())
            after = bisect_right(times, item.occurred_at)
            common["counted_before"] = times[after - 1] if after else None
            common["counted_after"] = times[after] if after < len(times) else None
        if spec.kind == STREAK:
            counted = [
                row for row in self.of_rule.get((item.user_id, spec.id), ()) if row.streak > 0 and row.period_start >= since
            ]
            latest = max(counted, key=lambda row: row.period_start, default=None)
            return Progress(
                last_period_start=latest.period_start if latest else None, streak=latest.streak if latest else 0, **common
            )
        return Progress(
            count=current.count if current else 0,
            object_seen=(item.user_id, spec.id, start, item.business_id) in self.objects_seen,
            **common,
        )

    def is_late(self, item: ScoringItem, spec: RuleSpec, tz: ZoneInfo) -> bool:
        """Whether `item` sorts before a completion the rule already counted for its user (SPEC §6).

        A count rule's periods are independent, so only the completion's own period is read, and
        with a cooldown the counted completions within a cooldown after it; a streak reads every
        period from the one before the completion's on. A tie in time with a completion counted by
        an earlier batch counts as late (the re-score orders ties by event id); this batch's own
        completions come in (occurred_at, event_id) order and are never late to one another.
        """

        def after(row: _Row | None) -> bool:
            last = row.last_counted_at if row is not None else None
            return last is not None and (last > item.occurred_at or (last == item.occurred_at and not row.in_batch))

        start, since = _periods(spec, item.occurred_at, tz)
        if spec.kind == STREAK:
            return any(row.period_start >= since and after(row) for row in self.of_rule.get((item.user_id, spec.id), ()))
        if after(self.rows.get((item.user_id, spec.id, start))):
            return True
        if spec.cooldown is not None:
            times = self.counted_at.get(_cooldown_key(item, spec), ())
            return bool(times) and times[-1] > item.occurred_at
        return False

    def count_at(self, item: ScoringItem, spec: RuleSpec) -> None:
        """Remember a counted completion of a rule with a cooldown, for the batch's later completions."""
        insort(self.counted_at.setdefault(_cooldown_key(item, spec), []), item.occurred_at)

    def row_for(self, item: ScoringItem, spec: RuleSpec, decision: Decision) -> _Row:
        row = self.rows.get((item.user_id, spec.id, decision.period_start))
        if row is None:
            row = _Row(None, item.user_id, spec.id, decision.period_start, decision.deadline, spec.required)
            self._add(row)
            self.created.append(row)
        elif row.pk is not None:
            self.changed[row.pk] = row
        return row

    def save(self) -> None:
        """Insert the new rows (their ids are then known) and update the changed ones: one statement each."""
        now = timezone.now()
        if self.created:
            ids = rows_insert(
                UserScoreInfo,
                (*PROGRESS_COLUMNS[1:], "created_at", "updated_at"),
                [
                    (
                        r.user_id,
                        r.rule_id,
                        r.period_start,
                        r.deadline,
                        r.required,
                        r.count,
                        r.achieved,
                        r.awards,
                        r.streak,
                        r.last_counted_at,
                        now,
                        now,
                    )
                    for r in self.created
                ],
                returning=("id", "user_id", "achievement_type_id"),
            )
            for row, (pk, user_id, rule_id) in zip(self.created, ids, strict=True):
                if (user_id, rule_id) != (row.user_id, row.rule_id):
                    raise RuntimeError("progress rows came back out of order")
                row.pk = pk
        rows_update(
            UserScoreInfo,
            PROGRESS_UPDATE_COLUMNS,
            [(r.pk, r.count, r.achieved, r.awards, r.streak, r.last_counted_at, now) for r in self.changed.values()],
        )


def capped_rules_lock(*, task_types: Iterable[str]) -> list[int]:
    """Lock, in ascending id order, the rules of `task_types` whose capped places a batch may still take.

    Locks are taken in one global order, accounts by user id and then rules by id (STYLE:
    transactions and locks): without this, `recipient_place_take` locked each rule row when an
    award first needed it, in the batch's event order, and two batches awarding two capped rules
    in opposite orders deadlocked. A rule whose places are gone (as far as this process's cache
    knows, which never runs ahead) is not locked: no place will be taken. Returns the ids locked.
    """
    ids = sorted(
        {
            rule.pk
            for task_type in set(task_types)
            for rule in active_rules_for(task_type=task_type)
            if rule.number_limit_all is not None and rule.recipients_count < rule.number_limit_all
        }
    )
    if ids and connection.features.has_select_for_update:
        list(ScoreRule.all_objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    return ids


def recipient_place_take(*, rule_id: int, user_id: int) -> bool:
    """Claim one of the rule's capped places; False when none is left.

    The conditional UPDATE is the arbiter: it takes the rule row's lock and re-checks the count,
    so concurrent workers can never hand out more than `number_limit_all` places.
    """
    won = ScoreRule.objects.filter(pk=rule_id, recipients_count__lt=F("number_limit_all")).update(
        recipients_count=F("recipients_count") + 1
    )
    if won:
        RuleRecipient.objects.create(rule_id=rule_id, user_id=user_id)
    return bool(won)


@dataclass
class ScoringPlan:
    """What a batch of completions does to progress and the ledger, decided before anything is written."""

    items: list[ScoringItem]
    decisions: list[list[Decision]]  # per item, in rule order
    state: BatchState | None = None
    counted: list = field(default_factory=list)  # (item index, spec, progress row, dedupe key)
    awards: list = field(default_factory=list)  # (item index, spec, progress row, decision)
    # (user id, rule id): the earliest completion the fast path left to a re-score (SPEC §6), with its event id.
    late: dict[tuple[int, int], ScoringItem] = field(default_factory=dict)


class _Specs:
    """The rule specs of a task type for a business id, built once per batch rather than per completion."""

    def __init__(self, items: list[ScoringItem]):
        self.rules = {task_type: active_rules_for(task_type=task_type) for task_type in {item.task_type for item in items}}
        self.amounts = object_points_for_many(
            rules=[rule for rules in self.rules.values() for rule in rules], business_ids={item.business_id for item in items}
        )
        self._built: dict[tuple[str, str], list[RuleSpec]] = {}

    def for_item(self, item: ScoringItem) -> list[RuleSpec]:
        key = (item.task_type, item.business_id)
        specs = self._built.get(key)
        if specs is None:
            specs = self._built[key] = [
                rule_spec(
                    rule,
                    object_points={item.business_id: points} if (points := self.amounts.get((rule.pk, item.business_id))) else {},
                )
                for rule in self.rules[item.task_type]
            ]
        return specs

    def places_gone(self, rule_id: int) -> None:
        """Tell this process's cached rule that its capped places are gone.

        Later completions of non-recipients then stop at the engine instead of trying the UPDATE again.
        """
        for rules in self.rules.values():
            for rule in rules:
                if rule.pk == rule_id:
                    rule.recipients_count = rule.number_limit_all
        self._built.clear()


def completions_plan(*, items: list[ScoringItem], rescored: frozenset[int] = frozenset()) -> ScoringPlan:
    """Decide every active rule for each completion, in order; write only capped places.

    Runs under the account locks of all the items' users, whose completions must come in
    (occurred_at, event_id) order. Each completion sees the progress left by the ones before it;
    `scoring_plan_write` stores the progress once the completion rows exist. A completion that is
    late for a rule (`BatchState.is_late`), and every later one of its user and rule in the batch,
    is left out of the plan and named in `plan.late`, as are the items whose index is in
    `rescored` for all their rules: the caller re-scores those users and rules once the
    completions are recorded (`apps.rules.services.rescore`).
    """
    tz = site_timezone()
    specs = _Specs(items)
    wanted = [(item, specs.for_item(item)) for item in items]
    plan = ScoringPlan(items=items, decisions=[])
    if not any(item_specs for _, item_specs in wanted):
        plan.decisions = [[] for _ in items]
        return plan
    plan.state = state = BatchState(wanted=wanted, tz=tz)
    debug = logger.isEnabledFor(logging.DEBUG)
    for index, item in enumerate(items):
        decisions = []
        completion = Completion(occurred_at=item.occurred_at, business_id=item.business_id)
        for spec in specs.for_item(item):
            key = (item.user_id, spec.id)
            if key in plan.late or index in rescored or state.is_late(item, spec, tz):
                plan.late.setdefault(key, item)
                continue
            decision = evaluate(spec, completion, state.progress(item, spec, tz), tz)
            if decision.takes_recipient_place:
                if recipient_place_take(rule_id=spec.id, user_id=item.user_id):
                    state.recipients.add((item.user_id, spec.id))
                else:
                    decision = decision.capped()
                    specs.places_gone(spec.id)
            plan_keep(plan, index, spec, decision)
            if debug:
                logger.debug("event %s user %s rule %s: %s", item.event_id, item.user_id, spec.code, decision.reason)
            decisions.append(decision)
        plan.decisions.append(decisions)
    return plan


def plan_keep(plan: ScoringPlan, index: int, spec: RuleSpec, decision: Decision) -> None:
    """Keep what one decision on the plan's completion `index` does: its progress row, counted completion, award."""
    if not decision.counted:
        return
    item, state = plan.items[index], plan.state
    row = state.row_for(item, spec, decision)
    if spec.kind == STREAK:
        row.streak = decision.progress
    row.count = decision.progress
    row.achieved = row.achieved or decision.progress >= spec.required
    row.last_counted_at, row.in_batch = item.occurred_at, True
    exclusive = not spec.can_repeat and spec.kind != STREAK
    if exclusive:
        state.objects_seen.add((item.user_id, spec.id, row.period_start, item.business_id))
    if spec.cooldown is not None:
        state.count_at(item, spec)
    plan.counted.append((index, spec, row, item.business_id if exclusive else None))
    if decision.awarded:
        row.awards += 1
        plan.awards.append((index, spec, row, decision))


# The columns written for each counted completion (the benches build their SQL from the same list).
COUNTED_COLUMNS = ("rule_id", "score_info_id", "completion_id", "dedupe_key", "created_at")
# Written only for rules with a cooldown; a batch without one sends the statement it always did.
_COOLDOWN_COLUMNS = ("user_id", "occurred_at", "business_id")


def _cooldown_values(item: ScoringItem, spec: RuleSpec) -> tuple:
    return (item.user_id, item.occurred_at, item.business_id) if spec.cooldown is not None else (None, None, None)


def scoring_plan_write(*, plan: ScoringPlan, completion_ids: list[int], accounts: dict[int, Account]) -> None:
    """Store a plan's progress rows, counted completions and ledger entries: one statement per table.

    `completion_ids` are the ids of the plan's completion rows, in item order; `accounts` holds
    every item's user's account, locked in this transaction.
    """
    if plan.state is None:
        return
    plan.state.save()
    now = timezone.now()
    if not any(spec.cooldown is not None for _, spec, _, _ in plan.counted):
        rows_insert(
            CountedCompletion,
            COUNTED_COLUMNS,
            [(spec.id, row.pk, completion_ids[index], key, now) for index, spec, row, key in plan.counted],
        )
    else:
        rows_insert(
            CountedCompletion,
            (*COUNTED_COLUMNS, *_COOLDOWN_COLUMNS),
            [
                (spec.id, row.pk, completion_ids[index], key, now, *_cooldown_values(plan.items[index], spec))
                for index, spec, row, key in plan.counted
            ],
        )
    postings: dict[int, list[EntrySpec]] = {}
    granted: list[Granted] = []
    for index, spec, row, decision in plan.awards:
        item = plan.items[index]
        if spec.badge_id is not None:
            granted.append(Granted(item.user_id, spec.badge_id, spec.id, completion_ids[index], item.occurred_at))
        if not decision.points:  # a rule that grants only its badge
            continue
        postings.setdefault(item.user_id, []).append(
            EntrySpec(
                amount=decision.points,
                kind=ScoreRecord.Kind.AWARD,
                idempotency_key=f"award:{item.event_id}:{spec.id}",
                business_type=spec.code,
                rule_id=spec.id,
                completion_id=completion_ids[index],
                score_info_id=row.pk,
                meta=item.meta,
                earned_at=item.occurred_at,
                point_type_id=spec.point_type_id,
            )
        )
    ledger_post_batch(postings=[(accounts[user_id], entries) for user_id, entries in sorted(postings.items())])
    badges_grant(granted=granted, now=now)

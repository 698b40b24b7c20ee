"""Re-scoring one user and rule from a period on: the ledger converges to the time-ordered replay (SPEC §6).

A late completion (one that sorts before completions the rule already counted for its user) and a
reversal (which changes the user's live completions) do not take the fast path of
`apps.rules.services.scoring`. Once the batch's completions are recorded, `completions_rescore`
replays the user's live completions of the rule's task in (occurred_at, event_id) order with the
engine (`apps.rules.replay.Replay`), starting from the period of the earliest change with the
state the periods before it left, and then makes the database agree with the replay:

- ledger: an award the replay no longer makes (or makes with another amount) gets a reversal
  entry that points to it; an award it makes that has no live entry is posted anew. Entries are
  never changed, and what is already right is left alone, so re-scoring twice posts nothing;
- progress rows, counted completions and the completions' recorded decisions ("why no points?")
  are rewritten to the replay's, each decision that changed marked as re-scored, with its cause.

Everything runs in the caller's transaction under the user's account lock. Recipient places of a
capped rule are first come, first served in processing order and kept once won (§4): the replay
takes a free place through the same conditional UPDATE as the fast path and never gives one back.
"""

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from django.db.models import Max
from django.utils import timezone

from apps.core import metrics
from apps.core.clock import local_date
from apps.core.multirow import rows_insert, rows_update
from apps.core.periods import period_bounds, site_timezone
from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services.entries import EntryMeta, EntrySpec, ledger_post_batch
from apps.rules.engine import STREAK, Decision, Reason
from apps.rules.models import CountedCompletion, RuleRecipient, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.rules.replay import Replay
from apps.rules.selectors.rules import rule_spec
from apps.rules.services.badges import badges_settle
from apps.rules.services.scoring import COUNTED_COLUMNS, PROGRESS_COLUMNS, PROGRESS_UPDATE_COLUMNS, recipient_place_take
from apps.tasks.models import UserTaskRecord

logger = logging.getLogger(__name__)


class Cause(StrEnum):
    """Why a user and rule were re-scored."""

    LATE = "late"  # a completion arrived after later ones had been counted
    REVERSAL = "reversal"  # a reversal undid a completion, or a late completion changed what one undoes


@dataclass(frozen=True)
class Rescore:
    """What to re-score: one user and rule, from the period holding `since`; `event_at` is when the causing event occurred."""

    user_id: int
    rule_id: int
    since: datetime
    cause: Cause
    event_at: datetime
    completion_id: int | None = None  # the completion that caused it (set on the reversal entries it posts)


@dataclass
class RescoreResult:
    replayed: int = 0  # live completions replayed
    awarded: int = 0  # award entries posted
    reversed: int = 0  # reversal entries posted
    points: int = 0  # net points posted
    decisions_changed: int = 0


def _reversed_record(rule: ScoreRule) -> dict:
    return {
        "rule": rule.score_type,
        "rule_id": rule.pk,
        "counted": False,
        "reason": str(Reason.REVERSED),
        "progress": 0,
        "points": 0,
    }


def _same(old: dict | None, new: dict) -> bool:
    """Whether a recorded decision says what `new` says (the re-score mark aside)."""
    if old is None:
        return False
    return {k: v for k, v in old.items() if k != "rescored"} == new


def completions_rescore(*, account: Account, rule: ScoreRule, job: Rescore) -> RescoreResult:
    """Make `rule`'s progress, counted completions, decisions and ledger entries for `job.user_id`
    from the period of `job.since` on equal to the time-ordered replay of the user's live completions.

    `account` is the user's account, locked in the current transaction. A rule that is not active
    (retired since) replays only the completions it decided while it was.
    """
    tz = site_timezone()
    user_id = account.user_id
    start = period_bounds(rule.statistical_period, job.since, tz)[0]
    result = RescoreResult()

    records = list(
        UserTaskRecord.objects.filter(
            user_id=user_id, task__task_type=rule.task_type, occurred_at__gte=start, deleted_at__isnull=True
        )
        .order_by("occurred_at", "event_id")
        .values_list(
            "pk", "event_id", "occurred_at", "business_id", "reversed_at", "decisions", "location", "country", "lang_type"
        )
    )
    if rule.status != ScoreRule.Status.ACTIVE:
        records = [r for r in records if any(d.get("rule_id") == rule.pk for d in r[5])]
    live = [r for r in records if r[4] is None]

    amounts = dict(
        ScoreRuleObjectPoints.objects.filter(rule=rule, business_id__in={r[3] for r in live}).values_list("business_id", "points")
    )
    spec = rule_spec(rule, object_points=amounts)
    is_recipient = RuleRecipient.objects.filter(rule=rule, user_id=user_id).exists()
    replay = Replay(spec, tz, recipients=rule.recipients_count, recipient_ids={user_id} if is_recipient else set())
    _seed(replay, rule, user_id, start)

    # The replay, with recipient places taken for real.
    decisions: dict[int, Decision] = {}
    for pk, _event, occurred_at, business_id, *_rest in live:
        decision = replay.decide(user_id, occurred_at, business_id)
        if decision.takes_recipient_place:
            if recipient_place_take(rule_id=rule.pk, user_id=user_id):
                replay.recipient_ids.add(user_id)
            else:
                decision = decision.capped()
        replay.apply(user_id, occurred_at, business_id, decision)
        decisions[pk] = decision
    result.replayed = len(live)

    rows = _rows_write(rule, user_id, start, live, decisions)
    _counted_write(rule, user_id, records, live, decisions, rows)
    _entries_write(account, rule, job, records, decisions, rows, result)
    badges_settle(
        user_id=user_id,
        rule=rule,
        completion_ids=[r[0] for r in records],
        awarded={r[0]: r[2] for r in live if decisions[r[0]].awarded},
        now=timezone.now(),
    )
    _decisions_write(rule, job, records, decisions, result)
    # Once per user and rule re-scored, when it commits (a batch that rolls back re-scored nothing).
    metrics.after_commit(metrics.EVENTS_RESCORED.labels(cause=str(job.cause)).inc)
    logger.info(
        "user %s rule %s re-scored from %s (%s of %s): %d completions, %d awards, %d reversals, %+d points",
        user_id,
        rule.score_type,
        local_date(start),
        job.cause,
        job.event_at.isoformat(),
        result.replayed,
        result.awarded,
        result.reversed,
        result.points,
        extra={"user_id": user_id, "rule": rule.score_type},
    )
    return result


def _seed(replay: Replay, rule: ScoreRule, user_id: int, start: datetime) -> None:
    """Give the replay what the periods before `start` left: the streak leading into it, and for a
    cooldown the counted completions close enough before it to block one after."""
    streak_start, streak = None, 0
    if rule.kind == STREAK:
        before = (
            UserScoreInfo.objects.filter(
                user_id=user_id, achievement_type=rule, period_start__lt=start, streak_length__gt=0, deleted_at__isnull=True
            )
            .order_by("-period_start")
            .values_list("period_start", "streak_length")
            .first()
        )
        if before:
            streak_start, streak = before
    last_counted = {}
    if rule.cooldown is not None:
        per_object = rule.cooldown_scope == ScoreRule.CooldownScope.OBJECT
        near = (
            CountedCompletion.objects.filter(
                rule=rule,
                user_id=user_id,
                occurred_at__gt=start - rule.cooldown,
                occurred_at__lt=start,
                reversed_at__isnull=True,
            )
            .values("business_id")
            .annotate(last=Max("occurred_at"))
        )
        for row in near:
            key = (user_id, row["business_id"] or "") if per_object else user_id
            last_counted[key] = max(last_counted.get(key, row["last"]), row["last"])
    replay.seed(user_id, streak_start=streak_start, streak=streak, last_counted=last_counted)


@dataclass
class _Period:
    pk: int | None
    deadline: datetime | None
    count: int = 0
    achieved: bool = False
    awards: int = 0
    streak: int = 0
    last_counted_at: datetime | None = None


def _rows_write(
    rule: ScoreRule, user_id: int, start: datetime, live: list, decisions: dict[int, Decision]
) -> dict[datetime, int]:
    """Store the replay's progress per period from `start` on; return {period start: row id}."""
    wanted: dict[datetime, _Period] = {}
    for pk, _event, occurred_at, *_rest in live:
        decision = decisions[pk]
        if not decision.counted:
            continue
        period = wanted.setdefault(decision.period_start, _Period(None, decision.deadline))
        period.count = decision.progress
        if rule.kind == STREAK:
            period.streak = decision.progress
        period.achieved = period.achieved or decision.progress >= rule.required_number_of_times
        period.awards += decision.awarded
        period.last_counted_at = occurred_at
    existing = {
        _aware(row[1]): row
        for row in UserScoreInfo.objects.filter(
            user_id=user_id, achievement_type=rule, period_start__gte=start, deleted_at__isnull=True
        ).values_list(
            "pk", "period_start", "achievement_amount_now", "achieved", "awards_in_period", "streak_length", "last_counted_at"
        )
    }
    now = timezone.now()
    changed, ids = [], {}
    for period_start, (pk, _start, count, achieved, awards, streak, last) in existing.items():
        period = wanted.get(period_start) or _Period(pk, None)
        ids[period_start] = pk
        values = (period.count, period.achieved, period.awards, period.streak, period.last_counted_at)
        if values != (count, achieved, awards, streak, last):
            changed.append((pk, *values, now))
    rows_update(UserScoreInfo, PROGRESS_UPDATE_COLUMNS, changed)
    created = [(period_start, period) for period_start, period in wanted.items() if period_start not in existing]
    if created:
        returned = rows_insert(
            UserScoreInfo,
            (*PROGRESS_COLUMNS[1:], "created_at", "updated_at"),
            [
                (
                    user_id,
                    rule.pk,
                    period_start,
                    p.deadline,
                    rule.required_number_of_times,
                    p.count,
                    p.achieved,
                    p.awards,
                    p.streak,
                    p.last_counted_at,
                    now,
                    now,
                )
                for period_start, p in created
            ],
            returning=("id",),
        )
        for (period_start, _period), (pk,) in zip(created, returned, strict=True):
            ids[period_start] = pk
    return ids


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _counted_write(rule: ScoreRule, user_id: int, records: list, live: list, decisions: dict, rows: dict) -> None:
    """Counted completions from `start` on: those the replay counts, in their period's row, and no others."""
    exclusive = not rule.can_repeat and rule.kind != STREAK
    wanted = {
        pk: (rows[decisions[pk].period_start], business_id if exclusive else None, occurred_at, business_id)
        for pk, _event, occurred_at, business_id, *_rest in live
        if decisions[pk].counted
    }
    existing = CountedCompletion.objects.filter(rule=rule, completion_id__in=[r[0] for r in records]).values_list(
        "pk", "completion_id", "score_info_id", "dedupe_key", "reversed_at"
    )
    stale, kept = [], set()
    for pk, completion_id, score_info_id, dedupe_key, reversed_at in existing:
        want = wanted.get(completion_id)
        if want is not None and reversed_at is None and (score_info_id, dedupe_key) == want[:2]:
            kept.add(completion_id)
        else:
            stale.append(pk)
    if stale:
        CountedCompletion.objects.filter(pk__in=stale).delete()
    now = timezone.now()
    cooled = rule.cooldown is not None
    new = [
        (rule.pk, row_id, pk, key, now, *((user_id, occurred_at, business_id) if cooled else (None, None, None)))
        for pk, (row_id, key, occurred_at, business_id) in wanted.items()
        if pk not in kept
    ]
    rows_insert(CountedCompletion, (*COUNTED_COLUMNS, "user_id", "occurred_at", "business_id"), new)


def _entries_write(account: Account, rule: ScoreRule, job: Rescore, records: list, decisions: dict, rows: dict, result) -> None:
    """Post the difference between the replay's awards and the live award entries, as awards and reversals."""
    by_pk = {r[0]: r for r in records}
    awards = list(
        ScoreRecord.objects.filter(
            user_id=account.user_id, rule_id=rule.pk, kind=ScoreRecord.Kind.AWARD, completion_id__in=list(by_pk)
        ).values_list("pk", "completion_id", "trade_amount", "score_info_id")
    )
    undone = set(
        ScoreRecord.objects.filter(
            user_id=account.user_id, kind=ScoreRecord.Kind.REVERSAL, reverses_id__in=[a[0] for a in awards]
        ).values_list("reverses_id", flat=True)
    )
    posted = Counter(completion_id for _, completion_id, _, _ in awards)
    live_awards = {completion_id: (pk, amount, row) for pk, completion_id, amount, row in awards if pk not in undone}
    cause_meta = EntryMeta()
    entries: list[EntrySpec] = []
    for pk, event_id, occurred_at, _business_id, _reversed, _decisions, *where in records:
        decision = decisions.get(pk)
        due = decision.points if decision is not None and decision.awarded else 0
        have = live_awards.get(pk)
        if have is not None and have[1] == due:
            continue
        if have is not None:
            entries.append(
                EntrySpec(
                    amount=-have[1],
                    kind=ScoreRecord.Kind.REVERSAL,
                    idempotency_key=f"reversal:{have[0]}",
                    business_type=rule.score_type,
                    rule_id=rule.pk,
                    completion_id=job.completion_id or pk,
                    score_info_id=have[2],
                    reverses_id=have[0],
                    meta=cause_meta,
                    earned_at=occurred_at,
                    point_type_id=rule.point_type_id,
                )
            )
            result.reversed += 1
            result.points -= have[1]
        if due:
            again = posted[pk]
            entries.append(
                EntrySpec(
                    amount=due,
                    kind=ScoreRecord.Kind.AWARD,
                    idempotency_key=f"award:{event_id}:{rule.pk}" + (f":{again + 1}" if again else ""),
                    business_type=rule.score_type,
                    rule_id=rule.pk,
                    completion_id=pk,
                    score_info_id=rows[decision.period_start],
                    meta=EntryMeta(*where),
                    earned_at=occurred_at,
                    point_type_id=rule.point_type_id,
                )
            )
            result.awarded += 1
            result.points += due
    if entries:
        ledger_post_batch(postings=[(account, entries)])


def _decisions_write(rule: ScoreRule, job: Rescore, records: list, decisions: dict, result) -> None:
    """Rewrite this rule's recorded decision on each completion where the replay decided otherwise."""
    mark = {"cause": str(job.cause), "event_at": job.event_at.astimezone(UTC).isoformat()}
    now = timezone.now()
    changed = []
    for pk, _event, _at, _business_id, _reversed_at, recorded, *_where in records:
        decision = decisions.get(pk)
        new = _reversed_record(rule) if decision is None else decision.as_record()
        old = next((d for d in recorded if d.get("rule_id") == rule.pk), None)
        if _same(old, new):
            continue
        updated = [d for d in recorded if d.get("rule_id") != rule.pk] + [{**new, "rescored": mark}]
        changed.append((pk, updated, now))
    rows_update(UserTaskRecord, ("decisions", "updated_at"), changed)
    result.decisions_changed = len(changed)

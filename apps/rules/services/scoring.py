"""Applying the engine's decisions: progress rows, counted completions, recipients, awards."""

import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services import EntryMeta, EntrySpec, ledger_post_entries, ledger_post_entry
from apps.rules.engine import STREAK, Completion, Decision, Progress, RuleSpec, evaluate
from apps.rules.models import CountedCompletion, RuleRecipient, ScoreRule, UserScoreInfo
from apps.rules.periods import period_bounds, previous_period_start
from apps.rules.selectors import active_rules_for, object_points_for, rule_spec
from apps.tasks.models import UserTaskRecord

logger = logging.getLogger(__name__)


def site_timezone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


class _UserRuleState:
    """One user's progress rows for a set of rules, read in one query and written back in bulk.

    Runs under the user's account lock, so nothing else changes these rows meanwhile.
    """

    def __init__(self, *, user_id: int, specs: list[RuleSpec], completion: Completion, tz: ZoneInfo):
        self.user_id = user_id
        self.tz = tz
        self.starts = {spec.id: period_bounds(spec.period, completion.occurred_at, tz)[0] for spec in specs}
        # A count rule needs the row of the event's period; a streak also looks one period back
        # (does the streak go on?) and forward (is the event late?).
        wanted = Q()
        for spec in specs:
            if spec.kind == STREAK:
                since = previous_period_start(spec.period, self.starts[spec.id], tz)
                wanted |= Q(achievement_type_id=spec.id, period_start__gte=since)
            else:
                wanted |= Q(achievement_type_id=spec.id, period_start=self.starts[spec.id])
        rows = UserScoreInfo.objects.filter(wanted, user_id=user_id)
        self.rows = {(row.achievement_type_id, row.period_start): row for row in rows}
        self.created: list[UserScoreInfo] = []
        self.changed: dict[int, UserScoreInfo] = {}
        capped = [spec.id for spec in specs if spec.recipient_cap is not None]
        self.recipient_of = set(
            RuleRecipient.objects.filter(user_id=user_id, rule_id__in=capped).values_list("rule_id", flat=True) if capped else ()
        )
        exclusive = [
            self.rows[(spec.id, self.starts[spec.id])].pk
            for spec in specs
            if not spec.can_repeat and spec.kind != STREAK and (spec.id, self.starts[spec.id]) in self.rows
        ]
        self.seen_in = set(
            CountedCompletion.objects.filter(
                score_info_id__in=exclusive, dedupe_key=completion.business_id, reversed_at__isnull=True
            ).values_list("score_info_id", flat=True)
            if exclusive
            else ()
        )

    def progress(self, spec: RuleSpec) -> Progress:
        current = self.rows.get((spec.id, self.starts[spec.id]))
        common = {
            "awards": current.awards_in_period if current else 0,
            "is_recipient": spec.id in self.recipient_of,
            # The cached count can only be behind the real one, so a "cap reached" it shows is
            # real; every award that takes a place is still decided by the conditional UPDATE.
            "recipients": spec.recipients_count,
        }
        if spec.kind == STREAK:
            counted = [row for (rule_id, _), row in self.rows.items() if rule_id == spec.id and row.streak_length > 0]
            latest = max(counted, key=lambda row: row.period_start, default=None)
            return Progress(
                last_period_start=latest.period_start if latest else None, streak=latest.streak_length if latest else 0, **common
            )
        return Progress(
            count=current.achievement_amount_now if current else 0,
            object_seen=current is not None and current.pk in self.seen_in,
            **common,
        )

    def row_for(self, spec: RuleSpec, decision: Decision) -> UserScoreInfo:
        key = (spec.id, decision.period_start)
        row = self.rows.get(key)
        if row is None:
            row = UserScoreInfo(
                user_id=self.user_id,
                achievement_type_id=spec.id,
                period_start=decision.period_start,
                deadline=decision.deadline,
                required_number=spec.required,
            )
            self.rows[key] = row
            self.created.append(row)
        elif row.pk is not None:
            self.changed[row.pk] = row
        return row

    def save(self) -> None:
        if self.created:
            UserScoreInfo.objects.bulk_create(self.created)
        if self.changed:
            # One prepared UPDATE run for every changed row: bulk_update's CASE expressions cost
            # far more Python per row than the database spends on the rows.
            now = timezone.now()
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE {UserScoreInfo._meta.db_table} SET achievement_amount_now = %s, achieved = %s, "  # noqa: S608
                    "awards_in_period = %s, streak_length = %s, updated_at = %s WHERE id = %s",
                    [
                        (row.achievement_amount_now, row.achieved, row.awards_in_period, row.streak_length, now, row.pk)
                        for row in self.changed.values()
                    ],
                )


def _take_recipient_place(*, rule_id: int, user_id: int) -> bool:
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
    """What a completion does to a user's progress and ledger, decided before anything is written."""

    decisions: list[Decision]
    state: "_UserRuleState | None" = None
    counted: list = field(default_factory=list)  # (spec, progress row, dedupe key)
    awards: list = field(default_factory=list)  # (spec, progress row, decision)


def completion_plan(*, task_type: str, user_id: int, event_id, occurred_at, business_id: str) -> ScoringPlan:
    """Decide every active rule of `task_type` for one completion; write only capped places.

    Runs under the user's account lock. Progress rows change in memory; `scoring_plan_write`
    stores them once the completion row exists.
    """
    rules = active_rules_for(task_type=task_type)
    if not rules:
        return ScoringPlan(decisions=[])
    tz = site_timezone()
    amounts = object_points_for(rules=rules, business_id=business_id)
    specs = [rule_spec(rule, object_points={business_id: amounts[rule.pk]} if rule.pk in amounts else {}) for rule in rules]
    completion = Completion(occurred_at=occurred_at, business_id=business_id)
    plan = ScoringPlan(decisions=[], state=_UserRuleState(user_id=user_id, specs=specs, completion=completion, tz=tz))
    for spec in specs:
        decision = evaluate(spec, completion, plan.state.progress(spec), tz)
        if decision.takes_recipient_place and not _take_recipient_place(rule_id=spec.id, user_id=user_id):
            decision = decision.capped()
            # Tell this process's cached rule that the places are gone, so later events of
            # non-recipients stop at the engine instead of trying the UPDATE again.
            next(rule for rule in rules if rule.pk == spec.id).recipients_count = spec.recipient_cap
        if decision.counted:
            row = plan.state.row_for(spec, decision)
            if spec.kind == STREAK:
                row.streak_length = decision.progress
            row.achievement_amount_now = decision.progress
            row.achieved = row.achieved or decision.progress >= spec.required
            row.awards_in_period += 1 if decision.awarded else 0
            exclusive = not spec.can_repeat and spec.kind != STREAK
            plan.counted.append((spec, row, business_id if exclusive else None))
            if decision.awarded:
                plan.awards.append((spec, row, decision))
        logger.debug("event %s user %s rule %s: %s", event_id, user_id, spec.code, decision.reason)
        plan.decisions.append(decision)
    return plan


def scoring_plan_write(*, plan: ScoringPlan, record: UserTaskRecord, account: Account, meta: EntryMeta) -> None:
    """Store a plan's progress rows, counted completions and ledger entries: one statement each."""
    if plan.state is None:
        return
    plan.state.save()
    CountedCompletion.objects.bulk_create(
        CountedCompletion(rule_id=spec.id, score_info=row, completion=record, dedupe_key=key) for spec, row, key in plan.counted
    )
    ledger_post_entries(
        account=account,
        entries=[
            EntrySpec(
                amount=decision.points,
                kind=ScoreRecord.Kind.AWARD,
                idempotency_key=f"award:{record.event_id}:{spec.id}",
                business_type=spec.code,
                rule_id=spec.id,
                completion_id=record.pk,
                score_info_id=row.pk,
                meta=meta,
            )
            for spec, row, decision in plan.awards
        ],
    )


def completion_evaluate(*, record: UserTaskRecord, account: Account, meta: EntryMeta) -> list[Decision]:
    """Run every active rule of the completion's task over it and apply the decisions.

    Must run inside the transaction that holds `account`'s lock and created `record`; returns
    the decisions in rule order.
    """
    plan = completion_plan(
        task_type=record.task.task_type,
        user_id=record.user_id,
        event_id=record.event_id,
        occurred_at=record.occurred_at,
        business_id=record.business_id,
    )
    scoring_plan_write(plan=plan, record=record, account=account, meta=meta)
    return plan.decisions


def completion_reverse(*, record: UserTaskRecord, account: Account, meta: EntryMeta) -> UserTaskRecord | None:
    """Undo the user's latest unreversed completion that `record` reverses (SPEC §6).

    The undone completion stops counting: count progress goes down by one in its period (and
    its business id is free again), each award it triggered gets a compensating entry and stops
    counting toward the period's award limit. Streaks and recipient places stand. Returns the
    undone completion, or None when there was nothing to undo.
    """
    target = (
        UserTaskRecord.objects.filter(
            user_id=record.user_id,
            task__task_type=record.task.reverses,
            business_id=record.business_id,
            reversed_at__isnull=True,
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    if target is None:
        return None
    now = timezone.now()
    target.reversed_at = now
    target.reversed_by = record
    target.save(update_fields=["reversed_at", "reversed_by", "updated_at"])
    for counted in CountedCompletion.objects.filter(completion=target, reversed_at__isnull=True).select_related("rule"):
        if counted.rule.kind != STREAK:
            UserScoreInfo.objects.filter(pk=counted.score_info_id, achievement_amount_now__gt=0).update(
                achievement_amount_now=F("achievement_amount_now") - 1
            )
        counted.reversed_at = now
        counted.save(update_fields=["reversed_at"])
    for award in ScoreRecord.objects.filter(completion=target, kind=ScoreRecord.Kind.AWARD).order_by("id"):
        if award.score_info_id:
            UserScoreInfo.objects.filter(pk=award.score_info_id, awards_in_period__gt=0).update(
                awards_in_period=F("awards_in_period") - 1
            )
        ledger_post_entry(
            account=account,
            amount=-award.trade_amount,
            kind=ScoreRecord.Kind.REVERSAL,
            idempotency_key=f"reversal:{award.pk}",
            business_type=award.business_type,
            rule_id=award.rule_id,
            completion_id=record.pk,
            score_info_id=award.score_info_id,
            reverses_id=award.pk,
            meta=meta,
        )
    return target

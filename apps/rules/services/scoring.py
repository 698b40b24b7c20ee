"""Applying the engine's decisions: progress rows, counted completions, recipients, awards."""

import logging
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services import EntryMeta, ledger_post_entry
from apps.rules.engine import STREAK, Completion, Decision, Progress, RuleSpec, evaluate
from apps.rules.models import CountedCompletion, RuleRecipient, ScoreRule, UserScoreInfo
from apps.rules.periods import period_bounds
from apps.rules.selectors import active_rules_for, object_points_for, rule_spec
from apps.tasks.models import UserTaskRecord

logger = logging.getLogger(__name__)


def site_timezone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _progress_for(*, spec: RuleSpec, user_id: int, completion: Completion, tz: ZoneInfo) -> Progress:
    """Read what the engine needs about this user and rule. Runs under the user's account lock."""
    start, _ = period_bounds(spec.period, completion.occurred_at, tz)
    infos = UserScoreInfo.objects.filter(user_id=user_id, achievement_type_id=spec.id)
    current = infos.filter(period_start=start).first()
    recipient = spec.recipient_cap is not None and RuleRecipient.objects.filter(rule_id=spec.id, user_id=user_id).exists()
    recipients = 0
    if spec.recipient_cap is not None:
        recipients = ScoreRule.objects.filter(pk=spec.id).values_list("recipients_count", flat=True).get()
    if spec.kind == STREAK:
        latest = infos.filter(streak_length__gt=0).order_by("-period_start").first()
        return Progress(
            awards=current.awards_in_period if current else 0,
            last_period_start=latest.period_start if latest else None,
            streak=latest.streak_length if latest else 0,
            is_recipient=recipient,
            recipients=recipients,
        )
    seen = (
        not spec.can_repeat
        and current is not None
        and CountedCompletion.objects.filter(
            score_info=current, dedupe_key=completion.business_id, reversed_at__isnull=True
        ).exists()
    )
    return Progress(
        count=current.achievement_amount_now if current else 0,
        awards=current.awards_in_period if current else 0,
        object_seen=seen,
        is_recipient=recipient,
        recipients=recipients,
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


def _apply(*, decision: Decision, spec: RuleSpec, record: UserTaskRecord, account: Account, meta: EntryMeta) -> Decision:
    if decision.takes_recipient_place and not _take_recipient_place(rule_id=spec.id, user_id=record.user_id):
        decision = decision.capped()
    info, _ = UserScoreInfo.objects.get_or_create(
        user_id=record.user_id,
        achievement_type_id=spec.id,
        period_start=decision.period_start,
        defaults={"deadline": decision.deadline, "required_number": spec.required},
    )
    if spec.kind == STREAK:
        info.streak_length = decision.progress
    info.achievement_amount_now = decision.progress
    info.achieved = info.achieved or decision.progress >= spec.required
    CountedCompletion.objects.create(
        rule_id=spec.id,
        score_info=info,
        completion=record,
        dedupe_key=None if spec.can_repeat or spec.kind == STREAK else record.business_id,
    )
    if decision.awarded:
        info.awards_in_period += 1
        ledger_post_entry(
            account=account,
            amount=decision.points,
            kind=ScoreRecord.Kind.AWARD,
            idempotency_key=f"award:{record.event_id}:{spec.id}",
            business_type=spec.code,
            rule_id=spec.id,
            completion_id=record.pk,
            score_info_id=info.pk,
            meta=meta,
        )
    info.save()
    return decision


def completion_evaluate(*, record: UserTaskRecord, account: Account, meta: EntryMeta) -> list[Decision]:
    """Run every active rule of the completion's task over it and apply the decisions.

    Must run inside the transaction that holds `account`'s lock and created `record`; returns
    the decisions in rule order.
    """
    tz = site_timezone()
    rules = active_rules_for(task_type=record.task.task_type)
    amounts = object_points_for(rules=rules, business_id=record.business_id)
    completion = Completion(occurred_at=record.occurred_at, business_id=record.business_id)
    decisions = []
    for rule in rules:
        points = {record.business_id: amounts[rule.pk]} if rule.pk in amounts else {}
        spec = rule_spec(rule, object_points=points)
        decision = evaluate(spec, completion, _progress_for(spec=spec, user_id=record.user_id, completion=completion, tz=tz), tz)
        if decision.counted:
            decision = _apply(decision=decision, spec=spec, record=record, account=account, meta=meta)
        logger.debug("event %s user %s rule %s: %s", record.event_id, record.user_id, spec.code, decision.reason)
        decisions.append(decision)
    return decisions


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

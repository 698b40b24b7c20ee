"""Reads for the rule engine and for the pages that show progress."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.periods import NONE, period_bounds, previous_period_start
from apps.core.stamped_cache import StampedCache
from apps.ledger.models import ScoreRecord
from apps.rules.engine import RuleSpec
from apps.rules.models import BackfillRun, RuleRecipient, ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.rules.progress_text import ProgressFacts, progress_percent, progress_summary


class ActiveRules:
    """The active rules of each task type, loaded the first time a worker meets that task type.

    A rule whose backfill is queued or running is left out: the backfill decides the rule's
    completions, the live ones too, in the order they happened (see apps/rules/services/backfill.py).

    Only the event's task type is ever read (P4: the cost of an event does not grow with the
    rules of other tasks, nor does a change to any rule make a worker load them all).
    """

    def __init__(self) -> None:
        self._by_task_type: dict[str, tuple[tuple[ScoreRule, ...], frozenset[int]]] = {}

    def of(self, task_type: str) -> tuple[tuple[ScoreRule, ...], frozenset[int]]:
        """(the task type's active rules by id, the ids of those with per-object amounts): two queries, once."""
        found = self._by_task_type.get(task_type)
        if found is None:
            rules = tuple(
                ScoreRule.objects.filter(status=ScoreRule.Status.ACTIVE, task_type=task_type)
                .exclude(backfills__status__in=BackfillRun.OPEN)
                .order_by("id")
            )
            with_points = ScoreRuleObjectPoints.objects.filter(rule__in=[rule.pk for rule in rules]) if rules else None
            ids = frozenset(with_points.values_list("rule_id", flat=True).distinct()) if with_points is not None else frozenset()
            # A race between two threads loads the same rows twice; either result is right.
            found = self._by_task_type[task_type] = (rules, ids)
        return found


def _backfills_stamp() -> tuple:
    """Moves whenever a backfill run is queued, or stops running (done, failed or deleted): one query on a small table."""
    runs = BackfillRun.objects.aggregate(
        newest=Max("id"), finished=Max("finished_at"), open=Count("id", filter=Q(status__in=BackfillRun.OPEN))
    )
    return tuple(runs.values())


# Workers look rules up per event; the cache makes that a dict lookup, whatever the number of
# rules in the system (P4). A change to any rule, or to a backfill run's status, starts a new,
# empty cache, within JIFEN_RULES_REFRESH_S in every worker.
_active_rules = StampedCache(ScoreRule, ActiveRules, lambda: settings.JIFEN_RULES_REFRESH_S, also=_backfills_stamp)


def active_rules_for(*, task_type: str) -> tuple[ScoreRule, ...]:
    """Active rules of one task type, in the fixed order in which they are evaluated (by id)."""
    return _active_rules.get().of(task_type)[0]


def active_rules_clear() -> None:
    _active_rules.clear()


def object_points_for_many(*, rules: Iterable[ScoreRule], business_ids: Iterable[str]) -> dict[tuple[int, str], int]:
    """{(rule id, business id): points} for the rules that give one of `business_ids` its own amount.

    No query unless one of `rules` has per-object amounts at all.
    """
    active = _active_rules.get()
    with_points = sorted({rule.pk for rule in rules if rule.pk in active.of(rule.task_type)[1]})
    if not with_points:
        return {}
    rows = ScoreRuleObjectPoints.objects.filter(rule_id__in=with_points, business_id__in=sorted(set(business_ids)))
    return {
        (rule_id, business_id): points for rule_id, business_id, points in rows.values_list("rule_id", "business_id", "points")
    }


def rule_spec(rule: ScoreRule, *, object_points: dict[str, int] | None = None) -> RuleSpec:
    return RuleSpec(
        id=rule.pk,
        code=rule.score_type,
        kind=rule.kind,
        period=rule.statistical_period,
        required=rule.required_number_of_times,
        points=rule.points,
        award_limit=rule.award_limit_per_period,
        recipient_cap=rule.number_limit_all,
        start_time=rule.start_time,
        end_time=rule.end_time,
        can_repeat=rule.can_repeat,
        active=rule.status == ScoreRule.Status.ACTIVE,
        object_points=object_points or {},
        recipients_count=rule.recipients_count,
        cooldown=rule.cooldown,
        cooldown_per_object=rule.cooldown_scope == ScoreRule.CooldownScope.OBJECT,
        point_type_id=rule.point_type_id,
        badge_id=rule.badge_id,
    )


@dataclass(frozen=True)
class RuleProgress:
    """One active rule as a user sees it in its current period."""

    rule: ScoreRule
    period_start: datetime
    deadline: datetime | None
    progress: int
    required: int
    achieved: bool
    awards: int
    counted_now: bool = False  # the current period has counted (for a streak: it goes on)
    places_left: int | None = None  # a capped rule the user has no place on yet: places still free

    @property
    def facts(self) -> ProgressFacts:
        rule = self.rule
        return ProgressFacts(
            kind=rule.kind,
            period=rule.statistical_period,
            required=self.required,
            points=rule.points,
            progress=self.progress,
            awards=self.awards,
            award_limit=rule.award_limit_per_period,
            counted_now=self.counted_now,
            places_left=self.places_left,
        )

    @property
    def percent(self) -> int:
        """How full the progress bar is (apps.rules.progress_text.progress_percent)."""
        return progress_percent(self.facts)

    @property
    def summary(self) -> str:
        """The progress in words, e.g. "3 of 3 today — limit reached" (apps.rules.progress_text)."""
        return progress_summary(self.facts)

    @property
    def limit_reached(self) -> bool:
        return self.facts.limit_reached


def current_progress_for(*, user_id: int, at: datetime | None = None) -> list[RuleProgress]:
    """The user's progress on every active rule in its period containing `at`: two queries in all.

    The site's "my points" page and the admin's per-user page both show it, whatever the number of
    rules. Period bounds depend only on the period kind, so the rows needed are those starting at
    one of at most nine instants: each kind's current start, and the previous one, from which a
    streak is still alive. When a rule has a recipient cap, a third query finds the user's places.
    """
    at = at or timezone.now()
    tz = ZoneInfo(settings.TIME_ZONE)
    rules = list(ScoreRule.objects.filter(status=ScoreRule.Status.ACTIVE).order_by("task_type", "id"))
    bounds = {period: period_bounds(period, at, tz) for period in {rule.statistical_period for rule in rules}}
    previous = {period: previous_period_start(period, start, tz) for period, (start, _end) in bounds.items() if period != NONE}
    starts = {start for start, _end in bounds.values()} | set(previous.values())
    rows = UserScoreInfo.objects.filter(
        user_id=user_id, period_start__in=starts, achievement_type__status=ScoreRule.Status.ACTIVE
    )
    by_rule_and_start = {(row.achievement_type_id, row.period_start): row for row in rows}
    capped = [rule.pk for rule in rules if rule.number_limit_all is not None]
    placed = (
        set(RuleRecipient.objects.filter(user_id=user_id, rule_id__in=capped).values_list("rule_id", flat=True))
        if capped
        else set()
    )
    progress = []
    for rule in rules:
        start, deadline = bounds[rule.statistical_period]
        current = by_rule_and_start.get((rule.pk, start))
        if rule.kind == ScoreRule.Kind.STREAK:
            # A streak counts from the latest period the user completed: this one, or the one
            # before if this one has not counted yet; anything older means it was broken.
            if current is None or current.streak_length == 0:
                current = None
                before = by_rule_and_start.get((rule.pk, previous[rule.statistical_period]))
                value = before.streak_length if before is not None else 0
            else:
                value = current.streak_length
        else:
            value = current.achievement_amount_now if current else 0
        progress.append(
            RuleProgress(
                rule=rule,
                period_start=start,
                deadline=deadline,
                progress=value,
                required=rule.required_number_of_times,
                achieved=bool(current and current.achieved),
                awards=current.awards_in_period if current else 0,
                counted_now=current is not None and (current.streak_length > 0 or current.achievement_amount_now > 0),
                places_left=(
                    max(rule.number_limit_all - rule.recipients_count, 0)
                    if rule.number_limit_all is not None and rule.pk not in placed
                    else None
                ),
            )
        )
    return progress


@dataclass(frozen=True)
class RuleFigures:
    """A rule's live figures, as its admin page shows them."""

    recipients: int  # places taken; counted for capped rules only (see rule_live_figures)
    recipient_cap: int | None
    awards_today: int
    points_today: int  # net: today's reversals of this rule's awards are subtracted
    awards_total: int
    points_total: int  # net of reversals

    @property
    def places_left(self) -> int | None:
        return None if self.recipient_cap is None else max(self.recipient_cap - self.recipients, 0)


def rule_live_figures(*, rule_id: int, at: datetime | None = None) -> RuleFigures:
    """Recipients against the cap, awards and points today (site calendar day) and in total.

    Two statements on the ledger, both restricted by rule_id (an index); today's also by
    created_at (an index), so it reads only today's entries. The total reads every entry of
    the rule: cheap for most rules, and the one figure that grows with the rule's history.
    Recipients are the rule's capped places, kept on the rule row by the cap itself; for a
    rule without a cap they would need a COUNT(DISTINCT user) over its whole history, which
    this page does not pay for.
    """
    at = at or timezone.now()
    day_start, day_end = period_bounds("day", at, ZoneInfo(settings.TIME_ZONE))
    rule = ScoreRule.all_objects.values("recipients_count", "number_limit_all").get(pk=rule_id)
    entries = ScoreRecord.objects.filter(rule_id=rule_id).order_by()
    award = Q(kind=ScoreRecord.Kind.AWARD)
    today = entries.filter(created_at__gte=day_start, created_at__lt=day_end).aggregate(
        awards=Count("id", filter=award), points=Coalesce(Sum("trade_amount"), 0)
    )
    total = entries.aggregate(awards=Count("id", filter=award), points=Coalesce(Sum("trade_amount"), 0))
    return RuleFigures(
        recipients=rule["recipients_count"],
        recipient_cap=rule["number_limit_all"],
        awards_today=today["awards"],
        points_today=today["points"],
        awards_total=total["awards"],
        points_total=total["points"],
    )

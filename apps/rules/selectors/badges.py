"""Reads about badges (SPEC §12): the badges a user holds (the site, the admin's user page, `GET /api/me/badges`),
and whether the badge awards agree with the awards that grant them (verify_ledger)."""

from dataclasses import dataclass

from django.db.models import Exists, Min, OuterRef, Q

from apps.ledger.models import ScoreRecord
from apps.rules.models import Badge, BadgeAward, ScoreRule
from apps.tasks.models import UserTaskRecord


def badges_of(*, user_id: int) -> list[Badge]:
    """The badges the user holds, first earned first, each with `earned_at`: one query.

    A user holds a badge while one of its awards is live (not taken back); `earned_at` is when
    the earliest live award's completion happened, so a badge taken back and earned again shows
    the new date.
    """
    live = Q(awards__user_id=user_id, awards__revoked_at__isnull=True)
    return list(Badge.objects.filter(live).annotate(earned_at=Min("awards__earned_at")).order_by("earned_at", "id"))


@dataclass(frozen=True)
class BadgeProblem:
    rule_code: str
    completion_id: int
    detail: str

    def __str__(self) -> str:
        return f"badges: rule {self.rule_code}, completion {self.completion_id}: {self.detail}"


def _awarded_completions(rule: ScoreRule) -> set[int]:
    """The live completions the rule awarded: by its live award entries, or (0 points) by the decisions recorded on them."""
    if rule.points > 0:
        compensated = ScoreRecord.objects.filter(reverses=OuterRef("pk"))
        return set(
            ScoreRecord.objects.filter(rule=rule, kind=ScoreRecord.Kind.AWARD, completion__isnull=False)
            .exclude(Exists(compensated))
            .values_list("completion_id", flat=True)
        )
    found = set()
    records = UserTaskRecord.objects.filter(task__task_type=rule.task_type, reversed_at__isnull=True, deleted_at__isnull=True)
    for pk, decisions in records.values_list("pk", "decisions").iterator(chunk_size=5000):
        if any(d.get("rule_id") == rule.pk and d.get("reason") == "awarded" for d in decisions):
            found.add(pk)
    return found


def badge_problems(*, limit: int = 100) -> list[BadgeProblem]:
    """Badge awards that disagree with the awards of their rules, at most `limit`; empty when all agree.

    Every live award of a badge-granting rule has one live `BadgeAward`, and no other is live.
    """
    problems: list[BadgeProblem] = []
    for rule in ScoreRule.all_objects.filter(badge__isnull=False).order_by("pk"):
        awarded = _awarded_completions(rule)
        live = set(BadgeAward.objects.filter(rule=rule, revoked_at__isnull=True).values_list("completion_id", flat=True))
        for completion_id in sorted(awarded - live):
            problems.append(BadgeProblem(rule.score_type, completion_id, "awarded without its badge"))
        for completion_id in sorted(live - awarded):
            problems.append(BadgeProblem(rule.score_type, completion_id, "holds a badge its award no longer grants"))
        if len(problems) >= limit:
            return problems[:limit]
    return problems

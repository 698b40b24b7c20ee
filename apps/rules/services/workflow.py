"""The rule workflow (SPEC §4): editing → (review) → active → retired, frozen fields, copy as draft."""

from typing import Any

from django.db import transaction

from apps.core.lifecycle import Actor, copy_fields, free_copy_code, save_with_history, transition, update_fields
from apps.core.review import review_send_back, review_submit
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints

# A copy keeps everything that decides awards (the frozen fields), the description and the window's end.
_COPIED_FIELDS = (*ScoreRule.FROZEN_FIELDS, "score_desc", "end_time")


def score_rule_create(*, actor: Actor = None, **fields: Any) -> ScoreRule:
    """Create a rule (`editing` unless `status` says otherwise); raise ValidationError if invalid."""
    return save_with_history(ScoreRule(**fields), actor=actor, reason="created")


def score_rule_update(*, rule: ScoreRule, actor: Actor = None, **changes: Any) -> ScoreRule:
    """Change a rule; raise ValidationError, storing nothing, on a frozen field of an active rule."""
    return update_fields(rule, changes=changes, actor=actor)


def score_rule_activate(*, rule: ScoreRule, actor: Actor = None) -> ScoreRule:
    """editing → active. From then on the fields that decide awards are frozen."""
    return transition(rule, source=ScoreRule.Status.EDITING, target=ScoreRule.Status.ACTIVE, actor=actor)


def score_rule_submit_for_review(*, rule: ScoreRule, actor: Actor = None) -> ScoreRule:
    """A draft goes into the approvers' review queue (rule editors may)."""
    return review_submit(rule, actor=actor)


def score_rule_send_back(*, rule: ScoreRule, actor: Actor = None, comment: str = "") -> ScoreRule:
    """A draft in review goes back to its editor with the approver's comment; it stays a draft."""
    return review_send_back(rule, actor=actor, comment=comment)


def score_rule_retire(*, rule: ScoreRule, actor: Actor = None) -> ScoreRule:
    """active → retired. A retired rule awards nothing more and cannot come back."""
    return transition(rule, source=ScoreRule.Status.ACTIVE, target=ScoreRule.Status.RETIRED, actor=actor)


def score_rule_copy_as_draft(*, rule: ScoreRule, actor: Actor = None) -> ScoreRule:
    """A new `editing` rule with the same settings and per-object amounts, to change and activate."""
    with transaction.atomic():
        draft = score_rule_create(
            actor=actor,
            score_type=free_copy_code(ScoreRule, "score_type", rule.score_type),
            status=ScoreRule.Status.EDITING,
            **copy_fields(rule, _COPIED_FIELDS),
        )
        ScoreRuleObjectPoints.objects.bulk_create(
            ScoreRuleObjectPoints(rule=draft, business_id=row.business_id, points=row.points) for row in rule.object_points.all()
        )
    return draft

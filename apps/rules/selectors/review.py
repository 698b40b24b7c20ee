"""The review queue: drafts submitted for review, and drafts sent back to their editors."""

from dataclasses import dataclass

from apps.core.review import ReviewState
from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig


@dataclass(frozen=True)
class ReviewQueue:
    configs: tuple[TaskConfig, ...]  # waiting for an approver, oldest submission first
    rules: tuple[ScoreRule, ...]
    sent_back_configs: tuple[TaskConfig, ...]  # back with their editors, newest first
    sent_back_rules: tuple[ScoreRule, ...]


def _drafts(model, state: str, order: str):
    return tuple(
        model.objects.filter(status=model.Status.EDITING, review_state=state).select_related("review_by").order_by(order, "pk")
    )


def review_queue() -> ReviewQueue:
    return ReviewQueue(
        configs=_drafts(TaskConfig, ReviewState.SUBMITTED, "review_at"),
        rules=_drafts(ScoreRule, ReviewState.SUBMITTED, "review_at"),
        sent_back_configs=_drafts(TaskConfig, ReviewState.SENT_BACK, "-review_at"),
        sent_back_rules=_drafts(ScoreRule, ReviewState.SENT_BACK, "-review_at"),
    )


def review_waiting_count() -> int:
    """How many drafts wait for an approver (the dashboard and the navigation show it)."""
    return sum(
        model.objects.filter(status=model.Status.EDITING, review_state=ReviewState.SUBMITTED).count()
        for model in (TaskConfig, ScoreRule)
    )

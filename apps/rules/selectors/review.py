"""The review queue: drafts (task configs, rules, shop items) submitted for review, and drafts sent back to their editors."""

from dataclasses import dataclass

from apps.core.review import ReviewState
from apps.rewards.models import RewardItem
from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig

# Every model authored with the review flow (apps.core.review): what waits for an approver.
REVIEWED_MODELS = (TaskConfig, ScoreRule, RewardItem)


@dataclass(frozen=True)
class ReviewQueue:
    configs: tuple[TaskConfig, ...]  # waiting for an approver, oldest submission first
    rules: tuple[ScoreRule, ...]
    items: tuple[RewardItem, ...]
    sent_back_configs: tuple[TaskConfig, ...]  # back with their editors, newest first
    sent_back_rules: tuple[ScoreRule, ...]
    sent_back_items: tuple[RewardItem, ...]


def _drafts(model, state: str, order: str, *related: str):
    return tuple(
        model.objects.filter(status=model.Status.EDITING, review_state=state)
        .select_related("review_by", *related)
        .order_by(order, "pk")
    )


def review_queue() -> ReviewQueue:
    return ReviewQueue(
        configs=_drafts(TaskConfig, ReviewState.SUBMITTED, "review_at"),
        rules=_drafts(ScoreRule, ReviewState.SUBMITTED, "review_at"),
        items=_drafts(RewardItem, ReviewState.SUBMITTED, "review_at", "point_type", "min_level__point_type"),
        sent_back_configs=_drafts(TaskConfig, ReviewState.SENT_BACK, "-review_at"),
        sent_back_rules=_drafts(ScoreRule, ReviewState.SENT_BACK, "-review_at"),
        sent_back_items=_drafts(RewardItem, ReviewState.SENT_BACK, "-review_at"),
    )


def review_waiting_count() -> int:
    """How many drafts wait for an approver (the dashboard and the navigation show it)."""
    return sum(
        model.objects.filter(status=model.Status.EDITING, review_state=ReviewState.SUBMITTED).count() for model in REVIEWED_MODELS
    )

"""`GET /api/me/progress`: the signed-in user's progress on every active rule in its current period."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import django_auth

from apps.rules.selectors.rules import RuleProgress, current_progress_for
from config.api_errors import ErrorOut

router = Router(tags=["me"], auth=django_auth)


class ProgressOut(Schema):
    rule: str  # score_type
    description: str
    task_type: str
    kind: str
    period: str
    period_start: datetime
    deadline: datetime | None
    progress: int
    required: int
    percent: int  # how full the progress bar is
    summary: str  # the progress in words, in the request's language: "3 of 3 today — limit reached"
    achieved: bool
    awards: int  # in this period
    points: int


def _progress(item: RuleProgress) -> dict:
    rule = item.rule
    return {
        "rule": rule.score_type,
        "description": rule.score_desc,
        "task_type": rule.task_type,
        "kind": rule.kind,
        "period": rule.statistical_period,
        "period_start": item.period_start,
        "deadline": item.deadline,
        "progress": item.progress,
        "required": item.required,
        "percent": item.percent,
        "summary": item.summary,
        "achieved": item.achieved,
        "awards": item.awards,
        "points": rule.points,
    }


@router.get("", response={200: list[ProgressOut], 401: ErrorOut}, summary="The signed-in user's progress on the active rules")
def progress(request: HttpRequest):
    return [_progress(item) for item in current_progress_for(user_id=request.user.pk)]

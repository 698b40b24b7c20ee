"""Celery tasks of the rules app: thin wrappers around its services."""

from datetime import datetime

from celery import shared_task

from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.selectors.dry_run import rule_dry_run
from apps.rules.services.backfill import (
    BackfillRefused,
    backfill_catch_up,
    backfill_run_execute,
    backfill_runs_resend,
    catch_up_delay_s,
)


# Acknowledged when done: a worker killed mid-run gives the task back, and the run resumes from
# its high-water mark (each batch commits it), so nothing is awarded twice.
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_backfill(run_id: int) -> str:
    try:
        status = backfill_run_execute(run_id=run_id).status
        outcome = str(status)
    except BackfillRefused as exc:
        # Delivered again (a worker died after the run was done): the catch-up may not be queued yet.
        status = BackfillRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        outcome = str(exc)
    if status == BackfillRun.Status.DONE:
        # Once every worker evaluates the rule again: the completions recorded undecided meanwhile.
        # Queued more than once, it decides them once (a decided completion stays decided).
        catch_up_backfill.apply_async((run_id,), countdown=catch_up_delay_s())
    return outcome


@shared_task(ignore_result=True)
def resend_queued_backfills() -> str:
    """Beat: runs still queued a minute after they were requested are sent to the workers again."""
    sent = backfill_runs_resend()
    return f"{len(sent)} backfill runs sent again"


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def catch_up_backfill(run_id: int) -> str:
    try:
        return f"{backfill_catch_up(run_id=run_id)} completions caught up"
    except BackfillRefused as exc:
        return str(exc)


# Its figures (`DryRun.as_dict`) are the task's result, kept by the result backend (django-db)
# for the rule admin's dry run page, which refreshes itself until they are there.
@shared_task(ignore_result=False)
def dry_run_rule(rule_id: int, since: str | None, until: str) -> dict:
    return rule_dry_run(
        rule=ScoreRule.objects.get(pk=rule_id),
        since=datetime.fromisoformat(since) if since else None,
        until=datetime.fromisoformat(until),
    ).as_dict()

"""Celery tasks of the rules app: thin wrappers around its services."""

from celery import shared_task

from apps.rules.services.backfill import BackfillRefused, backfill_run_execute


# Acknowledged when done: a worker killed mid-run gives the task back, and the run resumes from
# its high-water mark (each batch commits it), so nothing is awarded twice.
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_backfill(run_id: int) -> str:
    try:
        return str(backfill_run_execute(run_id=run_id).status)
    except BackfillRefused as exc:
        return str(exc)

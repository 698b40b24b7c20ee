"""Celery tasks of the ledger app: thin wrappers around its services."""

from celery import shared_task

from apps.ledger.services.expiry import points_expire
from apps.ledger.services.expiry_notices import expiry_notices_send


# Acknowledged when done: a worker killed mid-run gives the task back, and the run again finds only
# what is still due (each chunk committed its part), so no lot expires twice (G14).
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def expire_points() -> str:
    """Beat, daily: the lots that reached their end leave their accounts (one expiry entry per account)."""
    report = points_expire()
    return f"{report.points} points of {report.accounts} accounts ({report.lots} lots) expired"


@shared_task(ignore_result=True)
def send_expiry_notices() -> str:
    """Beat, daily: tell users of points that expire within JIFEN_EXPIRY_NOTICE_DAYS (once per account and day)."""
    return f"{expiry_notices_send()} expiry notices sent"

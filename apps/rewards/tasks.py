"""Celery tasks of the rewards app: thin wrappers around its services."""

from celery import shared_task

from apps.rewards.services.holds import holds_release_expired


@shared_task(ignore_result=True)
def release_expired_holds() -> str:
    """Beat: holds neither captured nor released by their time go back to their users (status expired)."""
    return f"{holds_release_expired()} holds released at expiry"

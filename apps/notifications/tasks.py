"""Celery tasks of the notifications app: thin wrappers around its services."""

from celery import shared_task

from apps.notifications.services.deliveries import webhook_deliveries_prune, webhook_deliveries_send
from apps.notifications.services.retention import notifications_prune


@shared_task(ignore_result=True)
def send_webhooks() -> str:
    """Beat, every JIFEN_WEBHOOK_SEND_S: POST the due webhook deliveries (G15)."""
    result = webhook_deliveries_send()
    return f"{result.delivered} delivered, {result.retrying} to retry, {result.failed} given up"


@shared_task(ignore_result=True)
def prune_webhook_deliveries() -> str:
    """Beat, hourly: forget delivered and failed deliveries older than JIFEN_WEBHOOK_KEEP_DAYS."""
    return f"{webhook_deliveries_prune()} deliveries pruned"


@shared_task(ignore_result=True)
def prune_notifications() -> str:
    """Beat, daily: forget notifications older than JIFEN_NOTIFICATIONS_KEEP_DAYS."""
    return f"{notifications_prune()} notifications pruned"

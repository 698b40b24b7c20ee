"""Webhook delivery attempts are counted by outcome when their recording commits."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications.models import WebhookAttempt
from apps.notifications.services.deliveries import webhook_deliveries_send
from tests.factories import UserFactory
from tests.metrics import Reading
from tests.notifications.test_webhooks import announce_some, endpoint_for, fast, receiver  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def test_deliveries_by_outcome(fast, receiver, django_capture_on_commit_callbacks):  # noqa: F811
    alice = UserFactory(username="alice")
    endpoint_for(receiver)
    announce_some(alice, count=2)  # two awards and a level: three deliveries
    counts = {name: Reading("jifen_webhook_deliveries_total", outcome=name) for name in ("delivered", "retrying", "failed")}

    def moved() -> tuple[float, ...]:
        return tuple(reading.moved() for reading in counts.values())

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_send()  # nothing listens yet
    assert moved() == (0, 3, 0)
    WebhookAttempt.objects.update(at=timezone.now() - timedelta(days=1, seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_send()  # a day of failing: given up
    assert moved() == (0, 3, 3)

    announce_some(alice, count=1)
    receiver.start()
    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliveries_send()
    assert moved() == (2, 3, 3)

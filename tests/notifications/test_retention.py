"""Old notifications are forgotten (JIFEN_NOTIFICATIONS_KEEP_DAYS), young ones kept, read or not."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications.models import Notification
from apps.notifications.services.retention import notifications_prune
from apps.notifications.tasks import prune_notifications
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def write(user, ages_days: list[float]) -> None:
    now = timezone.now()
    for age in ages_days:  # oldest first, as they would have been written
        Notification.objects.create(user=user, kind="points.awarded", created_at=now - timedelta(days=age))


@pytest.mark.parametrize("old", [0, 1, 7, 64])
def test_exactly_the_rows_older_than_the_limit_go(old):
    alice = UserFactory(username="alice")
    write(alice, [1000 - i for i in range(old)] + [300, 10, 0])
    assert notifications_prune(keep_days=365, chunk=3) == old
    assert Notification.objects.count() == 3


def test_everything_old_goes_and_nothing_young_is_touched():
    alice = UserFactory(username="alice")
    write(alice, [500, 400])
    assert notifications_prune(keep_days=365) == 2
    assert notifications_prune(keep_days=365) == 0  # an empty table
    write(alice, [1])
    assert notifications_prune(keep_days=365) == 0


def test_zero_keeps_everything_and_the_setting_is_the_default(settings):
    alice = UserFactory(username="alice")
    write(alice, [1000, 5])
    assert notifications_prune(keep_days=0) == 0
    settings.JIFEN_NOTIFICATIONS_KEEP_DAYS = 30
    assert prune_notifications() == "1 notifications pruned"

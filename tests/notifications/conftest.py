"""Notifications for the tests: written by `announce`, as the workers write them."""

import itertools

import pytest

from apps.notifications import events
from apps.notifications.models import Notification
from apps.notifications.services.announce import Announcement, announce
from tests.factories import UserFactory

_keys = itertools.count(1)


def notify(user, kind: str = events.POINTS_AWARDED, data: dict | None = None) -> Notification:
    """Announce one thing to `user` (an award of +5 coins for `sign-in-daily`, by default); return its notification."""
    if data is None:
        data = {"completion_id": 1, "rules": ["sign-in-daily"], "amounts": [{"point_type": "coins", "amount": 5}]}
    announce([Announcement(type=kind, user_id=user.pk, key=f"test:{next(_keys)}", data=data)])
    return Notification.objects.filter(user_id=user.pk).order_by("-id").first()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")

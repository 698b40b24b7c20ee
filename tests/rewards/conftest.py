"""Point types, levels, items and users with points, for the shop's tests."""

import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import transaction

from apps.ledger.models import Level, PointType
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.rewards.models import RewardItem
from tests.factories import UserFactory


@pytest.fixture
def coins(db, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return PointType.objects.create(code="coins", name="Coins", spendable=True, expiry=PointType.Expiry.YEAR_END)


@pytest.fixture
def exp(db):
    exp = PointType.objects.create(code="exp", name="Experience", spendable=False)
    for name, threshold in (("Newcomer", 0), ("Regular", 100), ("Veteran", 500)):
        Level.objects.create(point_type=exp, name=name, threshold=threshold)
    return exp


def make_item(point_type, *, code="mug", cost=30, **fields) -> RewardItem:
    """An active item (as an approver would have made it live)."""
    fields.setdefault("name", code.replace("-", " ").title())
    fields.setdefault("status", RewardItem.Status.ACTIVE)
    return RewardItem.objects.create(code=code, cost=cost, point_type=point_type, **fields)


def give(user, amount: int, point_type=None, *, kind: str = "award"):
    """Credit the user as the pipeline would (an award of `point_type`, the default type without one)."""
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk if point_type else None)
        return ledger_post_entry(account=account, amount=amount, kind=kind, idempotency_key=f"test:{uuid.uuid4()}")


def operator(username: str = "olga"):
    """A staff user in the ledger operators group (which the rewards migration lets fulfil and cancel)."""
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name="ledger operators"))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")

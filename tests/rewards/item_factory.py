"""Reward items and the point types and levels they name, for the item authoring tests."""

import factory

from apps.ledger.models import Level, PointType
from apps.ledger.point_types import default_point_type_id
from apps.rewards.models import RewardItem


class RewardItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RewardItem

    code = factory.Sequence(lambda n: f"item-{n}")
    name = factory.LazyAttribute(lambda o: f"The {o.code}")
    cost = 50
    point_type_id = factory.LazyFunction(default_point_type_id)
    status = RewardItem.Status.EDITING


def coins() -> PointType:
    return PointType.objects.get_or_create(code="coins", defaults={"name": "Coins", "spendable": True})[0]


def exp() -> PointType:
    return PointType.objects.get_or_create(code="exp", defaults={"name": "Experience", "spendable": False})[0]


def level(point_type: PointType, name: str, threshold: int) -> Level:
    return Level.objects.get_or_create(point_type=point_type, name=name, defaults={"threshold": threshold})[0]

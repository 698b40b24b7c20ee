"""A notification reads as one sentence in the reader's language, with names looked up for the whole page at once."""

import pytest
from django.utils import timezone, translation

from apps.ledger.models import PointType
from apps.notifications import events
from apps.notifications.models import Notification
from apps.notifications.texts import notification_texts
from apps.rules.models import Badge
from tests.factories import ScoreRuleFactory
from tests.notifications.conftest import notify

pytestmark = pytest.mark.django_db

SAMPLES = {
    events.POINTS_AWARDED: {
        "rules": ["daily", "daily-exp"],
        "amounts": [{"point_type": "coins", "amount": 5}, {"point_type": "exp", "amount": 10}],
    },
    events.POINTS_REVERSED: {"rules": ["daily"], "amounts": [{"point_type": "coins", "amount": -5}]},
    events.POINTS_ADJUSTED: {"point_type": "coins", "amount": -20, "balance": 5, "reason": "Double sign-in"},
    events.POINTS_EXPIRING: {"point_type": "coins", "amount": 30, "expires_at": "2027-12-31T16:00:00+00:00"},
    events.POINTS_EXPIRED: {"point_type": "coins", "amount": -30, "balance": 0},
    events.LEVEL_REACHED: {"point_type": "exp", "level": "Expert", "level_id": 1, "threshold": 500, "earned": 510},
    events.BADGE_EARNED: {"badge": "streak-7", "badge_name": "Old name", "rule": "streak", "completion_id": 3},
    events.BADGE_REVOKED: {"badge": "streak-7", "badge_name": "Old name", "rule": "streak", "completion_id": 3},
    events.REDEMPTION_CREATED: {"redemption_id": 1, "item": "mug", "item_name": "Mug", "point_type": "coins", "cost": 30},
    events.REDEMPTION_FULFILLED: {"redemption_id": 1, "item": "mug", "item_name": "Mug", "point_type": "coins", "cost": 30},
    events.REDEMPTION_CANCELLED: {
        "redemption_id": 1,
        "item": "mug",
        "item_name": "Mug",
        "point_type": "coins",
        "cost": 30,
        "note": "Sold out",
    },
    events.HOLD_CREATED: {"hold_id": 1, "point_type": "coins", "amount": 40, "service": "shop", "description": "Order 7"},
    events.HOLD_CAPTURED: {"hold_id": 1, "point_type": "coins", "amount": 40, "service": "shop", "description": "Order 7"},
    events.HOLD_RELEASED: {"hold_id": 1, "point_type": "coins", "amount": 40, "service": "shop", "description": "Order 7"},
    events.HOLD_EXPIRED: {"hold_id": 1, "point_type": "coins", "amount": 40, "service": "shop", "description": "Order 7"},
}

EXPECTED = {
    events.POINTS_AWARDED: "+5 Coins, +10 Experience for Daily sign-in; daily-exp",
    events.POINTS_REVERSED: "-5 Coins taken back: Daily sign-in",
    events.POINTS_ADJUSTED: "An operator took away 20 Coins: Double sign-in",
    events.POINTS_EXPIRING: "30 Coins expire on 2028-01-01 unless spent",
    events.POINTS_EXPIRED: "30 Coins expired",
    events.LEVEL_REACHED: "You reached the level Expert in Experience",
    events.BADGE_EARNED: "You earned the badge 7-day streak",
    events.BADGE_REVOKED: "The badge 7-day streak was taken back with the award that granted it",
    events.REDEMPTION_CREATED: "You redeemed Mug for 30 Coins",
    events.REDEMPTION_FULFILLED: "Your Mug is on its way: the redemption was fulfilled",
    events.REDEMPTION_CANCELLED: "Your redemption of Mug was cancelled and 30 Coins refunded: Sold out",
    events.HOLD_CREATED: "40 Coins held for shop: Order 7",
    events.HOLD_CAPTURED: "40 Coins paid to shop: Order 7",
    events.HOLD_RELEASED: "40 Coins held for shop came back: Order 7",
    events.HOLD_EXPIRED: "40 Coins held for shop came back (the hold ran out): Order 7",
}


@pytest.fixture
def names(db, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    PointType.objects.create(code="coins", name="Coins")
    PointType.objects.create(code="exp", name="Experience")
    ScoreRuleFactory(score_type="daily", score_desc="Daily sign-in")
    Badge.objects.create(code="streak-7", name="7-day streak")


def test_every_kind_reads_as_a_sentence_with_todays_names(names, alice, django_assert_max_num_queries):
    assert set(SAMPLES) == set(events.EVENT_TYPES)  # a new kind needs its sentence here
    for kind, data in SAMPLES.items():
        notify(alice, kind, data)
    rows = list(Notification.objects.filter(user=alice).order_by("id"))
    with django_assert_max_num_queries(3):  # point types, rules, badges: whatever the number of rows
        texts = notification_texts(rows)
    assert {item.notification.kind: item.text for item in texts} == EXPECTED


def test_links_lead_to_where_it_can_be_seen(names, alice):
    for kind in (events.POINTS_AWARDED, events.BADGE_EARNED, events.REDEMPTION_CANCELLED):
        notify(alice, kind, SAMPLES[kind])
    urls = [item.url for item in notification_texts(list(Notification.objects.order_by("id")))]
    assert urls == ["/me/points/", "/me/points/#badge-streak-7", "/shop/#my-redemptions"]


def test_the_texts_read_in_chinese(names, alice):
    notify(alice, events.BADGE_EARNED, {"badge": "streak-7"})
    notify(alice, events.POINTS_AWARDED, SAMPLES[events.POINTS_AWARDED])
    with translation.override("zh-hans"):
        texts = [item.text for item in notification_texts(list(Notification.objects.order_by("id")))]
    assert texts == ["你获得了徽章「签到达人」", "+5 积分、+10 经验：每日签到；daily-exp"]


def test_a_row_missing_its_data_still_reads(names, alice):
    for kind in SAMPLES:
        Notification.objects.create(user=alice, kind=kind, data={}, created_at=timezone.now())
    texts = notification_texts(list(Notification.objects.all()))
    assert len(texts) == len(SAMPLES) and all(item.text for item in texts)

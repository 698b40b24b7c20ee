"""Redemptions and holds are counted by outcome, once each, when they commit; repeats and refusals as they are."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.services.holds import HoldRefused, hold_capture, hold_place, hold_release, holds_release_expired
from apps.rewards.services.redemptions import redemption_cancel, redemption_create, redemption_fulfil
from apps.tracking.services.service_keys import service_key_create
from tests.metrics import Reading
from tests.rewards.conftest import give, make_item, operator

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what a block registers for its commit, as a real commit would (the test's transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def outcomes(metric: str, *names: str) -> dict[str, Reading]:
    return {name: Reading(metric, outcome=name) for name in names}


def moved(readings: dict[str, Reading]) -> dict[str, float]:
    return {name: reading.moved() for name, reading in readings.items()}


def test_redemptions_by_outcome(alice, coins, committed):
    give(alice, 100, coins)
    make_item(coins, code="mug", cost=30)
    make_item(coins, code="bike", cost=1000)
    olga = operator()
    counts = outcomes(
        "jifen_redemptions_total", "redeemed", "refused_insufficient_points", "refused_not_available", "fulfilled", "cancelled"
    )
    with committed():
        first = redemption_create(user=alice, item_code="mug", client_key="k1").redemption
        redemption_create(user=alice, item_code="mug", client_key="k1")  # the same key: the first answers, not counted
        second = redemption_create(user=alice, item_code="mug", client_key="k2").redemption
        with pytest.raises(RedemptionRefused):
            redemption_create(user=alice, item_code="bike", client_key="k3")
        with pytest.raises(RedemptionRefused):
            redemption_create(user=alice, item_code="nothing", client_key="k4")
        redemption_fulfil(redemption=first, actor=olga)
        redemption_fulfil(redemption=first, actor=olga)  # already fulfilled: unchanged, not counted
        redemption_cancel(redemption=second, actor=olga, note="out of mugs after all")
    assert moved(counts) == {
        "redeemed": 2,
        "refused_insufficient_points": 1,
        "refused_not_available": 1,
        "fulfilled": 1,
        "cancelled": 1,
    }


def test_a_redemption_rolled_back_by_its_caller_is_not_counted(alice, coins, committed):
    give(alice, 100, coins)
    make_item(coins, code="mug", cost=30)
    redeemed = Reading("jifen_redemptions_total", outcome="redeemed")
    with committed(), pytest.raises(RuntimeError), transaction.atomic():
        redemption_create(user=alice, item_code="mug", client_key="k1")
        raise RuntimeError("the caller failed after")
    assert redeemed.moved() == 0


def test_holds_by_outcome(alice, coins, committed):
    give(alice, 100, coins)
    key, _secret = service_key_create(name="shop", may_hold=True)
    counts = outcomes("jifen_holds_total", "placed", "refused", "captured", "released", "expired")

    def place(client_key: str, amount: int = 10, expires_in_s: int = 600):
        return hold_place(
            service_key=key, user=alice, point_type=coins, amount=amount, client_key=client_key, expires_in_s=expires_in_s
        ).hold

    with committed():
        a, b = place("a"), place("b")
        place("a")  # the same key: answers the first hold, not counted
        short = place("c", expires_in_s=10)
        with pytest.raises(HoldRefused):
            place("d", amount=10_000)  # more than the balance
        hold_capture(service_key=key, hold_id=a.pk)
        hold_capture(service_key=key, hold_id=a.pk)  # captured already: unchanged
        hold_release(service_key=key, hold_id=b.pk)
        with pytest.raises(HoldRefused):
            hold_release(service_key=key, hold_id=a.pk)  # captured: a conflict
        assert holds_release_expired(now=timezone.now() + timedelta(seconds=11)) == 1
    assert short.pk
    assert moved(counts) == {"placed": 3, "refused": 2, "captured": 1, "released": 1, "expired": 1}

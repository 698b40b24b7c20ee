"""The points economy as one user lives it (issue 15's story, SPEC §11), with verify_ledger clean after every step.

A user earns coins and exp through the real pipeline, levels up, redeems an item, a shop's
checkout holds part of an order and captures it, a late deletion takes back an award whose points
were already spent (the balance may go below zero), later earnings pay that debt first, and the
year's end expires what is left exactly once, however often the job runs.
"""

import io
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from apps.ledger.models import Account, Level, PointLot, PointType, ScoreRecord
from apps.ledger.selectors.levels import standings_of
from apps.rewards.models import RewardItem
from apps.rewards.services.holds import hold_capture, hold_place
from apps.rewards.services.redemptions import redemption_create
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


def at(month: int, day: int, hour: int = 12, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


def verified() -> None:
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)  # raises CommandError naming the accounts on any failure
    assert "Ledger OK" in out.getvalue()


def balance(user, code: str) -> int:
    return Account.objects.get(user=user, point_type__code=code).balance


@pytest.fixture
def economy(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    coins = PointType.objects.get(is_default=True)
    coins.code, coins.name, coins.expiry = "coins", "积分", PointType.Expiry.YEAR_END
    coins.save()
    exp = PointType.objects.create(code="exp", name="经验", spendable=False, position=1)
    for name, threshold in (("新手", 0), ("入门", 100), ("熟练", 500)):
        Level.objects.create(point_type=exp, name=name, threshold=threshold)
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="post-delete", reverses="post")
    ScoreRuleFactory(task_type="post", score_type="post-coins", points=40, statistical_period="none")
    ScoreRuleFactory(task_type="post", score_type="post-exp", points=60, statistical_period="none", point_type=exp)
    RewardItem.objects.create(code="mug", name="Mug", cost=50, point_type=coins, stock=1, status="active")
    return coins, exp


def post(user, when: datetime, task_type: str = "post") -> None:
    event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=when))


def test_a_users_points_from_earning_to_the_years_end(economy):
    coins, exp = economy
    alice = UserFactory(username="alice")

    # Earning both types; exp levels her up (and spending never takes a level away).
    post(alice, at(3, 1))
    post(alice, at(3, 2))
    assert (balance(alice, "coins"), balance(alice, "exp")) == (80, 120)
    levels = {s.point_type.code: s.level and s.level.name for s in standings_of(user_id=alice.pk)}
    assert levels["exp"] == "入门"
    verified()

    # Redeeming the last mug spends 50 coins at once.
    done = redemption_create(user=alice, item_code="mug", client_key="k1")
    assert balance(alice, "coins") == 30 and done.redemption.cost == 50
    verified()

    # A shop's checkout pays part of an order with points: hold 20, then capture.
    key, _secret = service_key_create(name="shop", may_hold=True, created_by=UserFactory(username="ops", is_staff=True))
    held = hold_place(service_key=key, user=alice, point_type=coins, amount=20, client_key="order-7", expires_in_s=900)
    assert held.changed and balance(alice, "coins") == 10
    hold_capture(service_key=key, hold_id=held.hold.pk)
    assert balance(alice, "coins") == 10
    verified()

    # A late deletion of her first post claws back its 40 coins, already spent: the balance goes
    # below zero (a reversal may) and no lot holds anything.
    post(alice, at(3, 1, 13), task_type="post-delete")
    assert balance(alice, "coins") == -30
    assert not PointLot.objects.filter(account__user=alice, account__point_type=coins, remaining__gt=0).exists()
    assert {s.point_type.code: s.level and s.level.name for s in standings_of(user_id=alice.pk)}["exp"] == "新手"
    verified()

    # New earnings pay the debt first: of 40 coins, 10 remain, in a lot of this year.
    post(alice, at(6, 1))
    assert balance(alice, "coins") == 10
    verified()

    # The end of the year after earning (her points were earned in 2024): nothing expires at the
    # end of 2024, all 10 at the end of 2025, once, however often the job runs; exp never expires.
    call_command("expire_points", "--at", "2025-01-01T00:30:00+08:00", stdout=io.StringIO())
    assert balance(alice, "coins") == 10
    for _ in range(2):
        call_command("expire_points", "--at", "2026-01-01T00:30:00+08:00", stdout=io.StringIO())
    assert balance(alice, "coins") == 0 and balance(alice, "exp") == 120
    expiries = ScoreRecord.objects.filter(user=alice, kind=ScoreRecord.Kind.EXPIRY)
    assert [e.trade_amount for e in expiries] == [-10]
    verified()

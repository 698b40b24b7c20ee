"""Redeeming in the shop, and operators fulfilling or cancelling (SPEC §11): what users and operators notice."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.core.clock import local_text
from apps.ledger.models import Account, LotTake, PointLot, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.selectors.ledger import ledger_problems
from apps.ledger.services.lots import lots_check
from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.redemptions import (
    RedemptionDecisionRefused,
    redemption_cancel,
    redemption_create,
    redemption_fulfil,
    redemptions_cancel,
    redemptions_fulfil,
)
from tests.factories import UserFactory
from tests.rewards.conftest import give, make_item, operator

pytestmark = pytest.mark.django_db


def balance(user, point_type) -> int:
    return Account.objects.filter(user=user, point_type=point_type).values_list("balance", flat=True).first() or 0


def refused(user, code: str, key: str = "k1") -> RedemptionRefused:
    with pytest.raises(RedemptionRefused) as caught:
        redemption_create(user=user, item_code=code, client_key=key)
    return caught.value


def stock_taken(item) -> int:
    return RewardItem.all_objects.get(pk=item.pk).redeemed_count


def at_local(settings, *args) -> datetime:
    """A wall-clock time in the site's zone (Asia/Shanghai in these tests), as an aware instant."""
    return datetime(*args, tzinfo=ZoneInfo(settings.TIME_ZONE))


@pytest.fixture
def clock(monkeypatch):
    """Set "now" for the services (and auto_now_add) to a given instant."""

    def set_now(moment: datetime) -> None:
        monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(UTC))

    return set_now


class TestRedeeming:
    def test_redeeming_spends_the_cost_at_once_and_takes_one_from_the_stock(self, alice, coins):
        give(alice, 100, coins)
        mug = make_item(coins, cost=30, stock=5)
        done = redemption_create(user=alice, item_code="mug", client_key="k1")
        assert done.created and done.balance == 70 and balance(alice, coins) == 70
        redemption = done.redemption
        assert (redemption.status, redemption.cost, redemption.point_type_id) == ("pending", 30, coins.pk)
        spend = redemption.spend_entry
        assert (spend.kind, spend.trade_amount, spend.point_type_id) == ("spend", -30, coins.pk)
        assert spend.business_type == "redemption:mug"
        assert stock_taken(mug) == 1
        assert ledger_problems() == [] and lots_check() == []

    def test_the_default_point_type_works_without_naming_one(self, alice):
        give(alice, 10)
        make_item(PointType.objects.get(pk=default_point_type_id()), cost=10)
        assert redemption_create(user=alice, item_code="mug", client_key="k").balance == 0

    def test_insufficient_points_changes_nothing(self, alice, coins):
        give(alice, 29, coins)
        mug = make_item(coins, cost=30, stock=5)
        refusal = refused(alice, "mug")
        assert (refusal.code, refusal.http_status) == ("insufficient_points", 409)
        assert refusal.message == "Mug costs 30 Coins; you have 29."
        assert balance(alice, coins) == 29 and stock_taken(mug) == 0 and not Redemption.objects.exists()
        assert not ScoreRecord.objects.filter(kind="spend").exists()

    def test_points_of_another_type_do_not_pay(self, alice, coins):
        give(alice, 100)  # the default type
        make_item(coins, cost=30)
        assert refused(alice, "mug").code == "insufficient_points"

    def test_out_of_stock_once_the_last_unit_is_taken(self, alice, coins):
        bob = UserFactory(username="bob")
        give(alice, 100, coins), give(bob, 100, coins)
        mug = make_item(coins, cost=30, stock=1)
        redemption_create(user=alice, item_code="mug", client_key="k1")
        refusal = refused(bob, "mug")
        assert (refusal.code, refusal.http_status, refusal.message) == ("out_of_stock", 409, "Mug is out of stock.")
        assert balance(bob, coins) == 100 and stock_taken(mug) == 1

    def test_the_conditional_update_decides_even_when_the_row_read_says_there_is_stock(self, alice, coins, monkeypatch):
        """The stock read before posting is a hint; a unit taken after it is refused by the UPDATE and the spend rolled back."""
        give(alice, 100, coins)
        mug = make_item(coins, cost=30, stock=1)
        from apps.rewards import eligibility

        real = eligibility.refusal_of

        def someone_takes_the_last_unit(item, **kwargs):
            RewardItem.all_objects.filter(pk=mug.pk).update(redeemed_count=1)
            return real(item, **kwargs)

        monkeypatch.setattr(eligibility, "refusal_of", someone_takes_the_last_unit)
        assert refused(alice, "mug").code == "out_of_stock"
        assert balance(alice, coins) == 100 and not ScoreRecord.objects.filter(kind="spend").exists()
        assert ledger_problems() == [] and lots_check() == []

    def test_unlimited_stock(self, alice, coins):
        give(alice, 100, coins)
        mug = make_item(coins, cost=10)
        for n in range(5):
            redemption_create(user=alice, item_code="mug", client_key=f"k{n}")
        assert stock_taken(mug) == 5 and balance(alice, coins) == 50


class TestNotAvailable:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"status": RewardItem.Status.EDITING}, "Mug is not in the shop yet."),
            ({"status": RewardItem.Status.RETIRED}, "Mug is no longer in the shop."),
        ],
    )
    def test_an_item_that_is_not_active(self, alice, coins, change, message):
        give(alice, 100, coins)
        item = make_item(coins)
        RewardItem.all_objects.filter(pk=item.pk).update(**change)
        refusal = refused(alice, "mug")
        assert (refusal.code, refusal.http_status, refusal.message) == ("not_available", 422, message)
        assert balance(alice, coins) == 100

    def test_an_unknown_code(self, alice, coins):
        refusal = refused(alice, "nope")
        assert (refusal.code, refusal.message) == ("not_available", "No item in the shop has the code “nope”.")

    def test_a_soft_deleted_item(self, alice, coins):
        give(alice, 100, coins)
        item = make_item(coins)
        RewardItem.all_objects.filter(pk=item.pk).update(deleted_at=timezone.now())
        assert refused(alice, "mug").message == "Mug is no longer in the shop."

    def test_outside_its_window_in_the_sites_time(self, alice, coins, settings):
        give(alice, 100, coins)
        now = timezone.now()
        make_item(coins, code="early", start_time=now + timedelta(hours=1))
        make_item(coins, code="late", start_time=now - timedelta(days=2), end_time=now - timedelta(seconds=1))
        early = refused(alice, "early")
        assert early.code == "not_available" and early.message.startswith("Early can be redeemed from ")
        assert local_text(now + timedelta(hours=1)) in early.message  # the site's time (Shanghai), not UTC
        assert refused(alice, "late").message.startswith("Late could be redeemed until ")
        assert not Redemption.objects.exists()

    def test_a_point_type_that_cannot_be_spent(self, alice, exp):
        give(alice, 1000, exp)
        make_item(exp, cost=10)
        refusal = refused(alice, "mug")
        assert (refusal.code, refusal.message) == ("not_available", "Mug cannot be redeemed: Experience cannot be spent.")
        assert balance(alice, exp) == 1000

    def test_availability_is_checked_first(self, alice, coins, exp):
        item = make_item(coins, cost=30, stock=0, per_user_limit=0, min_level=exp.levels.get(name="Veteran"))
        RewardItem.all_objects.filter(pk=item.pk).update(status=RewardItem.Status.RETIRED)
        assert refused(alice, "mug").code == "not_available"


class TestLevels:
    def test_a_level_is_required_and_counts_earned_points_not_the_balance(self, alice, coins, exp):
        regular = exp.levels.get(name="Regular")
        make_item(coins, cost=30, min_level=regular)
        give(alice, 100, coins)
        give(alice, 60, exp)
        refusal = refused(alice, "mug")
        assert (refusal.code, refusal.http_status) == ("level_required", 422)
        assert refusal.message == ("Mug needs the level Regular in Experience (100 points earned); you have earned 60, 40 to go.")
        give(alice, 40, exp)
        assert redemption_create(user=alice, item_code="mug", client_key="k2").created

    def test_spending_never_demotes(self, alice, coins):
        from apps.ledger.models import Level

        Level.objects.create(point_type=coins, name="Bronze", threshold=50)
        make_item(coins, code="cheap", cost=40)
        make_item(coins, code="gated", cost=10, min_level=Level.objects.get(name="Bronze"))
        give(alice, 60, coins)
        redemption_create(user=alice, item_code="cheap", client_key="k1")
        assert balance(alice, coins) == 20  # below the threshold, but 60 were earned
        assert redemption_create(user=alice, item_code="gated", client_key="k2").created

    def test_level_is_checked_before_the_limit_and_the_balance(self, alice, coins, exp):
        make_item(coins, cost=30, per_user_limit=0, min_level=exp.levels.get(name="Regular"))
        assert refused(alice, "mug").code == "level_required"


class TestLimits:
    def test_one_a_day_in_the_sites_time_zone(self, alice, coins, settings, clock):
        give(alice, 1000, coins)
        make_item(coins, cost=10, per_user_limit=1, limit_period=RewardItem.Period.DAY)
        clock(at_local(settings, 2026, 12, 1, 23, 30))  # 15:30 UTC
        redemption_create(user=alice, item_code="mug", client_key="k1")
        clock(at_local(settings, 2026, 12, 1, 23, 59))
        refusal = refused(alice, "mug", key="k2")
        assert (refusal.code, refusal.http_status) == ("limit_reached", 409)
        assert refusal.message == "You may redeem Mug 1 time a day and have done so today; try again tomorrow."
        clock(at_local(settings, 2026, 12, 2, 0, 5))  # still Dec 1 in UTC, a new day on the site
        assert redemption_create(user=alice, item_code="mug", client_key="k3").created

    def test_a_cancelled_redemption_frees_its_place(self, alice, coins):
        give(alice, 1000, coins)
        make_item(coins, cost=10, per_user_limit=2, limit_period=RewardItem.Period.WEEK)
        first = redemption_create(user=alice, item_code="mug", client_key="k1").redemption
        redemption_create(user=alice, item_code="mug", client_key="k2")
        assert refused(alice, "mug", key="k3").message == (
            "You may redeem Mug 2 times a week and have done so this week; try again next week."
        )
        redemption_cancel(redemption=first, actor=operator(), note="out of that colour")
        assert redemption_create(user=alice, item_code="mug", client_key="k3").created

    def test_a_lifetime_limit(self, alice, coins):
        give(alice, 1000, coins)
        make_item(coins, cost=10, per_user_limit=1)
        redemption_create(user=alice, item_code="mug", client_key="k1")
        assert refused(alice, "mug", key="k2").message == "You may redeem Mug 1 time in all, and have done so."

    def test_limits_are_per_user(self, alice, coins):
        bob = UserFactory(username="bob")
        give(alice, 100, coins), give(bob, 100, coins)
        make_item(coins, cost=10, per_user_limit=1, limit_period=RewardItem.Period.MONTH)
        redemption_create(user=alice, item_code="mug", client_key="k1")
        assert redemption_create(user=bob, item_code="mug", client_key="k1").created

    def test_the_limit_is_checked_before_the_balance(self, alice, coins):
        give(alice, 10, coins)
        make_item(coins, cost=10, per_user_limit=1)
        redemption_create(user=alice, item_code="mug", client_key="k1")
        assert refused(alice, "mug", key="k2").code == "limit_reached"


class TestClientKey:
    def test_the_same_key_returns_the_first_redemption_and_posts_nothing(self, alice, coins):
        give(alice, 100, coins)
        mug = make_item(coins, cost=30, stock=5)
        first = redemption_create(user=alice, item_code="mug", client_key="k1")
        again = redemption_create(user=alice, item_code="mug", client_key="k1")
        assert not again.created and again.redemption.pk == first.redemption.pk and again.balance == 70
        assert ScoreRecord.objects.filter(kind="spend").count() == 1 and stock_taken(mug) == 1

    def test_the_same_key_answers_the_same_even_once_the_item_is_gone(self, alice, coins):
        give(alice, 100, coins)
        mug = make_item(coins, cost=30, stock=1)
        first = redemption_create(user=alice, item_code="mug", client_key="k1")
        RewardItem.all_objects.filter(pk=mug.pk).update(status=RewardItem.Status.RETIRED)
        assert redemption_create(user=alice, item_code="mug", client_key="k1").redemption.pk == first.redemption.pk

    def test_keys_are_per_user(self, alice, coins):
        bob = UserFactory(username="bob")
        give(alice, 100, coins), give(bob, 100, coins)
        make_item(coins, cost=30)
        redemption_create(user=alice, item_code="mug", client_key="same")
        assert redemption_create(user=bob, item_code="mug", client_key="same").created
        assert balance(bob, coins) == 70

    def test_a_key_used_for_another_item_is_refused(self, alice, coins):
        give(alice, 100, coins)
        make_item(coins, code="mug", cost=30)
        make_item(coins, code="pen", cost=5)
        redemption_create(user=alice, item_code="mug", client_key="k1")
        refusal = refused(alice, "pen", key="k1")
        assert (refusal.code, refusal.http_status) == ("key_reused", 422)
        assert balance(alice, coins) == 70

    @pytest.mark.parametrize("key", ["", " ", "x" * 129, "a\x00b", "line\nbreak", None])
    def test_a_bad_key_is_refused(self, alice, coins, key):
        give(alice, 100, coins)
        make_item(coins)
        refusal = refused(alice, "mug", key=key)
        assert (refusal.code, refusal.http_status) == ("bad_key", 422)
        assert not Redemption.objects.exists()


class TestOperators:
    @pytest.fixture
    def pending(self, alice, coins):
        give(alice, 100, coins)
        make_item(coins, cost=30, stock=3)
        return redemption_create(user=alice, item_code="mug", client_key="k1").redemption

    def test_fulfilling(self, pending):
        olga = operator()
        done = redemption_fulfil(redemption=pending, actor=olga)
        assert (done.status, done.decided_by, done.decided_at is not None) == ("fulfilled", olga, True)
        assert ScoreRecord.objects.filter(kind="refund").count() == 0
        again = redemption_fulfil(redemption=pending, actor=olga)  # idempotent
        assert again.decided_at == done.decided_at
        assert done.history.first().history_user == olga

    def test_cancelling_refunds_the_same_lots_and_gives_the_stock_back(self, alice, coins, settings):
        # Two lots, the older one expiring first: the spend takes from it first, the refund gives it back.
        give(alice, 50, coins)
        PointLot.objects.filter(account__user=alice).update(expires_at=datetime(2027, 6, 1, tzinfo=UTC))
        give(alice, 50, coins)
        mug = make_item(coins, cost=70, stock=3)
        redemption = redemption_create(user=alice, item_code="mug", client_key="k1").redemption
        lots = {lot.pk: lot.remaining for lot in PointLot.objects.filter(account__user=alice)}
        assert sorted(lots.values()) == [0, 30]
        took = dict(LotTake.objects.filter(entry=redemption.spend_entry).values_list("lot_id", "amount"))

        cancelled = redemption_cancel(redemption=redemption, actor=operator(), note="Sorry, we ran out of mugs.")

        refund = cancelled.refund_entry
        assert (refund.kind, refund.trade_amount, refund.reverses_id) == ("refund", 70, redemption.spend_entry_id)
        assert (cancelled.status, cancelled.note) == ("cancelled", "Sorry, we ran out of mugs.")
        after = {lot.pk: lot.remaining for lot in PointLot.objects.filter(account__user=alice)}
        assert after == {pk: lots[pk] + took.get(pk, 0) for pk in lots} == {pk: 50 for pk in lots}
        assert PointLot.objects.filter(account__user=alice).count() == 2  # the same lots, no new one
        assert balance(alice, coins) == 100 and stock_taken(mug) == 0
        assert ledger_problems() == [] and lots_check() == []

    def test_cancelling_twice_refunds_once(self, pending):
        olga = operator()
        redemption_cancel(redemption=pending, actor=olga, note="duplicate")
        redemption_cancel(redemption=pending, actor=olga, note="again")
        assert ScoreRecord.objects.filter(kind="refund").count() == 1
        assert Redemption.objects.get(pk=pending.pk).note == "duplicate"

    def test_only_pending_ones_move(self, pending, alice):
        olga = operator()
        redemption_fulfil(redemption=pending, actor=olga)
        with pytest.raises(RedemptionDecisionRefused, match="fulfilled already"):
            redemption_cancel(redemption=pending, actor=olga, note="too late")
        other = redemption_create(user=alice, item_code="mug", client_key="k2").redemption
        redemption_cancel(redemption=other, actor=olga, note="no")
        with pytest.raises(RedemptionDecisionRefused, match="cancelled and refunded"):
            redemption_fulfil(redemption=other, actor=olga)

    def test_a_cancel_needs_a_note(self, pending):
        with pytest.raises(RedemptionDecisionRefused, match="Say why"):
            redemption_cancel(redemption=pending, actor=operator(), note="  ")
        assert Redemption.objects.get(pk=pending.pk).status == "pending"

    def test_without_the_permission_nothing_moves(self, pending):
        nobody = UserFactory(username="eve", is_staff=True)
        with pytest.raises(PermissionDenied):
            redemption_fulfil(redemption=pending, actor=nobody)
        with pytest.raises(PermissionDenied):
            redemption_cancel(redemption=pending, actor=nobody, note="x")
        with pytest.raises(PermissionDenied):
            redemptions_fulfil(redemptions=[pending], actor=nobody)
        assert Redemption.objects.get(pk=pending.pk).status == "pending"

    def test_in_bulk_each_one_on_its_own(self, alice, coins, pending):
        olga = operator()
        second = redemption_create(user=alice, item_code="mug", client_key="k2").redemption
        third = redemption_create(user=alice, item_code="mug", client_key="k3").redemption
        redemption_fulfil(redemption=second, actor=olga)
        outcome = redemptions_cancel(redemptions=[pending, second, third], actor=olga, note="shop closed")
        assert [r.pk for r in outcome.changed] == [pending.pk, third.pk]
        assert [r.pk for r, _ in outcome.refused] == [second.pk]
        assert balance(alice, coins) == 100 - 30  # two of three refunded
        outcome = redemptions_fulfil(redemptions=Redemption.objects.all(), actor=olga)
        assert (len(outcome.changed), len(outcome.unchanged), len(outcome.refused)) == (0, 1, 2)
        assert ledger_problems() == []

"""Lots (SPEC §11): every credit a lot, debits oldest first, refunds give the same lots back, invariant 6."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import transaction

from apps.ledger.models import Account, LotTake, PointLot, PointType
from apps.ledger.services.entries import InsufficientBalanceError, account_lock, ledger_post_entry
from apps.ledger.services.lots import add_months, lot_expiry, lots_check
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def coins(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return PointType.objects.create(code="coins", name="积分", expiry=PointType.Expiry.YEAR_END)


def post(user, amount, kind, key, *, point_type=None, earned_at=None, reverses=None):
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk if point_type else None)
        return ledger_post_entry(
            account=account,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            earned_at=earned_at,
            reverses_id=reverses.pk if reverses else None,
            point_type_id=point_type.pk if point_type else None,
        )


def remaining(user, point_type):
    account = Account.objects.get(user=user, point_type=point_type)
    return [(lot.amount, lot.remaining) for lot in PointLot.objects.filter(account=account).order_by("id")]


def at(year, month, day):
    return datetime(year, month, day, 4, tzinfo=UTC)


class TestExpiryPolicy:
    def test_year_end_expires_at_the_end_of_the_year_after_earning(self, coins):
        expires = lot_expiry((coins.expiry, None), datetime(2026, 3, 5, 1, tzinfo=UTC))
        assert expires.isoformat() == "2028-01-01T00:00:00+08:00"

    def test_rolling_months_keep_the_day_or_take_the_months_last(self, settings):
        settings.TIME_ZONE = "UTC"
        assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1).date().isoformat() == "2026-02-28"
        assert lot_expiry(("rolling", 12), datetime(2026, 5, 2, 9, tzinfo=UTC)).isoformat() == "2027-05-02T09:00:00+00:00"

    def test_never_is_none(self):
        assert lot_expiry(("never", None), datetime(2026, 5, 2, tzinfo=UTC)) is None


class TestLots:
    def test_each_type_has_its_own_account_chain_and_lots(self, coins):
        alice = UserFactory()
        post(alice, 10, "award", "a1")
        post(alice, 7, "award", "c1", point_type=coins, earned_at=at(2026, 2, 1))
        main = Account.objects.get(user=alice, point_type__is_default=True)
        other = Account.objects.get(user=alice, point_type=coins)
        assert (main.balance, main.last_seq, other.balance, other.last_seq) == (10, 1, 7, 1)
        lot = PointLot.objects.get(account=other)
        assert lot.expires_at == datetime(2027, 12, 31, 16, tzinfo=UTC)
        assert lots_check() == []

    def test_debits_take_the_soonest_expiring_lots_first_and_refunds_give_them_back(self, coins):
        alice = UserFactory()
        post(alice, 5, "award", "a2", point_type=coins, earned_at=at(2026, 6, 1))
        post(alice, 5, "award", "a1", point_type=coins, earned_at=at(2025, 6, 1))  # backfilled: older lot
        spend = post(alice, -7, "spend", "s1", point_type=coins)
        assert remaining(alice, coins) == [(5, 3), (5, 0)]
        assert sorted(LotTake.objects.filter(entry=spend).values_list("amount", flat=True)) == [2, 5]
        post(alice, 7, "refund", "r1", point_type=coins, reverses=spend)
        assert remaining(alice, coins) == [(5, 5), (5, 5)]
        assert PointLot.objects.count() == 2  # the same lots, no new one
        assert lots_check() == []

    def test_a_reversal_takes_its_own_awards_lot_first(self, coins):
        alice = UserFactory()
        first = post(alice, 4, "award", "a1", point_type=coins, earned_at=at(2025, 1, 1))
        second = post(alice, 6, "award", "a2", point_type=coins, earned_at=at(2026, 1, 1))
        post(alice, -6, "reversal", "x2", point_type=coins, reverses=second, earned_at=at(2026, 1, 1))
        assert remaining(alice, coins) == [(4, 4), (6, 0)]
        assert first.trade_amount == 4 and lots_check() == []

    def test_below_zero_the_lots_are_empty_and_a_credit_first_pays_the_debt(self, coins):
        alice = UserFactory()
        award = post(alice, 5, "award", "a1", point_type=coins, earned_at=at(2026, 1, 1))
        post(alice, -3, "spend", "s1", point_type=coins)
        post(alice, -5, "reversal", "x1", point_type=coins, reverses=award, earned_at=at(2026, 1, 1))
        assert Account.objects.get(user=alice, point_type=coins).balance == -3
        assert [r for _, r in remaining(alice, coins)] == [0]
        post(alice, 10, "award", "a2", point_type=coins, earned_at=at(2026, 2, 1))
        assert remaining(alice, coins)[-1] == (10, 7)
        assert lots_check() == []

    def test_bounded_debits_never_go_below_zero(self, coins):
        alice = UserFactory()
        post(alice, 5, "award", "a1", point_type=coins)
        for kind in ("spend", "adjustment", "expiry"):
            with pytest.raises(InsufficientBalanceError):
                post(alice, -6, kind, f"{kind}-1", point_type=coins)
        assert Account.objects.get(user=alice, point_type=coins).balance == 5

    def test_earned_total_counts_awards_reversals_and_credit_adjustments_only(self, coins):
        alice = UserFactory()
        award = post(alice, 10, "award", "a1", point_type=coins)
        post(alice, 3, "adjustment", "j1", point_type=coins)
        post(alice, -2, "adjustment", "j2", point_type=coins)
        post(alice, -4, "spend", "s1", point_type=coins)
        post(alice, -10, "reversal", "x1", point_type=coins, reverses=award, earned_at=at(2026, 1, 1))
        assert Account.objects.get(user=alice, point_type=coins).earned_total == 3

    def test_verify_ledger_names_lots_that_disagree(self, coins):
        alice = UserFactory()
        post(alice, 5, "award", "a1", point_type=coins)
        PointLot.objects.update(remaining=4)
        with pytest.raises(Exception, match="1 ledger problem"):
            call_command("verify_ledger")

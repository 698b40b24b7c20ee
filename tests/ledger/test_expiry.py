"""Expiry (积分过期, SPEC §11): due lots leave their accounts once, as one entry per account and run.

The concurrent, repeated and killed runs of G14 are in tests/test_expiry_concurrency.py.
"""

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from apps.ledger.models import Account, LeaderboardTotal, LotTake, PointLot, PointType, ScoreRecord
from apps.ledger.selectors.ledger import ledger_problems
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.ledger.services.expiry import points_expire
from apps.ledger.services.lots import lots_check
from apps.notifications.models import Notification
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def coins(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return PointType.objects.create(code="coins", name="积分", expiry=PointType.Expiry.YEAR_END)


def post(user, amount, kind, key, point_type, *, earned_at=None, reverses=None):
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk)
        return ledger_post_entry(
            account=account,
            amount=amount,
            kind=kind,
            idempotency_key=key,
            earned_at=earned_at,
            reverses_id=reverses.pk if reverses else None,
            point_type_id=point_type.pk,
        )


def shanghai(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai"))


def account(user, point_type) -> Account:
    return Account.objects.get(user=user, point_type=point_type)


def expiries(user=None) -> list[int]:
    entries = ScoreRecord.objects.filter(kind=ScoreRecord.Kind.EXPIRY).order_by("id")
    if user is not None:
        entries = entries.filter(user=user)
    return list(entries.values_list("trade_amount", flat=True))


def expire(at: str, *extra: str) -> str:
    out = io.StringIO()
    call_command("expire_points", "--at", at, *extra, stdout=out, stderr=out)
    return out.getvalue()


def clean() -> None:
    assert list(ledger_problems()) == []
    assert lots_check() == []


class TestYearEnd:
    """The annual 清零: points earned in a year expire at the local midnight that ends the next year."""

    def test_across_the_year_boundary_in_shanghai(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 30, "award", "a-2023", coins, earned_at=shanghai(2023, 3, 5, 10))  # expires 2025-01-01 00:00 +08
        post(alice, 12, "award", "a-2024", coins, earned_at=shanghai(2024, 12, 31, 23, 30))  # expires 2026-01-01

        out = expire("2024-12-31T23:59:59+08:00")
        assert expiries() == [] and "Expired 0 points" in out
        # 2024-12-31 16:00 UTC is already 2025-01-01 in Shanghai: the 2023 points are gone.
        out = expire("2024-12-31T16:00:00Z")
        assert expiries(alice) == [-30]
        assert "Expired 30 coins points from 1 accounts (1 lots)" in out
        assert "as of 2025-01-01 00:00:00 CST" in out
        assert account(alice, coins).balance == 12

        # A naive --at is the site's local time; the 2024 points last until 2026 begins.
        expire("2025-12-31T23:59")
        assert expiries(alice) == [-30]
        expire("2026-01-01T00:05")
        assert expiries(alice) == [-30, -12]
        assert account(alice, coins).balance == 0
        clean()

    def test_only_what_is_left_of_due_lots_expires_and_the_spent_part_is_not_taken_twice(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 50, "award", "old", coins, earned_at=shanghai(2024, 6, 1))
        post(alice, 20, "award", "new", coins, earned_at=shanghai(2025, 6, 1))
        post(alice, -35, "spend", "shop", coins)  # the soonest-expiring lot first: 15 of the old lot left
        expire("2026-01-01T00:05")
        entry = ScoreRecord.objects.get(kind=ScoreRecord.Kind.EXPIRY)
        assert (entry.trade_amount, entry.amount_before_trade, entry.amount_after_trade) == (-15, 35, 20)
        assert sorted(PointLot.objects.values_list("amount", "remaining")) == [(20, 20), (50, 0)]
        assert not LotTake.objects.filter(entry=entry).exists()  # nothing gives an expiry back: no takes to keep
        clean()

    def test_levels_and_leaderboards_do_not_move_and_the_entry_says_expiry(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 40, "award", "old", coins, earned_at=shanghai(2024, 6, 1))
        boards = sorted(LeaderboardTotal.objects.values_list("board", "period", "points"))
        earned = account(alice, coins).earned_total
        expire("2026-01-01T00:05")
        assert account(alice, coins).earned_total == earned == 40
        assert sorted(LeaderboardTotal.objects.values_list("board", "period", "points")) == boards
        entry = ScoreRecord.objects.get(kind=ScoreRecord.Kind.EXPIRY)
        assert (entry.business_type, entry.point_type_id, entry.seq) == ("expiry", coins.pk, 2)
        clean()


class TestOnce:
    def test_a_second_run_and_the_same_time_again_post_nothing(self, coins):
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        for user in (alice, bob):
            post(user, 10, "award", f"{user}-1", coins, earned_at=shanghai(2024, 1, 1))
            post(user, 5, "award", f"{user}-2", coins, earned_at=shanghai(2024, 7, 1))
        first = points_expire(at=shanghai(2026, 1, 1, 0, 5))
        assert (first.accounts, first.lots, first.points) == (2, 4, 30)
        again = points_expire(at=shanghai(2026, 1, 1, 0, 5))
        later = points_expire(at=shanghai(2026, 1, 2))
        assert again.points == later.points == 0
        assert expiries() == [-15, -15]
        clean()

    def test_a_refund_of_points_that_expired_meanwhile_expires_at_the_next_run(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 10, "award", "old", coins, earned_at=shanghai(2024, 1, 1))
        post(alice, 10, "award", "new", coins, earned_at=shanghai(2025, 1, 1))
        spend = post(alice, -8, "spend", "hold", coins)  # all from the old lot
        points_expire(at=shanghai(2026, 1, 1, 0, 5))
        assert expiries() == [-2]
        post(alice, 8, "refund", "release", coins, reverses=spend)  # the old lot's 8 come back, already due
        assert account(alice, coins).balance == 18
        points_expire(at=shanghai(2026, 1, 1, 0, 5))  # the same run time again: its key is taken
        assert expiries() == [-2]
        points_expire(at=shanghai(2026, 1, 2, 0, 5))
        assert expiries() == [-2, -8]
        assert account(alice, coins).balance == 10
        clean()

    def test_nothing_expires_from_an_account_below_zero(self, coins):
        alice = UserFactory(username="alice")
        award = post(alice, 10, "award", "old", coins, earned_at=shanghai(2024, 1, 1))
        post(alice, -6, "spend", "shop", coins)
        post(alice, -10, "reversal", "undo", coins, reverses=award, earned_at=shanghai(2024, 1, 1))
        assert account(alice, coins).balance == -6
        assert points_expire(at=shanghai(2026, 1, 1, 0, 5)).points == 0
        assert expiries() == []
        clean()

    def test_never_expiring_points_stay(self, coins):
        exp = PointType.objects.create(code="exp", name="经验", spendable=False)
        alice = UserFactory(username="alice")
        post(alice, 10, "award", "coins", coins, earned_at=shanghai(2024, 1, 1))
        post(alice, 7, "award", "exp", exp, earned_at=shanghai(2024, 1, 1))
        points_expire(at=shanghai(2030, 1, 1))
        assert (account(alice, coins).balance, account(alice, exp).balance) == (0, 7)
        clean()


def _state() -> list[tuple]:
    """Everything an expiry writes, without the ids and times that differ from run to run."""
    entries = [
        (
            e.account_id,
            e.seq,
            e.trade_amount,
            e.amount_before_trade,
            e.amount_after_trade,
            e.kind,
            e.business_type,
            e.point_type_id,
        )
        for e in ScoreRecord.objects.filter(kind=ScoreRecord.Kind.EXPIRY).order_by("account_id", "seq")
    ]
    takes = [
        (t.entry.account_id, t.entry.seq, t.lot_id, t.amount)
        for t in LotTake.objects.filter(entry__kind=ScoreRecord.Kind.EXPIRY).select_related("entry").order_by("id")
    ]
    lots = list(PointLot.objects.order_by("id").values_list("id", "remaining"))
    accounts = list(Account.objects.order_by("id").values_list("id", "balance", "last_seq", "earned_total"))
    boards = sorted(LeaderboardTotal.objects.values_list("user_id", "board", "period", "period_start", "points"))
    # What users are told: the same notices (the entries' ids differ between the two runs, nothing else).
    notices = sorted(
        (n.user_id, n.kind, sorted((k, v) for k, v in n.data.items() if k != "entry_id"))
        for n in Notification.objects.filter(kind="points.expired")
    )
    assert notices
    return [entries, takes, lots, accounts, boards, notices]


@pytest.mark.postgres
def test_the_set_based_path_writes_what_posting_writes(coins):
    """The one-statement chunk (PostgreSQL) leaves the same entries, lots, takes and totals as ledger_post_batch."""
    rolling = PointType.objects.create(code="stars", name="星", expiry=PointType.Expiry.ROLLING, expiry_months=6)
    users = [UserFactory(username=f"u{i}") for i in range(7)]
    for i, user in enumerate(users):
        for j in range(4):
            post(user, 3 + i + j, "award", f"c-{i}-{j}", coins, earned_at=shanghai(2024, 1 + 3 * j, 1 + i))
            post(user, 2 + j, "award", f"s-{i}-{j}", rolling, earned_at=shanghai(2025, 1 + 2 * j, 3))
        if i % 2:
            post(user, -(4 + i), "spend", f"spend-{i}", coins)
        if i % 3 == 0:
            post(user, -3, "adjustment", f"debit-{i}", rolling)
    at = shanghai(2026, 1, 1, 0, 5)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        posted = points_expire(at=at, chunk_size=3, set_based=False)
        by_posting = _state()
        raise Undo
    set_based = points_expire(at=at, chunk_size=3, set_based=True)
    assert set_based.by_type == posted.by_type and set_based.points > 0
    assert _state() == by_posting
    clean()


class TestCommand:
    def test_dry_run_prints_what_a_date_will_expire_and_changes_nothing(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 10, "award", "a", coins, earned_at=shanghai(2025, 3, 1))
        out = expire("2027-01-01T00:05", "--dry-run")  # a time to come: allowed for a dry run
        assert "Would expire 10 coins points from 1 accounts (1 lots)" in out
        assert expiries() == []

    def test_a_time_in_the_future_is_refused_without_dry_run(self, coins):
        with pytest.raises(CommandError, match="in the future"):
            expire("2199-01-01T00:00")

    @pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00", "1800-01-01T00:00"])
    def test_a_bad_time_is_refused_with_a_message(self, coins, bad):
        with pytest.raises(CommandError, match="--at"):
            expire(bad)

    def test_without_at_it_runs_as_of_now(self, coins):
        alice = UserFactory(username="alice")
        post(alice, 10, "award", "a", coins, earned_at=datetime(2020, 1, 1, tzinfo=UTC))
        out = io.StringIO()
        call_command("expire_points", stdout=out)
        assert expiries(alice) == [-10]

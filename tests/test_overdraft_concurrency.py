"""G13 (SPEC §9), on one account: concurrent spends, holds, expiry runs and reversals never overdraw it.

Real threads on PostgreSQL, each with its own connection, released together at a barrier and
hammering one user's `coins` account: spends (as redemptions post them), holds placed, captured and
released (as the holds API does), the expiry job run again and again (refunds of released holds
bring back lots that expired meanwhile, which the next run expires), and reversals of the user's
awards, which alone may take the balance below zero (SPEC §5). Afterwards: no spend, expiry or
debit adjustment left the balance below zero, no held point was spent twice, and `verify_ledger`
is clean, including invariant 6 (the lots hold the balance).
"""

import io
import random
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from apps.ledger.models import Account, PointLot, PointType, ScoreRecord
from apps.ledger.services.entries import InsufficientBalanceError, account_lock, ledger_post_entry
from apps.ledger.services.expiry import points_expire
from apps.rewards.models import Hold
from apps.rewards.services.holds import HoldRefused, hold_capture, hold_place, hold_release, holds_release_expired
from apps.tracking.services.service_keys import service_key_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROUNDS = 40


@pytest.fixture
def scene(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    coins = PointType.objects.create(code="coins", name="积分", expiry=PointType.Expiry.YEAR_END)
    alice = get_user_model().objects.create_user("alice")
    awards = []
    with transaction.atomic():
        account = account_lock(user_id=alice.pk, point_type_id=coins.pk)
        for n in range(30):
            # Awards (earned now), and credits dated long ago, as backfilled points: due for expiry.
            old = n % 2 == 1
            entry = ledger_post_entry(
                account=account,
                amount=20,
                kind="adjustment" if old else "award",
                idempotency_key=f"credit-{n}",
                earned_at=datetime(2023, 1 + n % 12, 1, tzinfo=SHANGHAI) if old else None,
                point_type_id=coins.pk,
                business_type="seed",
            )
            if not old:
                awards.append(entry)
    shop = service_key_create(name="shop", may_hold=True)[0]
    return coins, alice, awards, shop


def _spender(coins, alice, seed):
    rng = random.Random(seed)
    for n in range(ROUNDS):
        try:
            with transaction.atomic():
                account = account_lock(user_id=alice.pk, point_type_id=coins.pk)
                ledger_post_entry(
                    account=account,
                    amount=-rng.randint(1, 40),
                    kind="spend",
                    idempotency_key=f"spend-{seed}-{n}",
                    point_type_id=coins.pk,
                )
        except InsufficientBalanceError:
            pass


def _holder(coins, alice, shop, seed):
    rng = random.Random(seed)
    held = []
    for n in range(ROUNDS):
        try:
            held.append(
                hold_place(
                    service_key=shop,
                    user=alice,
                    point_type=coins,
                    amount=rng.randint(1, 40),
                    client_key=f"order-{seed}-{n}",
                    expires_in_s=600,
                ).hold.pk
            )
        except HoldRefused as refused:
            assert refused.code == "insufficient_points", refused.message
        if held and rng.random() < 0.6:
            hold_id = held.pop(rng.randrange(len(held)))
            try:
                (hold_release if rng.random() < 0.7 else hold_capture)(service_key=shop, hold_id=hold_id)
            except HoldRefused as refused:  # beat released it first
                assert refused.code == "hold_expired", refused.message


def _expirer():
    for n in range(ROUNDS // 4):
        points_expire(at=timezone.now(), chunk_size=1)
        if n % 3 == 0:
            holds_release_expired(now=timezone.now() + timedelta(hours=1))


def _reverser(coins, awards):
    for award in awards[::2]:
        with transaction.atomic():
            account = account_lock(user_id=award.user_id, point_type_id=coins.pk)
            ledger_post_entry(
                account=account,
                amount=-award.trade_amount,
                kind="reversal",
                idempotency_key=f"undo-{award.pk}",
                reverses_id=award.pk,
                earned_at=award.created_at,
                point_type_id=coins.pk,
            )


def test_concurrent_spends_holds_expiry_and_reversals_never_overdraw(scene):
    coins, alice, awards, shop = scene
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def thread(work, *args):
        def run():
            try:
                connection.ensure_connection()
                barrier.wait(timeout=30)
                work(*args)
            except BaseException as exc:  # re-raised in the test below
                errors.append(exc)
            finally:
                connection.close()

        return threading.Thread(target=run)

    threads = [
        thread(_spender, coins, alice, 1),
        thread(_spender, coins, alice, 2),
        thread(_holder, coins, alice, shop, 3),
        thread(_expirer),
        thread(_reverser, coins, awards),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors

    entries = ScoreRecord.objects.filter(account__point_type=coins)
    bounded = entries.filter(kind__in=("spend", "expiry", "adjustment"), trade_amount__lt=0)
    assert bounded.exists() and not bounded.filter(amount_after_trade__lt=0).exists()
    kinds = set(entries.values_list("kind", flat=True))
    assert {"spend", "refund", "expiry", "reversal"} <= kinds, kinds
    # Each hold moved its points once: a spend, and at most one refund that reverses exactly it.
    for hold in Hold.objects.select_related("spend_entry", "refund_entry"):
        assert hold.spend_entry.trade_amount == -hold.amount
        if hold.status in (Hold.Status.RELEASED, Hold.Status.EXPIRED):
            assert hold.refund_entry.reverses_id == hold.spend_entry_id and hold.refund_entry.trade_amount == hold.amount
        else:
            assert hold.refund_entry is None
    account = Account.objects.get(user=alice, point_type=coins)
    if account.balance >= 0:
        assert sum(PointLot.objects.filter(account=account).values_list("remaining", flat=True)) == account.balance
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()

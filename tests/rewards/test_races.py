"""G13 under real concurrency on PostgreSQL: no oversell, no overdraft, a repeated key posts once.

Each racer is a thread with its own database connection (Django opens one per thread), so the
transactions truly overlap in PostgreSQL; they start together at a barrier. A handful of threads
share the users, as web processes share requests: the database sees that many redemptions at
once, whatever the number of users.
"""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from apps.ledger.models import Account, ScoreRecord
from apps.ledger.selectors.ledger import ledger_problems
from apps.ledger.services.entries import EntrySpec, accounts_ensure, accounts_lock, ledger_post_batch
from apps.ledger.services.lots import lots_check
from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.redemptions import redemption_cancel, redemption_create
from tests.factories import UserFactory
from tests.rewards.conftest import give, make_item
from tests.test_concurrency import create_users

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8  # connections at once: the machine's PostgreSQL is shared, and 8 keep the item's row contended


def credit_all(user_ids: list[int], amount: int, point_type) -> None:
    """One award of `amount` to each user, in one batch (as the workers post them)."""
    accounts_ensure(user_ids=user_ids)
    with transaction.atomic():
        main = accounts_lock(user_ids=user_ids)
        ledger_post_batch(
            postings=[
                (main[u], [EntrySpec(amount=amount, kind="award", idempotency_key=f"seed:{u}", point_type_id=point_type.pk)])
                for u in user_ids
            ]
        )


def race(calls: list[Callable], threads: int = THREADS) -> list:
    """Run the calls on `threads` threads (call i on thread i % threads), all starting at once; return each outcome."""
    barrier = threading.Barrier(threads)
    outcomes: list = [None] * len(calls)

    def run(index: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait()
            for position in range(index, len(calls), threads):
                try:
                    outcomes[position] = calls[position]()
                except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
                    outcomes[position] = exc
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a racer is stuck"
    return outcomes


def kinds(outcomes: list) -> Counter:
    return Counter(o.code if isinstance(o, RedemptionRefused) else type(o).__name__ for o in outcomes)


def test_g13_a_thousand_users_racing_for_a_hundred_units_get_exactly_a_hundred(coins):
    users = create_users("racer", 1000)
    credit_all(users, 50, coins)
    item = make_item(coins, code="flash", cost=30, stock=100)
    racers = list(get_user_model().objects.filter(pk__in=users).order_by("?"))

    started = time.monotonic()
    outcomes = race([lambda u=u: redemption_create(user=u, item_code="flash", client_key=f"flash-{u.pk}") for u in racers])
    elapsed = time.monotonic() - started

    assert kinds(outcomes) == {"Redeemed": 100, "out_of_stock": 900}, [o for o in outcomes if isinstance(o, Exception)][:3]
    assert RewardItem.all_objects.get(pk=item.pk).redeemed_count == 100
    winners = set(Redemption.objects.values_list("user_id", flat=True))
    assert len(winners) == 100 == Redemption.objects.count()
    spends = ScoreRecord.objects.filter(kind="spend")
    assert spends.count() == 100 and set(spends.values_list("user_id", flat=True)) == winners
    balances = Counter(Account.objects.filter(point_type=coins).values_list("balance", flat=True))
    assert balances == {20: 100, 50: 900}
    assert ledger_problems() == [] and lots_check() == []
    assert elapsed < 60, f"{elapsed:.1f} s"


def test_concurrent_spends_on_one_account_never_go_below_zero(alice, coins):
    give(alice, 100, coins)
    make_item(coins, code="sticker", cost=7)  # unlimited stock: only the balance limits
    user = type(alice).objects.get(pk=alice.pk)
    outcomes = race([lambda n=n: redemption_create(user=user, item_code="sticker", client_key=f"s{n}") for n in range(40)])
    assert kinds(outcomes) == {"Redeemed": 14, "insufficient_points": 26}
    assert Account.objects.get(user=alice, point_type=coins).balance == 2
    afters = ScoreRecord.objects.filter(user=alice, point_type=coins).values_list("amount_after_trade", flat=True)
    assert min(afters) >= 0
    assert ledger_problems() == [] and lots_check() == []


def test_spends_and_cancels_racing_on_one_account_keep_it_exact(alice, coins):
    give(alice, 60, coins)
    make_item(coins, code="pin", cost=20, stock=3)
    olga = UserFactory(username="olga", is_staff=True, is_superuser=True)  # a flushed database has no groups
    first = [redemption_create(user=alice, item_code="pin", client_key=f"first{n}").redemption for n in range(3)]
    user = type(alice).objects.get(pk=alice.pk)
    calls = [lambda r=r: redemption_cancel(redemption=r, actor=olga, note="changed my mind") for r in first]
    calls += [lambda n=n: redemption_create(user=user, item_code="pin", client_key=f"again{n}") for n in range(6)]
    race(calls, threads=len(calls))
    live = Redemption.objects.exclude(status="cancelled").count()
    item = RewardItem.all_objects.get(code="pin")
    assert item.redeemed_count == live <= 3
    assert Account.objects.get(user=alice, point_type=coins).balance == 60 - 20 * live >= 0
    assert ledger_problems() == [] and lots_check() == []


def test_the_same_key_sent_at_once_redeems_once(alice, coins):
    give(alice, 100, coins)
    make_item(coins, code="mug", cost=30, stock=10)
    user = type(alice).objects.get(pk=alice.pk)
    key = str(uuid.uuid4())
    outcomes = race([lambda: redemption_create(user=user, item_code="mug", client_key=key)] * 8)
    assert kinds(outcomes) == {"Redeemed": 8}
    assert Counter(o.created for o in outcomes) == {True: 1, False: 7}
    assert {o.redemption.pk for o in outcomes} == {Redemption.objects.get().pk}
    assert ScoreRecord.objects.filter(kind="spend").count() == 1
    assert Account.objects.get(user=alice, point_type=coins).balance == 70
    assert RewardItem.all_objects.get(code="mug").redeemed_count == 1


def test_a_per_user_limit_holds_when_one_user_races_themselves(alice, coins):
    give(alice, 1000, coins)
    make_item(coins, code="daily", cost=10, per_user_limit=2, limit_period=RewardItem.Period.DAY)
    user = type(alice).objects.get(pk=alice.pk)
    outcomes = race([lambda n=n: redemption_create(user=user, item_code="daily", client_key=f"d{n}") for n in range(16)])
    assert kinds(outcomes) == {"Redeemed": 2, "limit_reached": 14}
    assert Account.objects.get(user=alice, point_type=coins).balance == 980

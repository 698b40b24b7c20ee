"""G12 for shop items: an operator's save of a live item never overwrites `redeemed_count`, which
the workers own (a redemption takes stock by a conditional UPDATE under the row lock).

Here a "redemption" is exactly that UPDATE, run in another thread on its own database connection
and committed while the operator's request holds an item read before it. Every path an operator
saves by (the service, the admin's change form, a sheet import) must leave the count exact; and
with the stock moved up and down while redemptions race, the database's no-oversell check never
fails under an operator's save (the form validates the stock against the count under the row lock).
"""

import io
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.rewards.models import RewardItem
from apps.rewards.services.items import reward_item_update
from tests.factories import UserFactory
from tests.rewards.item_factory import RewardItemFactory, coins

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TAKE_ONE = (
    "UPDATE rewards_rewarditem SET redeemed_count = redeemed_count + 1 "
    "WHERE id = %s AND status = 'active' AND (stock IS NULL OR redeemed_count < stock)"
)


def redeem_elsewhere(item_id: int, times: int = 1) -> int:
    """`times` redemptions committed by another connection (a worker); how many took stock."""
    taken = []

    def run() -> None:
        try:
            for _ in range(times):
                with connection.cursor() as cursor:
                    cursor.execute(TAKE_ONE, [item_id])
                    taken.append(cursor.rowcount)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the redemption waited for a lock it never got"
    return sum(taken)


@pytest.fixture
def mug():
    return RewardItemFactory(code="mug", name="A mug", cost=500, point_type_id=coins().pk, stock=10, status="active")


def count_of(item) -> int:
    return RewardItem.all_objects.values_list("redeemed_count", flat=True).get(pk=item.pk)


def test_a_service_save_keeps_the_redemptions_made_meanwhile(mug):
    stale = RewardItem.objects.get(pk=mug.pk)  # the operator's request read it: nothing redeemed yet
    assert redeem_elsewhere(mug.pk, 3) == 3
    reward_item_update(item=stale, name="A mug (typo fixed)", stock=12)
    stored = RewardItem.objects.get(pk=mug.pk)
    assert (stored.redeemed_count, stored.name, stored.stock) == (3, "A mug (typo fixed)", 12)


def test_an_admin_save_keeps_the_redemptions_made_meanwhile(mug, monkeypatch):
    client = Client()
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    real_clean = RewardItem.clean
    raced = []

    def clean_while_users_redeem(item):
        # The admin read the item before these redemptions; its form is being validated now.
        if not raced:
            raced.append(redeem_elsewhere(item.pk, 4))
        return real_clean(item)

    monkeypatch.setattr(RewardItem, "clean", clean_while_users_redeem)
    data = {
        "code": "mug",
        "name": "A big mug",
        "description": "",
        "stock": 10,
        "per_user_limit": "",
        "limit_period": "none",
        "start_time_0": "",
        "start_time_1": "",
        "end_time_0": "",
        "end_time_1": "",
        "position": 0,
    }
    response = client.post(reverse("admin:rewards_rewarditem_change", args=[mug.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert raced == [4]
    stored = RewardItem.objects.get(pk=mug.pk)
    assert (stored.redeemed_count, stored.name) == (4, "A big mug")


def test_a_sheet_import_keeps_the_redemptions_made_meanwhile(mug, monkeypatch, tmp_path):
    real_clean = RewardItem.clean
    taken = []

    def clean_while_users_redeem(item):
        taken.append(redeem_elsewhere(item.pk, 2))  # the sheet's row was read before these
        return real_clean(item)

    monkeypatch.setattr(RewardItem, "clean", clean_while_users_redeem)
    path = tmp_path / "items.csv"
    path.write_text("code,name,cost,point_type,stock,status\nmug,A big mug,500,coins,10,active\n", encoding="utf-8")
    call_command("import_rules", str(path), "--resource", "items", stdout=io.StringIO(), stderr=io.StringIO())
    stored = RewardItem.objects.get(pk=mug.pk)
    assert stored.name == "A big mug"
    assert stored.redeemed_count == sum(taken) == 4  # validated twice (preview, then applying): 2 each time


def test_redemptions_and_an_operator_racing_on_one_item_keep_the_count_exact():
    """Real threads: an operator saves the item over and over from stale reads, moving its stock between
    30 and 60, while users redeem it 200 times. Every redemption that took stock is counted, the count
    never passes the stock, and the operator's saves are either applied or refused with a message."""
    item = RewardItemFactory(code="mug", name="A mug", cost=5, point_type_id=coins().pk, stock=60, status="active")
    done = threading.Event()
    saves, refusals, errors = [], [], []

    def operator() -> None:
        try:
            n = 0
            while not done.is_set():
                stale = RewardItem.objects.get(pk=item.pk)
                try:
                    reward_item_update(item=stale, name=f"A mug ({n})", stock=30 if n % 2 else 60)
                    saves.append(n)
                except ValidationError as exc:
                    assert list(exc.message_dict) == ["stock"], exc.message_dict
                    refusals.append(n)
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=operator)
    thread.start()
    taken = 0
    try:
        for _ in range(200):
            with connection.cursor() as cursor:
                cursor.execute(TAKE_ONE, [item.pk])
                taken += cursor.rowcount
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    stored = RewardItem.objects.get(pk=item.pk)
    assert stored.redeemed_count == taken
    assert 30 <= taken <= 60 and stored.redeemed_count <= stored.stock
    assert saves, "the operator never saved: the race did not happen"
    assert stored.history.filter(history_change_reason="changed").count() == len(saves)

"""The site's shop page: what a user sees, and redeeming from it (SPEC §11)."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import Account, ScoreRecord
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.redemptions import redemption_cancel, redemption_create
from tests.rewards.conftest import give, make_item, operator

pytestmark = pytest.mark.django_db


def page(client) -> str:
    response = client.get(reverse("shop"))
    assert response.status_code == 200
    return response.content.decode()


def item_block(html: str, code: str) -> str:
    found = re.search(rf'<article class="card item[^"]*" id="item-{code}">(.*?)</article>', html, re.S)
    assert found, f"no item {code} on the page"
    return found.group(1)


def form_key(html: str, code: str) -> str:
    return re.search(r'name="key" value="([^"]+)"', item_block(html, code)).group(1)


def redeem(client, code: str, key: str, *, follow=True):
    return client.post(reverse("shop-redeem"), {"item": code, "key": key}, follow=follow)


@pytest.fixture
def shop(coins, exp):
    make_item(coins, code="mug", name="Mug", cost=30, stock=5, description="A mug with our logo.")
    make_item(coins, code="hoodie", name="Hoodie", cost=500, position=2)
    make_item(coins, code="pin", name="Pin", cost=5, min_level=exp.levels.get(name="Regular"), position=3)
    make_item(coins, code="draft", name="Draft", cost=1, status=RewardItem.Status.EDITING)
    make_item(coins, code="later", name="Later", cost=1, start_time=timezone.now() + timedelta(days=1))
    make_item(coins, code="daily", name="Daily", cost=1, per_user_limit=1, limit_period="day", position=4)


def test_a_visitor_sees_the_items_in_the_shop_and_is_asked_to_log_in(client, shop):
    html = page(client)
    assert [code for code in re.findall(r'id="item-([\w-]+)"', html)] == ["mug", "hoodie", "pin", "daily"]
    mug = item_block(html, "mug")
    assert "A mug with our logo." in mug and ">30</strong> Coins" in mug and "5 left" in mug
    assert "unlimited stock" in item_block(html, "hoodie")
    assert "level Regular (Experience) or above" in item_block(html, "pin")
    assert "at most 1 per person a day" in item_block(html, "daily")
    assert 'id="log-in-to-redeem"' in html and "<form" not in mug


def test_the_shop_is_in_the_sites_navigation(client, db):
    assert f'href="{reverse("shop")}"' in client.get(reverse("home")).content.decode()


def test_a_user_sees_balances_levels_and_why_not_for_each_item(client, alice, shop, coins, exp):
    give(alice, 100, coins)
    give(alice, 120, exp)
    client.force_login(alice)
    html = page(client)
    coins_row = re.search(r'id="standing-coins">(.*?)</tr>', html, re.S).group(1)
    exp_row = re.search(r'id="standing-exp">(.*?)</tr>', html, re.S).group(1)
    assert 'class="num balance">100<' in coins_row
    assert "Regular" in exp_row and "380 more earned to Veteran" in exp_row
    assert "disabled" not in item_block(html, "mug")
    hoodie = item_block(html, "hoodie")
    assert "disabled" in hoodie and "Hoodie costs 500 Coins; you have 100." in hoodie
    assert "disabled" not in item_block(html, "pin")  # Regular reached


def test_redeeming_from_the_shop_says_so_and_shows_the_new_balance_and_the_redemption(client, alice, shop, coins):
    give(alice, 100, coins)
    client.force_login(alice)
    response = redeem(client, "mug", form_key(page(client), "mug"))
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("shop")
    assert "You redeemed Mug for 30 Coins; 70 Coins left." in html
    assert 'class="num balance">70<' in html
    assert "4 left" in item_block(html, "mug")
    rows = re.search(r'id="my-redemptions">(.*?)</section>', html, re.S).group(1)
    assert "Mug" in rows and "pending" in rows


def test_the_same_form_sent_twice_redeems_once(client, alice, shop, coins):
    give(alice, 100, coins)
    client.force_login(alice)
    key = form_key(page(client), "mug")
    redeem(client, "mug", key)
    html = redeem(client, "mug", key).content.decode()
    assert "You redeemed Mug (this form was sent twice: nothing more was spent); 70 Coins left." in html
    assert Redemption.objects.count() == 1 and ScoreRecord.objects.filter(kind="spend").count() == 1
    assert Account.objects.get(user=alice, point_type=coins).balance == 70
    assert form_key(html, "mug") != key  # the next form redeems anew


def test_a_refusal_is_shown_and_nothing_is_spent(client, alice, shop, coins):
    give(alice, 100, coins)
    client.force_login(alice)
    html = redeem(client, "hoodie", "k1").content.decode()
    assert 'class="error">Hoodie costs 500 Coins; you have 100.' in html
    assert not Redemption.objects.exists()
    html = redeem(client, "draft", "k2").content.decode()
    assert "Draft is not in the shop yet." in html


def test_a_cancelled_redemption_shows_its_note(client, alice, shop, coins):
    give(alice, 100, coins)
    redemption = redemption_create(user=alice, item_code="mug", client_key="k").redemption
    redemption_cancel(redemption=redemption, actor=operator(), note="Out of mugs, sorry.")
    client.force_login(alice)
    html = page(client)
    assert "cancelled" in html and "refunded: Out of mugs, sorry." in html
    assert 'class="num balance">100<' in html


def test_redeem_opened_with_get_goes_to_the_shop_and_a_visitor_to_log_in(client, shop):
    response = client.get(reverse("shop-redeem"))
    assert response.status_code == 302 and response["Location"] == reverse("shop")
    response = client.post(reverse("shop-redeem"), {"item": "mug", "key": "k"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not Redemption.objects.exists()


def test_the_form_needs_the_csrf_token(alice, shop, coins):
    from django.test import Client

    give(alice, 100, coins)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse("shop-redeem"), {"item": "mug", "key": "k"}).status_code == 403
    assert not Redemption.objects.exists()

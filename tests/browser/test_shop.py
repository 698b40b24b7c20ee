"""A member redeems in the shop: sees the price, their balance and level, redeems once, sees the new balance."""

import pytest

from apps.ledger.models import Account, Level, PointType, ScoreRecord
from apps.rewards.models import Redemption
from tests.browser.conftest import PASSWORD
from tests.factories import UserFactory
from tests.rewards.conftest import give, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_redeems_in_the_shop_and_sees_the_new_balance_and_their_level(page, live_server, screenshot, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    coins = PointType.objects.create(code="coins", name="Coins", expiry=PointType.Expiry.YEAR_END)
    exp = PointType.objects.create(code="exp", name="Experience", spendable=False)
    Level.objects.create(point_type=exp, name="Newcomer", threshold=0)
    regular = Level.objects.create(point_type=exp, name="Regular", threshold=100)
    Level.objects.create(point_type=exp, name="Veteran", threshold=500)
    make_item(coins, code="mug", name="Mug", cost=30, stock=5, description="A mug with our logo.")
    make_item(coins, code="pin", name="Pin", cost=5, min_level=regular, position=1)
    make_item(coins, code="hoodie", name="Hoodie", cost=500, position=2)
    alice = UserFactory(username="alice", password=PASSWORD)
    give(alice, 100, coins)
    give(alice, 120, exp)

    page.goto(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#nav-shop")
    page.wait_for_url(f"{live_server.url}/shop/")

    assert page.locator("#standing-coins .balance").inner_text() == "100"
    assert page.locator("#standing-exp .level-name").inner_text() == "Regular"
    assert "380 more earned to Veteran" in page.locator("#standing-exp").inner_text()
    assert page.locator("#item-hoodie .redeem-button").is_disabled()
    assert "Hoodie costs 500 Coins; you have 100." in page.locator("#item-hoodie").inner_text()
    assert "5 left" in page.locator("#item-mug").inner_text()
    screenshot(page, "shop")

    page.locator("#item-mug .redeem-button").click()
    page.wait_for_url(f"{live_server.url}/shop/")
    assert "You redeemed Mug for 30 Coins; 70 Coins left." in page.locator(".messages").inner_text()
    assert page.locator("#standing-coins .balance").inner_text() == "70"
    assert page.locator("#standing-exp .level-name").inner_text() == "Regular"  # spending never demotes
    assert "4 left" in page.locator("#item-mug").inner_text()
    mine = page.locator("#my-redemptions tr.redemption")
    assert mine.count() == 1 and "Mug" in mine.first.inner_text() and "pending" in mine.first.inner_text()
    screenshot(page, "redeemed")

    # The same form sent twice at once (an impatient double submit; Chromium sends a double click's
    # second submit only sometimes, so the page sends both itself): its key redeems once.
    statuses = page.evaluate(
        """() => {
            const form = document.querySelector("#item-pin form.redeem");
            const send = () => fetch(form.action, {method: "POST", body: new FormData(form), redirect: "manual"});
            return Promise.all([send(), send()]).then(answers => answers.map(a => a.type));
        }"""
    )
    assert statuses == ["opaqueredirect", "opaqueredirect"]  # both answered with the redirect to the shop
    page.goto(f"{live_server.url}/shop/")
    # The two answers' messages race for the same cookie; whichever stayed says it is redeemed.
    assert "You redeemed Pin" in page.locator(".messages").inner_text()
    assert Redemption.objects.filter(item__code="pin").count() == 1
    assert ScoreRecord.objects.filter(kind="spend").count() == 2
    assert page.locator("#standing-coins .balance").inner_text() == "65"
    assert Account.objects.get(user=alice, point_type=coins).balance == 65

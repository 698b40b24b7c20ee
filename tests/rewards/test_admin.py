"""The redemption queue in the admin (SPEC §11): list, filters, search, fulfil and cancel after a confirmation page."""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.ledger.models import Account, ScoreRecord
from apps.rewards.models import Redemption, RewardItem
from apps.rewards.services.redemptions import redemption_create
from tests.factories import UserFactory
from tests.rewards.conftest import give, make_item, operator

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rewards_redemption_changelist")


def member(group: str, username: str):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def queue(coins):
    """Alice and Bob each redeemed a mug; Alice also a pen."""
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    give(alice, 100, coins), give(bob, 100, coins)
    make_item(coins, code="mug", name="Mug", cost=30, stock=10)
    make_item(coins, code="pen", name="Pen", cost=5)
    return {
        "alice-mug": redemption_create(user=alice, item_code="mug", client_key="a1").redemption,
        "bob-mug": redemption_create(user=bob, item_code="mug", client_key="b1").redemption,
        "alice-pen": redemption_create(user=alice, item_code="pen", client_key="a2").redemption,
    }


def rows(html: str) -> list[str]:
    """The list's result rows (each has a cell of the first column, the redemption's time)."""
    return re.findall(r'class="field-created_at[ "]', html)


def status(redemption) -> str:
    return Redemption.objects.get(pk=redemption.pk).status


def test_operators_see_the_queue_filtered_and_searched(client, queue):
    client.force_login(operator())
    html = client.get(CHANGELIST).content.decode()
    assert len(rows(html)) == 3 and "pending" in html
    mug = RewardItem.objects.get(code="mug")
    assert len(rows(client.get(CHANGELIST, {"item__id__exact": mug.pk}).content.decode())) == 2
    assert len(rows(client.get(CHANGELIST, {"q": "bo"}).content.decode())) == 1
    assert len(rows(client.get(CHANGELIST, {"status__exact": "fulfilled"}).content.decode())) == 0
    point_type = queue["bob-mug"].point_type
    assert len(rows(client.get(CHANGELIST, {"point_type__id__exact": point_type.pk}).content.decode())) == 3


def test_bulk_fulfil_asks_first_then_fulfils(client, queue):
    client.force_login(operator())
    selected = [queue["alice-mug"].pk, queue["bob-mug"].pk]
    asked = client.post(CHANGELIST, {"action": "fulfil_selected", "_selected_action": selected})
    page = asked.content.decode()
    assert asked.status_code == 200 and 'id="confirm-step"' in page and "has received Mug" in page
    assert status(queue["alice-mug"]) == "pending"
    done = client.post(CHANGELIST, {"action": "fulfil_selected", "_selected_action": selected, "post": "yes"}, follow=True)
    assert "Fulfilled 2 redemptions." in done.content.decode()
    assert [status(queue[k]) for k in ("alice-mug", "bob-mug", "alice-pen")] == ["fulfilled", "fulfilled", "pending"]


def test_bulk_cancel_asks_for_a_note_then_refunds(client, queue, coins):
    client.force_login(operator())
    selected = [queue["alice-mug"].pk, queue["alice-pen"].pk]
    page = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": selected}).content.decode()
    assert 'name="comment"' in page and "Note for the user" in page and "30 Coins are refunded to alice" in page
    without_note = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": selected, "post": "yes"})
    assert "Say why the redemption is cancelled" in without_note.content.decode()
    assert status(queue["alice-mug"]) == "pending"
    done = client.post(
        CHANGELIST,
        {"action": "cancel_selected", "_selected_action": selected, "post": "yes", "comment": "Shop closed for stocktaking."},
        follow=True,
    )
    assert "Cancelled and refunded 2 redemptions." in done.content.decode()
    assert Account.objects.get(user__username="alice", point_type=coins).balance == 100
    assert RewardItem.objects.get(code="mug").redeemed_count == 1
    assert set(Redemption.objects.filter(status="cancelled").values_list("note", flat=True)) == {"Shop closed for stocktaking."}


def test_a_redemption_that_is_not_pending_is_left_as_it_is(client, queue):
    client.force_login(operator())
    client.post(CHANGELIST, {"action": "fulfil_selected", "_selected_action": [queue["bob-mug"].pk], "post": "yes"})
    page = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": [queue["bob-mug"].pk]}).content.decode()
    assert "only a pending redemption can be fulfilled or cancelled" in page and 'id="confirm-step"' not in page


def test_one_redemptions_page_has_fulfil_and_cancel_with_their_confirmation_pages(client, queue, coins):
    client.force_login(operator())
    redemption = queue["bob-mug"]
    page = client.get(reverse("admin:rewards_redemption_change", args=[redemption.pk])).content.decode()
    assert 'id="decide-fulfil"' in page and 'id="decide-cancel"' in page
    cancel_url = reverse("admin:rewards_redemption_cancel", args=[redemption.pk])
    asked = client.get(cancel_url).content.decode()
    assert "One Mug goes back to the stock." in asked and 'name="comment"' in asked
    assert status(redemption) == "pending"
    client.post(cancel_url, {"comment": "Wrong size."})
    assert status(redemption) == "cancelled"
    assert Account.objects.get(user__username="bob", point_type=coins).balance == 100
    page = client.get(reverse("admin:rewards_redemption_change", args=[redemption.pk])).content.decode()
    assert 'id="decide-fulfil"' not in page and "Wrong size." in page
    refund = ScoreRecord.objects.get(kind="refund")
    assert refund.serial_number in page


def test_auditors_see_the_queue_but_cannot_move_it(client, queue):
    client.force_login(member("auditors", "audrey"))
    html = client.get(CHANGELIST).content.decode()
    assert len(rows(html)) == 3 and "fulfil_selected" not in html
    redemption = queue["alice-mug"]
    assert (
        'id="decide-fulfil"' not in client.get(reverse("admin:rewards_redemption_change", args=[redemption.pk])).content.decode()
    )
    assert client.get(reverse("admin:rewards_redemption_fulfil", args=[redemption.pk])).status_code == 403
    client.post(CHANGELIST, {"action": "fulfil_selected", "_selected_action": [redemption.pk], "post": "yes"})
    assert status(redemption) == "pending"


def test_rule_editors_do_not_see_the_queue(client, queue):
    client.force_login(member("rule editors", "eddie"))
    assert client.get(CHANGELIST).status_code == 403


def test_the_shop_section_lists_the_queue(client, queue):
    client.force_login(operator())
    html = client.get(reverse("admin:jifen_section", kwargs={"key": "shop"})).content.decode()
    assert CHANGELIST in html
    assert "Shop" in client.get(reverse("admin:index")).content.decode()


def test_the_dashboard_counts_the_redemptions_waiting_and_links_to_them(client, queue):
    client.force_login(operator())
    page = client.get(reverse("admin:index")).content.decode()
    figure = re.search(r'<li id="figure-redemptions".*?</li>', page, re.S).group(0)
    assert f"{CHANGELIST}?status__exact=pending" in figure and ">3<" in figure and "redemptions wait to be fulfilled" in figure
    client.force_login(member("rule editors", "eddie"))
    assert 'id="figure-redemptions"' not in client.get(reverse("admin:index")).content.decode()

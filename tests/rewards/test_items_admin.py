"""The shop items' admin: list, form, workflow buttons and actions with confirmation pages, frozen
fields, history, only drafts deletable, the review queue and the Shop section (SPEC §7, §11)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.review import ReviewState
from apps.ledger.point_types import default_point_type_id
from apps.rewards.models import RewardItem
from apps.rewards.services.items import reward_item_submit_for_review
from apps.rules.selectors.review import review_waiting_count
from tests.rewards.item_factory import RewardItemFactory, coins, exp, level
from tests.test_roles import member

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rewards_rewarditem_changelist")
QUEUE = reverse("admin:rules_scorerule_review")


def change_url(item) -> str:
    return reverse("admin:rewards_rewarditem_change", args=[item.pk])


def workflow_url(item, step: str) -> str:
    return reverse("admin:rewards_rewarditem_workflow", args=[item.pk, step])


def reload(item) -> RewardItem:
    return RewardItem.all_objects.get(pk=item.pk)


def form_data(item=None, **changes) -> dict:
    data = {
        "code": item.code if item else "mug",
        "name": item.name if item else "A mug",
        "description": "",
        "cost": item.cost if item else 500,
        "point_type": item.point_type_id if item else coins().pk,
        "min_level": "",
        "stock": item.stock if item and item.stock is not None else "",
        "per_user_limit": "",
        "limit_period": "none",
        "start_time_0": "",
        "start_time_1": "",
        "end_time_0": "",
        "end_time_1": "",
        "position": 0,
    }
    return {**data, **changes}


@pytest.fixture
def shop():
    mug = RewardItemFactory(code="mug", name="A mug", cost=500, point_type_id=coins().pk, stock=10, status="active")
    RewardItem.objects.filter(pk=mug.pk).update(redeemed_count=10)
    RewardItemFactory(code="tee", name="A T-shirt", cost=2000, status="editing")
    RewardItemFactory(code="pen", name="A pen", cost=20, status="retired")
    return mug


class TestChangelist:
    @pytest.mark.parametrize(
        ("query", "shown"),
        [
            ({}, {"mug", "tee", "pen"}),
            ({"status__exact": "active"}, {"mug"}),
            ({"status__exact": "editing"}, {"tee"}),
            ({"q": "shirt"}, {"tee"}),
        ],
    )
    def test_filters_and_search(self, client, operator, shop, query, shown):
        page = client.get(CHANGELIST, query).content.decode()
        assert {code for code in ("mug", "tee", "pen") if f">{code}</a>" in page} == shown

    def test_filter_by_point_type(self, client, operator, shop):
        page = client.get(CHANGELIST, {"point_type__id__exact": coins().pk}).content.decode()
        assert ">mug</a>" in page and ">tee</a>" not in page
        page = client.get(CHANGELIST, {"point_type__id__exact": default_point_type_id()}).content.decode()
        assert ">mug</a>" not in page and ">tee</a>" in page

    def test_badges_price_and_stock(self, client, operator, shop):
        page = client.get(CHANGELIST).content.decode()
        for status in ("active", "editing", "retired"):
            assert f'<span class="jifen-badge jifen-badge-{status}">{status}</span>' in page
        assert "500 Coins" in page
        assert '<strong class="jifen-sold-out">0 left of 10</strong>' in page
        assert "unlimited (0 redeemed)" in page

    def test_actions_go_through_a_confirmation_page_then_the_services(self, client, operator, shop):
        tee = RewardItem.objects.get(code="tee")
        page = client.post(CHANGELIST, {"action": "activate", "_selected_action": [tee.pk]}).content.decode()
        assert "It costs 2,000 Points" in page and 'name="post" value="yes"' in page
        assert reload(tee).status == "editing"
        client.post(CHANGELIST, {"action": "activate", "_selected_action": [tee.pk], "post": "yes"})
        client.post(CHANGELIST, {"action": "retire", "_selected_action": [shop.pk], "post": "yes"})
        client.post(CHANGELIST, {"action": "copy_as_draft", "_selected_action": [shop.pk]})
        assert dict(RewardItem.objects.values_list("code", "status")) == {
            "mug": "retired",
            "tee": "active",
            "pen": "retired",
            "mug-copy": "editing",
        }
        assert reload(shop).history.latest().history_change_reason == "active → retired"

    def test_no_bulk_delete(self, client, operator, shop):
        page = client.get(CHANGELIST).content.decode()
        assert 'value="delete_selected"' not in page


class TestChangePage:
    def test_add_makes_a_draft_with_its_image_and_author(self, client, operator, settings, tmp_path):
        settings.MEDIA_ROOT = tmp_path
        image = SimpleUploadedFile("mug.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")
        response = client.post(reverse("admin:rewards_rewarditem_add"), form_data(image=image))
        assert response.status_code == 302, response.content.decode()[:3000]
        item = RewardItem.objects.get(code="mug")
        assert (item.status, item.cost, item.point_type, item.redeemed_count) == ("editing", 500, coins(), 0)
        assert item.image.name.startswith("rewards/mug") and (tmp_path / item.image.name).exists()
        assert item.history.latest().history_user == operator
        assert item.history.latest().history_change_reason == "created in the admin"

    def test_a_bad_form_explains_itself_and_changes_nothing(self, client, operator):
        item = RewardItemFactory(code="mug", cost=500, point_type_id=coins().pk)
        data = form_data(
            item,
            cost=0,
            point_type=exp().pk,
            limit_period="day",
            start_time_0="2026-12-02",
            start_time_1="00:00",
            end_time_0="2026-12-01",
            end_time_1="00:00",
        )
        page = client.post(change_url(item), data).content.decode()
        assert "Points must be a positive whole number." in page
        assert "Select a valid choice." in page  # exp cannot be spent: it is not offered
        assert "The end of the window must be after its start." in page
        assert reload(item).cost == 500

    def test_point_types_offered_are_the_spendable_ones_and_levels_name_their_type(self, client, operator):
        level(exp(), "Gold", 1000)
        spendable = coins()
        page = client.get(reverse("admin:rewards_rewarditem_add")).content.decode()
        assert f'<option value="{spendable.pk}">Coins</option>' in page
        assert f'value="{exp().pk}"' not in page
        assert "Experience: Gold (from 1000)" in page

    def test_workflow_buttons_and_their_confirmation_pages(self, client, operator):
        gold = level(exp(), "Gold", 1000)
        item = RewardItemFactory(code="mug", cost=500, point_type_id=coins().pk, stock=10, min_level=gold)
        page = client.get(change_url(item)).content.decode()
        assert workflow_url(item, "activate") in page and workflow_url(item, "retire") not in page
        confirm = client.get(workflow_url(item, "activate")).content.decode()
        assert "It costs 500 Coins" in confirm and "Stock: 10 left of 10." in confirm
        assert "Who may redeem it: Gold (Experience) or above." in confirm
        assert "Its cost, point type and minimum level are frozen" in confirm
        assert reload(item).status == "editing"  # asking changes nothing
        response = client.post(workflow_url(item, "activate"), follow=True)
        assert "Done: mug is now active." in response.content.decode()
        confirm = client.get(workflow_url(item, "retire")).content.decode()
        assert "leaves the shop at once" in confirm and "cannot be undone" in confirm
        client.post(workflow_url(item, "retire"))
        assert reload(item).status == "retired"
        assert [v.history_user for v in reload(item).history.all()[:2]] == [operator, operator]

    def test_frozen_fields_are_read_only_on_a_live_item_and_the_count_never_editable(self, client, operator, shop):
        page = client.get(change_url(shop)).content.decode()
        for name in (*RewardItem.FROZEN_FIELDS, "status", "redeemed_count"):
            assert f'name="{name}"' not in page, name
        assert 'name="name"' in page and 'name="stock"' in page and 'name="end_time_0"' in page
        draft = RewardItem.objects.get(code="tee")
        page = client.get(change_url(draft)).content.decode()
        assert 'name="cost"' in page and 'name="point_type"' in page and 'name="min_level"' in page
        assert 'name="redeemed_count"' not in page

    def test_a_posted_cost_of_a_live_item_is_ignored(self, client, operator, shop):
        response = client.post(change_url(shop), form_data(shop, cost=1, name="A big mug", stock=12))
        assert response.status_code == 302, response.content.decode()[:3000]
        stored = reload(shop)
        assert (stored.cost, stored.name, stored.stock, stored.redeemed_count) == (500, "A big mug", 12, 10)

    def test_the_stock_below_what_was_redeemed_is_refused_on_the_form(self, client, operator, shop):
        page = client.post(change_url(shop), form_data(shop, stock=9)).content.decode()
        assert "10 have been redeemed already: the stock cannot be less" in page
        assert reload(shop).stock == 10

    def test_only_drafts_are_deleted(self, client, operator, shop):
        assert client.post(reverse("admin:rewards_rewarditem_delete", args=[shop.pk]), {"post": "yes"}).status_code == 403
        draft = RewardItem.objects.get(code="tee")
        client.post(reverse("admin:rewards_rewarditem_delete", args=[draft.pk]), {"post": "yes"})
        assert not RewardItem.all_objects.filter(pk=draft.pk).exists()
        assert RewardItem.all_objects.filter(pk=shop.pk).exists()

    def test_history_shows_the_changes_and_offers_no_revert(self, client, operator):
        item = RewardItemFactory(code="mug", cost=500, point_type_id=coins().pk)
        client.post(change_url(item), form_data(item, cost=450))
        page = client.get(reverse("admin:rewards_rewarditem_history", args=[item.pk])).content.decode()
        assert "changed in the admin" in page and ">op</a>" in page and "450" in page
        version = reload(item).history.earliest()
        url = reverse("admin:rewards_rewarditem_simple_history", args=[item.pk, version.history_id])
        assert client.post(url, form_data(item, cost=500)).status_code == 403
        assert reload(item).cost == 450


class TestReview:
    @pytest.fixture
    def people(self):
        return member("rule editors", "eddie"), member("rule approvers", "anna")

    @pytest.fixture
    def draft(self):
        return RewardItemFactory(code="mug", name="A mug", cost=500, point_type_id=coins().pk, stock=10)

    def test_an_editor_submits_an_approver_finds_it_in_the_queue_and_sends_it_back(self, client, people, draft):
        eddie, anna = people
        client.force_login(eddie)
        page = client.get(change_url(draft)).content.decode()
        assert workflow_url(draft, "submit_for_review") in page and workflow_url(draft, "activate") not in page
        response = client.post(workflow_url(draft, "submit_for_review"), follow=True)
        assert "Mug is waiting for review" in response.content.decode()
        assert reload(draft).review_state == ReviewState.SUBMITTED and review_waiting_count() == 1
        queue = client.get(QUEUE).content.decode()
        assert 'id="review-item-' in queue and workflow_url(draft, "activate") not in queue  # editors see, without links

        client.force_login(anna)
        queue = client.get(QUEUE).content.decode()
        assert f'id="review-item-{draft.pk}"' in queue
        assert "It costs 500 Coins" in queue and "Stock: 10 left of 10." in queue
        assert workflow_url(draft, "activate") in queue and workflow_url(draft, "send_back") in queue
        assert 'id="figure-review"' in client.get(reverse("admin:index")).content.decode()
        assert "please lower the price" not in queue
        client.post(workflow_url(draft, "send_back"), {"comment": "please lower the price"})
        stored = reload(draft)
        assert (stored.review_state, stored.review_by, stored.review_comment) == (
            ReviewState.SENT_BACK,
            anna,
            "please lower the price",
        )
        queue = client.get(QUEUE).content.decode()
        assert f'id="review-item-{draft.pk}"' not in queue and "please lower the price" in queue

        client.force_login(eddie)
        assert "please lower the price" in client.get(change_url(draft)).content.decode()

    def test_an_approver_activates_from_the_queue_and_it_leaves_it(self, client, people, draft):
        eddie, anna = people
        reward_item_submit_for_review(item=draft, actor=eddie)
        client.force_login(anna)
        confirm = client.get(workflow_url(draft, "activate")).content.decode()
        assert "It leaves the review queue." in confirm
        client.post(workflow_url(draft, "activate"))
        assert reload(draft).status == "active" and review_waiting_count() == 0
        assert f'id="review-item-{draft.pk}"' not in client.get(QUEUE).content.decode()

    def test_the_dashboard_counts_items_waiting(self, client, people, draft):
        eddie, anna = people
        reward_item_submit_for_review(item=draft, actor=eddie)
        client.force_login(anna)
        page = client.get(reverse("admin:index")).content.decode()
        assert 'id="figure-review" class="problem"' in page and "draft waits for review" in page


class TestNavigation:
    def test_the_shop_section_lists_items_and_their_sheets(self, client, operator):
        page = client.get(reverse("admin:jifen_section", kwargs={"key": "shop"})).content.decode()
        assert CHANGELIST in page
        assert reverse("admin:rewards_rewarditem_import") in page and reverse("admin:rewards_rewarditem_export") in page

    def test_an_auditor_sees_the_shop_but_no_import(self, client):
        client.force_login(member("auditors", "audrey"))
        page = client.get(reverse("admin:jifen_section", kwargs={"key": "shop"})).content.decode()
        assert CHANGELIST in page and reverse("admin:rewards_rewarditem_import") not in page
        assert client.get(reverse("admin:rewards_rewarditem_import")).status_code == 403

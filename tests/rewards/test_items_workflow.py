"""Shop items are authored like rules (SPEC §11 "Spending"): editing → active → retired, frozen
cost, point type and minimum level, validation with a message per field, copies, history."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.lifecycle import WorkflowForbidden
from apps.core.review import ReviewState
from apps.ledger.point_types import default_point_type_id
from apps.rewards.models import RewardItem
from apps.rewards.services.items import (
    reward_item_activate,
    reward_item_copy_as_draft,
    reward_item_create,
    reward_item_retire,
    reward_item_send_back,
    reward_item_submit_for_review,
    reward_item_update,
)
from apps.rules.selectors.review import review_queue, review_waiting_count
from tests.factories import UserFactory
from tests.rewards.item_factory import coins, exp, level

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    """Writes drafts and moves them through the workflow: both roles (SPEC §7)."""
    user = UserFactory(username="operator", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=("rule editors", "rule approvers")))
    return user


@pytest.fixture
def draft(operator):
    return reward_item_create(actor=operator, code="mug", name="A mug", cost=500, point_type=coins(), stock=10)


def reload(item: RewardItem) -> RewardItem:
    return RewardItem.all_objects.get(pk=item.pk)


def messages_of(excinfo) -> dict[str, list[str]]:
    return excinfo.value.message_dict


def test_a_new_item_is_a_draft_and_its_author_is_in_history(draft, operator):
    assert draft.status == RewardItem.Status.EDITING
    assert draft.history.latest().history_user == operator
    assert draft.history.latest().history_change_reason == "created"


def test_activate_then_retire_each_a_line_in_history(draft, operator):
    reward_item_activate(item=draft, actor=operator)
    assert reload(draft).status == RewardItem.Status.ACTIVE
    reward_item_retire(item=draft, actor=operator)
    assert reload(draft).status == RewardItem.Status.RETIRED
    versions = draft.history.order_by("history_date")
    assert [v.status for v in versions] == ["editing", "active", "retired"]
    assert [v.history_change_reason for v in versions][1:] == ["editing → active", "active → retired"]
    assert {v.history_user for v in versions} == {operator}


def test_a_draft_cannot_be_retired_and_a_retired_item_never_comes_back(draft):
    with pytest.raises(ValidationError, match="only one that is active can become retired"):
        reward_item_retire(item=draft)
    reward_item_activate(item=draft)
    reward_item_retire(item=draft)
    with pytest.raises(ValidationError, match="only one that is editing can become active"):
        reward_item_activate(item=draft)
    with pytest.raises(ValidationError, match="Status cannot go from retired to active"):
        reward_item_update(item=draft, status="active")
    assert reload(draft).status == RewardItem.Status.RETIRED


def test_a_draft_can_change_anything(draft):
    gold = level(exp(), "Gold", 1000)
    reward_item_update(item=draft, cost=450, point_type=coins(), min_level=gold, stock=20, per_user_limit=1, limit_period="day")
    stored = reload(draft)
    assert (stored.cost, stored.min_level, stored.stock, stored.per_user_limit, stored.limit_period) == (450, gold, 20, 1, "day")


@pytest.mark.parametrize(
    ("field", "value"),
    [("cost", 1), ("point_type", "default"), ("min_level", "gold")],
)
@pytest.mark.parametrize("status", ["active", "retired"])
def test_cost_point_type_and_level_are_frozen_past_the_draft(draft, field, value, status):
    reward_item_activate(item=draft)
    if status == "retired":
        reward_item_retire(item=draft)
    value = {"default": lambda: draft.point_type.__class__.objects.get(pk=default_point_type_id())}.get(value, lambda: value)()
    if value == "gold":
        value = level(exp(), "Gold", 1000)
    with pytest.raises(ValidationError) as excinfo:
        reward_item_update(item=draft, **{field: value})
    message = " ".join(messages_of(excinfo)[field])
    assert f"cannot change while mug is {status}" in message and "copy as draft" in message
    stored = reload(draft)
    assert (stored.cost, stored.point_type, stored.min_level) == (500, coins(), None)
    assert getattr(draft, field) == getattr(stored, field)  # the instance is put back as well


def test_a_live_item_may_be_renamed_restocked_reordered_and_ended(draft):
    reward_item_activate(item=draft)
    end = timezone.now() + timedelta(days=3)
    reward_item_update(item=draft, name="A big mug", stock=30, position=2, end_time=end, per_user_limit=2)
    stored = reload(draft)
    assert (stored.name, stored.stock, stored.position, stored.end_time, stored.per_user_limit) == (
        "A big mug",
        30,
        2,
        end,
        2,
    )


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cost": 0}, "cost", "Points must be a positive whole number."),
        ({"cost": 10**10}, "cost", "At most 1000000000 points"),
        ({"point_type": "exp"}, "point_type", "Experience cannot be spent: choose a spendable point type."),
        ({"end_time": "before start"}, "end_time", "The end of the window must be after its start."),
        ({"limit_period": "day"}, "limit_period", "A limit period needs a limit per user"),
        ({"per_user_limit": 0}, "per_user_limit", "A limit per user must be at least 1; leave it empty for no limit."),
        ({"code": "no spaces please"}, "code", "Enter a valid “slug”"),
        ({"name": ""}, "name", "This field cannot be blank."),
        ({"image": "rewards/mug.exe"}, "image", "File extension “exe” is not allowed."),
    ],
)
def test_bad_values_are_refused_with_a_message_on_their_field_and_nothing_is_stored(draft, changes, field, message):
    now = timezone.now()
    resolved = {}
    for name, value in changes.items():
        if value == "exp":
            value = exp()
        if value == "before start":
            resolved["start_time"] = now
            value = now - timedelta(hours=1)
        resolved[name] = value
    with pytest.raises(ValidationError) as excinfo:
        reward_item_update(item=draft, **resolved)
    assert any(message in text for text in messages_of(excinfo)[field]), messages_of(excinfo)
    stored = reload(draft)
    assert (stored.cost, stored.point_type, stored.name, stored.code, stored.limit_period) == (
        500,
        coins(),
        "A mug",
        "mug",
        "none",
    )


def test_an_item_cannot_cost_points_that_cannot_be_spent_even_when_created():
    with pytest.raises(ValidationError) as excinfo:
        reward_item_create(code="badge", name="A badge", cost=5, point_type=exp())
    assert messages_of(excinfo) == {"point_type": ["Experience cannot be spent: choose a spendable point type."]}
    assert not RewardItem.all_objects.exists()


def test_the_stock_cannot_go_below_what_was_redeemed(draft):
    reward_item_activate(item=draft)
    RewardItem.objects.filter(pk=draft.pk).update(redeemed_count=7)  # as a worker's redemptions would
    with pytest.raises(ValidationError) as excinfo:
        reward_item_update(item=draft, stock=6)
    assert messages_of(excinfo)["stock"] == [
        "7 have been redeemed already: the stock cannot be less (it counts what was taken too)."
    ]
    reward_item_update(item=draft, stock=7)  # sold out: allowed
    stored = reload(draft)
    assert (stored.stock, stored.redeemed_count) == (7, 7)


def test_two_live_items_cannot_share_a_code_but_a_deleted_ones_code_is_free(draft):
    with pytest.raises(ValidationError) as excinfo:
        reward_item_create(code="mug", name="Another mug", cost=5)
    assert messages_of(excinfo) == {"code": ["An item with the code mug exists already: choose another code."]}
    RewardItem.objects.filter(pk=draft.pk).update(deleted_at=timezone.now())
    assert reward_item_create(code="mug", name="Another mug", cost=5).code == "mug"


def test_copy_as_draft_keeps_the_settings_under_a_free_code_and_starts_counting_again(draft, operator):
    gold = level(exp(), "Gold", 1000)
    reward_item_update(item=draft, min_level=gold, per_user_limit=1, limit_period="week", image="rewards/mug.png")
    reward_item_activate(item=draft)
    RewardItem.objects.filter(pk=draft.pk).update(redeemed_count=4)
    copy = reward_item_copy_as_draft(item=reload(draft), actor=operator)
    again = reward_item_copy_as_draft(item=reload(draft), actor=operator)
    assert (copy.code, again.code) == ("mug-copy", "mug-copy-2")
    assert copy.status == RewardItem.Status.EDITING and copy.redeemed_count == 0
    for name in ("name", "cost", "point_type", "min_level", "stock", "per_user_limit", "limit_period", "position"):
        assert getattr(copy, name) == getattr(draft, name), name
    assert copy.image.name == "rewards/mug.png" and reload(draft).image.name == "rewards/mug.png"
    assert copy.history.latest().history_user == operator
    reward_item_update(item=copy, cost=400)  # the copy is a draft: its price may change
    assert reload(copy).cost == 400


def test_an_operator_without_the_approvers_rights_cannot_activate_or_retire(draft):
    editor = UserFactory(username="eddie", is_staff=True)
    editor.groups.add(Group.objects.get(name="rule editors"))
    with pytest.raises(WorkflowForbidden):
        reward_item_activate(item=draft, actor=editor)
    with pytest.raises(WorkflowForbidden):
        reward_item_update(item=draft, actor=editor, status="active")
    with pytest.raises(WorkflowForbidden):
        reward_item_create(actor=editor, code="live-at-once", name="x", cost=1, status="active")
    reward_item_update(item=draft, actor=editor, name="A mug (blue)")  # a draft's editing is theirs
    assert reload(draft).status == RewardItem.Status.EDITING and reload(draft).name == "A mug (blue)"


def test_review_submit_send_back_submit_again_then_activate_each_in_history(draft):
    eddie = UserFactory(username="eddie", is_staff=True)
    eddie.groups.add(Group.objects.get(name="rule editors"))
    anna = UserFactory(username="anna", is_staff=True)
    anna.groups.add(Group.objects.get(name="rule approvers"))
    reward_item_submit_for_review(item=draft, actor=eddie)
    assert review_queue().items == (reload(draft),) and review_waiting_count() == 1
    with pytest.raises(ValidationError, match="waiting for review already"):
        reward_item_submit_for_review(item=draft, actor=eddie)
    with pytest.raises(WorkflowForbidden):  # sending back is the approvers'
        reward_item_send_back(item=draft, actor=eddie, comment="fine by me")
    with pytest.raises(ValidationError, match="the comment is what the editor reads"):
        reward_item_send_back(item=draft, actor=anna, comment="   ")
    reward_item_send_back(item=draft, actor=anna, comment="500 coins is too dear")
    stored = reload(draft)
    assert (stored.review_state, stored.review_by, stored.review_comment) == (
        ReviewState.SENT_BACK,
        anna,
        "500 coins is too dear",
    )
    assert review_queue().sent_back_items == (stored,) and review_waiting_count() == 0
    reward_item_update(item=stored, actor=eddie, cost=300)
    reward_item_submit_for_review(item=reload(draft), actor=eddie)
    reward_item_activate(item=reload(draft), actor=anna)
    assert review_queue().items == () and review_waiting_count() == 0
    reasons = list(draft.history.order_by("history_date").values_list("history_change_reason", "history_user__username"))
    assert reasons == [
        ("created", "operator"),
        ("submitted for review", "eddie"),
        ("sent back", "anna"),
        ("changed", "eddie"),
        ("submitted for review", "eddie"),
        ("editing → active", "anna"),
    ]

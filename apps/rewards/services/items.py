"""The reward item workflow (SPEC §11 "Spending"): the rules' authoring workflow, history and review flow.

An item is a draft (`editing`) until an approver activates it; from then on its cost, point type
and minimum level are frozen (a new price is a new item: copy as draft, activate the copy, retire
the old one). `redeemed_count` is never written here: every save writes only the operator's
fields (`apps.core.lifecycle.operator_fields`), so a redemption racing an operator's save keeps
its count (G12).
"""

from typing import Any

from django.db import transaction

from apps.core.lifecycle import Actor, copy_fields, free_copy_code, save_with_history, transition, update_fields
from apps.core.review import review_send_back, review_submit
from apps.rewards.models import RewardItem

# A copy keeps everything an operator wrote but the code; the count of what was redeemed starts again.
_COPIED_FIELDS = (
    "name",
    "description",
    "image",
    *RewardItem.FROZEN_FIELDS,
    "stock",
    "per_user_limit",
    "limit_period",
    "start_time",
    "end_time",
    "position",
)


def reward_item_create(*, actor: Actor = None, **fields: Any) -> RewardItem:
    """Create an item (`editing` unless `status` says otherwise); raise ValidationError if invalid."""
    return save_with_history(RewardItem(**fields), actor=actor, reason="created")


def reward_item_update(*, item: RewardItem, actor: Actor = None, **changes: Any) -> RewardItem:
    """Change an item; raise ValidationError, storing nothing, on a frozen field of a live item or a bad value.

    In one transaction: the stock is validated against what was redeemed under the row lock
    (RewardItem.clean), so a redemption waits for this save rather than slipping under a lowered stock.
    """
    with transaction.atomic():
        return update_fields(item, changes=changes, actor=actor)


def reward_item_activate(*, item: RewardItem, actor: Actor = None) -> RewardItem:
    """editing → active: the item shows in the shop (within its window); cost, point type and minimum level freeze."""
    return transition(item, source=RewardItem.Status.EDITING, target=RewardItem.Status.ACTIVE, actor=actor)


def reward_item_retire(*, item: RewardItem, actor: Actor = None) -> RewardItem:
    """active → retired: the item leaves the shop for good; its redemptions stay, pending ones to fulfil or cancel."""
    return transition(item, source=RewardItem.Status.ACTIVE, target=RewardItem.Status.RETIRED, actor=actor)


def reward_item_submit_for_review(*, item: RewardItem, actor: Actor = None) -> RewardItem:
    """A draft goes into the approvers' review queue (rule editors may)."""
    return review_submit(item, actor=actor)


def reward_item_send_back(*, item: RewardItem, actor: Actor = None, comment: str = "") -> RewardItem:
    """A draft in review goes back to its editor with the approver's comment; it stays a draft."""
    return review_send_back(item, actor=actor, comment=comment)


def reward_item_copy_as_draft(*, item: RewardItem, actor: Actor = None) -> RewardItem:
    """A new `editing` item with the same settings under a free code (`<code>-copy`), to change and activate."""
    return reward_item_create(
        actor=actor,
        code=free_copy_code(RewardItem, "code", item.code),
        status=RewardItem.Status.EDITING,
        # The same image file, by its name (a FieldFile belongs to its own row).
        **{**copy_fields(item, _COPIED_FIELDS), "image": item.image.name or ""},
    )

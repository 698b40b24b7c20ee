"""The shop in the admin: reward items with the rules' workflow, review, history and sheets.

The redemption queue and the holds list live in their own modules (`admin_redemptions`,
`admin_holds`), imported here to register them.

Built from the same pieces as the score rules' admin (apps/rules/admin.py): workflow steps as list
actions and change-page buttons with confirmation pages (apps.core.workflow_admin), frozen fields
read-only past the draft, history with author and reason, only drafts deletable, import and export
as sheets (the resource of `import_rules --resource items`). `redeemed_count` is the workers' and
is never in the form: the admin's save writes only the operator's fields (G12).
"""

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy
from simple_history.admin import SimpleHistoryAdmin

from apps.core.workflow_admin import FrozenFieldsMixin, WorkflowAdminMixin, WorkflowStep, review_steps
from apps.ledger.models import Level, PointType
from apps.rewards import admin_holds, admin_redemptions  # noqa: F401 - registers HoldAdmin, RedemptionAdmin
from apps.rewards.item_text import level_text, price_text, stock_text, terms, window_text
from apps.rewards.models import RewardItem
from apps.rewards.resources import RewardItemResource
from apps.rewards.services import items as workflow
from apps.rules.admin_sheets import RuleSheetAdminMixin

_Status = RewardItem.Status


def activate_consequences(item: RewardItem) -> list[str]:
    lines = [
        gettext("%(item)s (%(name)s) shows in the shop from now on, within its window.") % {"item": item.code, "name": item.name},
        *terms(item),
        gettext("Its cost, point type and minimum level are frozen from then on; to change them, retire it and activate a copy."),
    ]
    if item.in_review:
        lines.append(gettext("It leaves the review queue."))
    return lines


def retire_consequences(item: RewardItem) -> list[str]:
    return [
        gettext("%(item)s leaves the shop at once: nobody can redeem it any more.") % {"item": item.code},
        gettext("Its redemptions stay; pending ones are still fulfilled or cancelled from the redemption queue."),
        gettext("This cannot be undone: a retired item is never active again (copy it as a draft to sell it again)."),
    ]


class LevelChoiceField(forms.ModelChoiceField):
    """Levels named with their point type: two types may each have a "Gold"."""

    def label_from_instance(self, level: Level) -> str:
        return gettext("%(type)s: %(level)s (from %(threshold)s)") % {
            "type": level.point_type,
            "level": level.name,
            "threshold": level.threshold,
        }


@admin.register(RewardItem)
class RewardItemAdmin(WorkflowAdminMixin, FrozenFieldsMixin, RuleSheetAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "code",
        "status_badge",
        "name",
        "price_column",
        "stock_column",
        "window_column",
        "level_column",
    )
    list_filter = ("status", "point_type", "review_state")
    search_fields = ("code", "name", "description")
    list_select_related = ("point_type", "min_level__point_type")
    readonly_fields = ("redeemed_count",)
    # Fixed order, so fields keep their place when they turn read-only; the status shows as a badge.
    fieldsets = (
        (None, {"fields": ("code", "name", "description", "image")}),
        (gettext_lazy("Price and who may redeem it"), {"fields": ("cost", "point_type", "min_level")}),
        (
            gettext_lazy("Stock and limits"),
            {"fields": ("stock", "redeemed_count", "per_user_limit", "limit_period")},
        ),
        (gettext_lazy("When and where in the shop"), {"fields": ("start_time", "end_time", "position")}),
    )
    resource_classes = [RewardItemResource]
    workflow_steps = (
        *review_steps(
            submit=workflow.reward_item_submit_for_review,
            send_back=workflow.reward_item_send_back,
            keyword="item",
            draft=_Status.EDITING,
            approve_permission="activate",
        ),
        WorkflowStep(
            "activate",
            gettext_lazy("Activate"),
            workflow.reward_item_activate,
            "item",
            (_Status.EDITING,),
            permission="activate",
            consequences=lambda item: activate_consequences(item),
        ),
        WorkflowStep(
            "retire",
            gettext_lazy("Retire"),
            workflow.reward_item_retire,
            "item",
            (_Status.ACTIVE,),
            permission="retire",
            consequences=lambda item: retire_consequences(item),
        ),
        WorkflowStep(
            "copy_as_draft",
            gettext_lazy("Copy as draft"),
            workflow.reward_item_copy_as_draft,
            "item",
            permission="add",
            confirm=False,
        ),
    )

    # Roles (SPEC §7): activating and retiring are the rule approvers' own permissions, not "change".
    def has_activate_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("rewards.activate_rewarditem")

    def has_retire_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("rewards.retire_rewarditem")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "min_level":
            kwargs["queryset"] = Level.objects.select_related("point_type").order_by("point_type__position", "threshold")
            kwargs["form_class"] = LevelChoiceField
        if db_field.name == "point_type":
            # Only what can be spent is offered (the model refuses the others with a message too).
            kwargs["queryset"] = PointType.objects.filter(spendable=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("cost"), ordering="cost")
    def price_column(self, item: RewardItem) -> str:
        return price_text(item)

    @admin.display(description=gettext_lazy("stock"), ordering="stock")
    def stock_column(self, item: RewardItem) -> str:
        text = stock_text(item)
        if item.stock is not None and item.redeemed_count >= item.stock:
            return format_html('<strong class="jifen-sold-out">{}</strong>', text)
        return text

    @admin.display(description=gettext_lazy("when"), ordering="start_time")
    def window_column(self, item: RewardItem) -> str:
        return window_text(item, short=True)

    @admin.display(description=gettext_lazy("minimum level"), ordering="min_level__threshold")
    def level_column(self, item: RewardItem) -> str:
        return level_text(item) if item.min_level_id else "—"

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy
from simple_history.admin import SimpleHistoryAdmin

from apps.core.clock import period_start_text
from apps.core.workflow_admin import FrozenFieldsMixin, ReadOnlyAdminMixin, WorkflowAdminMixin, WorkflowStep, review_steps
from apps.ledger.changelists import BigTableAdminMixin
from apps.rules import admin_badges  # noqa: F401 - registers the badges' admin
from apps.rules.admin_dry_run import RuleDryRunAdminMixin
from apps.rules.admin_review import ReviewQueueAdminMixin
from apps.rules.admin_sheets import RuleSheetAdminMixin
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.rules.resources import ObjectPointsResource, ScoreRuleResource
from apps.rules.selectors.rules import rule_live_figures
from apps.rules.services import workflow
from apps.tasks.models import TaskConfig

_Status = ScoreRule.Status


def activate_consequences(rule: ScoreRule) -> list[str]:
    lines = [
        gettext("From now on, completions of %(task)s earn points under %(rule)s: %(points)s points when it awards.")
        % {"task": rule.task_type, "rule": rule.score_type, "points": rule.points},
        gettext("Its points are %(type)s (the point type %(code)s).") % {"type": rule.point_type, "code": rule.point_type.code},
        *(
            [gettext("It grants the badge %(badge)s with its award, once per user.") % {"badge": rule.badge}]
            if rule.badge_id
            else []
        ),
        gettext(
            "What decides its awards (points, period, N, limits, start, cooldown) is frozen from then on; to change it, "
            "retire it and activate a copy."
        ),
    ]
    if not TaskConfig.objects.filter(task_type=rule.task_type, status=TaskConfig.Status.IN_USE).exists():
        lines.append(
            gettext("No task config for %(task)s is in use: nothing completes this task, so the rule pays nothing until one is.")
            % {"task": rule.task_type}
        )
    if rule.in_review:
        lines.append(gettext("It leaves the review queue."))
    return lines


def retire_consequences(rule: ScoreRule) -> list[str]:
    return [
        gettext("%(rule)s stops paying at once: completions from now on earn nothing from it.") % {"rule": rule.score_type},
        gettext("Points it has already awarded stay, and so does its history."),
        gettext("This cannot be undone: a retired rule is never active again (copy it as a draft to start over)."),
    ]


def _rule_editable(rule: ScoreRule | None) -> bool:
    # Per-object amounts decide awards like `points` does, so they freeze with the rule.
    return rule is None or rule.status == _Status.EDITING


class ObjectPointsInline(admin.TabularInline):
    """Per-object amounts freeze with the rule once it is active."""

    model = ScoreRuleObjectPoints
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return _rule_editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _rule_editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _rule_editable(obj) and super().has_delete_permission(request, obj)


@admin.register(ScoreRule)
class ScoreRuleAdmin(
    ReviewQueueAdminMixin, RuleDryRunAdminMixin, WorkflowAdminMixin, FrozenFieldsMixin, RuleSheetAdminMixin, SimpleHistoryAdmin
):
    list_display = (
        "score_type",
        "status_badge",
        "task_type",
        "kind",
        "points_column",
        "statistical_period",
        "required_number_of_times",
        "award_limit_per_period",
        "number_limit_all",
        "recipients_count",
        "cooldown",
    )
    list_filter = (
        "status",
        "point_type",
        "task_type",
        "statistical_period",
        "kind",
        ("cooldown", admin.EmptyFieldListFilter),
        "cooldown_scope",
    )
    search_fields = ("score_type", "score_desc", "task_type")
    list_select_related = ("point_type",)
    readonly_fields = ("recipients_count",)
    # Fixed order, so fields keep their place when they turn read-only; the status shows as a badge.
    fieldsets = (
        (None, {"fields": ("score_type", "task_type", "score_desc")}),
        (
            gettext_lazy("What it awards"),
            {
                "fields": (
                    "kind",
                    "points",
                    "point_type",
                    "badge",
                    "statistical_period",
                    "required_number_of_times",
                    "can_repeat",
                )
            },
        ),
        (
            gettext_lazy("Limits and window"),
            {"fields": ("award_limit_per_period", "number_limit_all", "recipients_count", "start_time", "end_time")},
        ),
        (
            gettext_lazy("Cooldown (anti-farming)"),
            {
                "fields": ("cooldown", "cooldown_scope"),
                "description": gettext_lazy(
                    "Judged by when completions happened, not when they arrived: a completion closer than the cooldown "
                    "to a counted one, before or after it, does not count."
                ),
            },
        ),
    )
    inlines = [ObjectPointsInline]
    resource_classes = [ScoreRuleResource]
    workflow_steps = (
        *review_steps(
            submit=workflow.score_rule_submit_for_review,
            send_back=workflow.score_rule_send_back,
            keyword="rule",
            draft=_Status.EDITING,
            approve_permission="activate",
        ),
        WorkflowStep(
            "activate",
            gettext_lazy("Activate"),
            workflow.score_rule_activate,
            "rule",
            (_Status.EDITING,),
            permission="activate",
            consequences=lambda rule: activate_consequences(rule),
        ),
        WorkflowStep(
            "retire",
            gettext_lazy("Retire"),
            workflow.score_rule_retire,
            "rule",
            (_Status.ACTIVE,),
            permission="retire",
            consequences=lambda rule: retire_consequences(rule),
        ),
        WorkflowStep(
            "copy_as_draft",
            gettext_lazy("Copy as draft"),
            workflow.score_rule_copy_as_draft,
            "rule",
            permission="add",
            confirm=False,
        ),
    )

    @admin.display(description=gettext_lazy("points"), ordering="points")
    def points_column(self, rule: ScoreRule) -> str:
        # The amount and, under it, which points: one column, so the list keeps every column at 1280 px.
        return format_html('{}<br><span class="jifen-point-type">{}</span>', rule.points, rule.point_type)

    # Roles (SPEC §7): activating and retiring are the rule approvers' own permissions, not "change".
    def has_activate_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("rules.activate_scorerule")

    def has_retire_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("rules.retire_scorerule")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "live_figures": rule_live_figures(rule_id=obj.pk),
                "backfill_runs": self.backfill_runs(obj),
                "object_points_url": reverse("admin:rules_scoreruleobjectpoints_changelist") + f"?rule__id__exact={obj.pk}",
            }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ScoreRuleObjectPoints)
class ScoreRuleObjectPointsAdmin(RuleSheetAdminMixin, admin.ModelAdmin):
    """Per-object amounts, one row each: for sheets of many (import/export), and a filtered view per rule."""

    list_display = ("rule", "business_id", "points", "rule_status")
    list_filter = ("rule__status",)
    search_fields = ("business_id", "rule__score_type")
    list_select_related = ("rule",)
    raw_id_fields = ("rule",)
    show_full_result_count = False
    resource_classes = [ObjectPointsResource]

    @admin.display(description=gettext_lazy("rule status"), ordering="rule__status")
    def rule_status(self, obj) -> str:
        return obj.rule.get_status_display()

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # The rule page links here filtered to its own rows.
        return lookup == "rule__id__exact" or super().lookup_allowed(lookup, value, request)

    def has_change_permission(self, request, obj=None) -> bool:
        return (obj is None or _rule_editable(obj.rule)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return (obj is None or _rule_editable(obj.rule)) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Bulk delete would skip the per-row check above (amounts of a live rule are frozen).
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(UserScoreInfo)
class UserScoreInfoAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    """Progress rows (one per user, rule and period): read-only, a big table like the ledger."""

    # What an operator looks for, fitting the page beside the filters: the period's start, and a
    # streak's length, are on each row's page.
    list_display = (
        "user_column",
        "achievement_type",
        "achievement_amount_now",
        "required_number",
        "achieved",
        "awards_in_period",
        "deadline",
    )
    list_display_links = ("achievement_type",)
    # The rule's foreign key index serves its filter; `achieved` splits the rows roughly in two,
    # so walking the primary key (the ordering) finds a page of either at once.
    list_filter = ("achievement_type", "achieved")
    ordering = ("-id",)  # the primary key: newest rows first with no sort over the table
    list_select_related = ("user", "achievement_type")
    raw_id_fields = ("user",)
    # A lifetime rule's period starts at the epoch: shown as "since the start", not as a 1970 date.
    exclude = ("period_start",)
    readonly_fields = ("period_column",)

    @admin.display(description=gettext_lazy("period start"), ordering="period_start")
    def period_column(self, obj: UserScoreInfo) -> str:
        return period_start_text(obj.period_start)

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.rules import services
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints, UserScoreInfo
from apps.tasks.admin_actions import FrozenFieldsMixin, workflow_action


class ObjectPointsInline(admin.TabularInline):
    """Per-object amounts freeze with the rule once it is active."""

    model = ScoreRuleObjectPoints
    extra = 0

    def _editable(self, obj) -> bool:
        return obj is None or obj.status == ScoreRule.Status.EDITING

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(ScoreRule)
class ScoreRuleAdmin(FrozenFieldsMixin, SimpleHistoryAdmin):
    list_display = (
        "score_type",
        "task_type",
        "kind",
        "points",
        "statistical_period",
        "required_number_of_times",
        "award_limit_per_period",
        "number_limit_all",
        "recipients_count",
        "status",
    )
    list_filter = ("status", "kind", "statistical_period", "task_type")
    search_fields = ("score_type", "score_desc", "task_type")
    readonly_fields = ("recipients_count",)
    inlines = [ObjectPointsInline]
    actions = [
        workflow_action(
            services.score_rule_activate, keyword="rule", name="activate", description="Activate", permission="activate"
        ),
        workflow_action(services.score_rule_retire, keyword="rule", name="retire", description="Retire", permission="retire"),
        workflow_action(
            services.score_rule_copy_as_draft, keyword="rule", name="copy_as_draft", description="Copy as draft", permission="add"
        ),
    ]

    # Roles (SPEC §7): activating and retiring are the rule approvers' own permissions, not "change".
    def has_activate_permission(self, request) -> bool:
        return request.user.has_perm("rules.activate_scorerule")

    def has_retire_permission(self, request) -> bool:
        return request.user.has_perm("rules.retire_scorerule")


@admin.register(UserScoreInfo)
class UserScoreInfoAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "achievement_type",
        "period_start",
        "deadline",
        "achievement_amount_now",
        "required_number",
        "achieved",
        "awards_in_period",
        "streak_length",
    )
    list_filter = ("achievement_type", "achieved")
    search_fields = ("user__username",)
    list_select_related = ("user", "achievement_type")
    raw_id_fields = ("user",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

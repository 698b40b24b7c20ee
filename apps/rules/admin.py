from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.ledger.changelists import BigTableAdminMixin
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
        workflow_action(services.score_rule_activate, keyword="rule", name="activate", description="Activate"),
        workflow_action(services.score_rule_retire, keyword="rule", name="retire", description="Retire"),
        workflow_action(services.score_rule_copy_as_draft, keyword="rule", name="copy_as_draft", description="Copy as draft"),
    ]


@admin.register(UserScoreInfo)
class UserScoreInfoAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Progress rows (one per user, rule and period): read-only, a big table like the ledger."""

    list_display = (
        "user_column",
        "achievement_type",
        "period_start",
        "deadline",
        "achievement_amount_now",
        "required_number",
        "achieved",
        "awards_in_period",
        "streak_length",
    )
    list_display_links = ("achievement_type",)
    # The rule's foreign key index serves its filter; `achieved` splits the rows roughly in two,
    # so walking the primary key (the ordering) finds a page of either at once.
    list_filter = ("achievement_type", "achieved")
    ordering = ("-id",)  # the primary key: newest rows first with no sort over the table
    list_select_related = ("user", "achievement_type")
    raw_id_fields = ("user",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

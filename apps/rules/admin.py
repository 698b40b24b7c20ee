from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.rules.models import ScoreRule, ScoreRuleObjectPoints, UserScoreInfo


class ObjectPointsInline(admin.TabularInline):
    model = ScoreRuleObjectPoints
    extra = 0


@admin.register(ScoreRule)
class ScoreRuleAdmin(SimpleHistoryAdmin):
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

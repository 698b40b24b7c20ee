from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.tasks.models import TaskConfig, UserTaskRecord


@admin.register(TaskConfig)
class TaskConfigAdmin(SimpleHistoryAdmin):
    list_display = ("task_type", "method", "interface_name", "id_group_name", "priority", "status", "reverses", "updated_at")
    list_filter = ("status", "method")
    search_fields = ("task_type", "task_desc", "interface_name")


@admin.register(UserTaskRecord)
class UserTaskRecordAdmin(admin.ModelAdmin):
    list_display = ("occurred_at", "user", "task", "business_id", "reversed_at")
    list_filter = ("task",)
    search_fields = ("user__username", "business_id", "event_id")
    raw_id_fields = ("user", "reversed_by")
    list_select_related = ("user", "task")
    show_full_result_count = False
    readonly_fields = [field.name for field in UserTaskRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.tasks import services
from apps.tasks.admin_actions import FrozenFieldsMixin, workflow_action
from apps.tasks.models import TaskConfig, UserTaskRecord


@admin.register(TaskConfig)
class TaskConfigAdmin(FrozenFieldsMixin, SimpleHistoryAdmin):
    list_display = ("task_type", "method", "interface_name", "id_group_name", "priority", "status", "reverses", "updated_at")
    list_filter = ("status", "method")
    search_fields = ("task_type", "task_desc", "interface_name")
    actions = [
        workflow_action(
            services.task_config_put_in_use,
            keyword="config",
            name="put_in_use",
            description="Put in use",
            permission="put_in_use",
        ),
        workflow_action(
            services.task_config_deprecate, keyword="config", name="deprecate", description="Deprecate", permission="deprecate"
        ),
        workflow_action(
            services.task_config_copy_as_draft,
            keyword="config",
            name="copy_as_draft",
            description="Copy as draft",
            permission="add",
        ),
    ]

    # Roles (SPEC §7): putting in use and deprecating are the rule approvers' own permissions, not "change".
    def has_put_in_use_permission(self, request) -> bool:
        return request.user.has_perm("tasks.put_in_use_taskconfig")

    def has_deprecate_permission(self, request) -> bool:
        return request.user.has_perm("tasks.deprecate_taskconfig")


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

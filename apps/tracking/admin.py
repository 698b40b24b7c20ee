from django.contrib import admin, messages
from django.utils.translation import gettext_lazy, ngettext

from apps.tracking import services
from apps.tracking.models import FailedEvent, OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "created_at", "attempts", "last_error")
    readonly_fields = ("event_id", "payload", "created_at", "attempts", "last_error")
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(FailedEvent)
class FailedEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "status", "attempts", "error", "created_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("event_id", "error")
    readonly_fields = ("event_id", "payload", "error", "attempts", "status", "created_at", "updated_at")
    actions = ["retry"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=gettext_lazy("Send again"), permissions=["change"])
    def retry(self, request, queryset):
        count = 0
        for failed in queryset.filter(status=FailedEvent.Status.FAILED):
            services.failed_event_retry(failed=failed)
            count += 1
        message = ngettext("%(count)d event sent again.", "%(count)d events sent again.", count) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)

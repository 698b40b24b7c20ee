from django.contrib import admin

from apps.tracking.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("event_id", "created_at", "attempts", "last_error")
    readonly_fields = ("event_id", "payload", "created_at", "attempts", "last_error")

    def has_add_permission(self, request) -> bool:
        return False

from django.contrib import admin

from apps.ledger.models import Account, ScoreRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    """Balances and entries change only through the ledger service, never by hand."""

    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance", "last_activity_at")
    search_fields = ("user__username",)
    list_select_related = ("user",)


@admin.register(ScoreRecord)
class ScoreRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "serial_number",
        "user",
        "kind",
        "trade_amount",
        "amount_before_trade",
        "amount_after_trade",
        "business_type",
        "created_at",
    )
    list_filter = ("kind", "business_type")
    search_fields = ("user__username", "serial_number")
    date_hierarchy = "created_at"
    list_select_related = ("user",)

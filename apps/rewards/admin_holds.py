"""Holds in the operator's admin: a read-only list (SPEC §11). Other systems place, capture and release them.

Nothing here changes a hold: they move only through the signed API (apps.rewards.api_holds) and
beat's release of late ones. Operators see what is held for whom, by which system, and how each
ended, with links to the entries that moved the points.
"""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from apps.core.clock import local_text
from apps.core.workflow_admin import ReadOnlyAdminMixin
from apps.ledger.changelists import CappedCountPaginator, UserListMixin
from apps.rewards.models import Hold


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdminMixin, UserListMixin, admin.ModelAdmin):
    # Times as the site's compact local date and time, so that every column fits at 1280 px.
    list_display = (
        "id",
        "placed_column",
        "user_column",
        "system_column",
        "point_type",
        "amount",
        "status_column",
        "expires_column",
        "decided_column",
        "entries_column",
    )
    list_display_links = ("id",)
    list_filter = ("status", "point_type", "service_key")
    list_select_related = ("user", "service_key", "point_type", "spend_entry", "refund_entry")
    ordering = ("-created_at", "-id")
    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = None
    fields = (
        "user_column",
        "service_key",
        "point_type",
        "amount",
        "status_column",
        "client_key",
        "created_at",
        "expires_at",
        "decided_at",
        "entries_column",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description=gettext_lazy("placed at"), ordering="created_at")
    def placed_column(self, hold: Hold) -> str:
        return local_text(hold.created_at)

    @admin.display(description=gettext_lazy("system"), ordering="service_key__name")
    def system_column(self, hold: Hold) -> str:
        return hold.service_key.name

    @admin.display(description=gettext_lazy("expires at"), ordering="expires_at")
    def expires_column(self, hold: Hold) -> str:
        return local_text(hold.expires_at)

    @admin.display(description=gettext_lazy("captured or released at"), ordering="decided_at")
    def decided_column(self, hold: Hold) -> str:
        return local_text(hold.decided_at) if hold.decided_at else "–"

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_column(self, hold: Hold) -> str:
        return format_html('<span class="jifen-badge jifen-badge-{}">{}</span>', hold.status, hold.get_status_display())

    @admin.display(description=gettext_lazy("ledger entries"))
    def entries_column(self, hold: Hold) -> str:
        links = [
            format_html('<a href="{}">{}</a>', reverse("admin:ledger_scorerecord_change", args=[entry.pk]), entry.serial_number)
            for entry in (hold.spend_entry, hold.refund_entry)
            if entry is not None
        ]
        return links[0] if len(links) == 1 else format_html("{}<br>{}", *links)

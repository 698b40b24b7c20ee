"""What expires per month ahead, over all accounts (SPEC §11), in the operator's admin (Users & ledger).

One page, read-only, for whoever may see the accounts: per local month, from the current one,
the points of each expiring point type that the daily expiry job will take if they are not spent
first, and how many users hold them; plus what is past its end already, for the next run.
Registered as the admin of `PointLot` (lots have no list of their own: the page is the lots'
summary), hidden from the app list; its row in the section is a link (config/admin.py).
"""

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from apps.core.workflow_admin import ReadOnlyAdminMixin
from apps.ledger.models import PointLot
from apps.ledger.selectors.expiring import expiring_by_month

MONTHS_AHEAD = 12


def expiring_context(*, months: int = MONTHS_AHEAD) -> dict:
    """The table: one row per month (overdue first), one column per point type that expires."""
    month_starts, found = expiring_by_month(months=months)
    types = sorted({row.point_type for row in found}, key=lambda t: (t.position, t.pk))
    cells = {(row.overdue, row.month, row.point_type.pk): row for row in found}
    rows = []
    if any(row.overdue for row in found):
        rows.append({"overdue": True, "month": None, "cells": [cells.get((True, month_starts[0], t.pk)) for t in types]})
    for month in month_starts:
        rows.append({"overdue": False, "month": month, "cells": [cells.get((False, month, t.pk)) for t in types]})
    return {
        "point_types": types,
        "rows": rows,
        "total": [sum(row.points for row in found if row.point_type == t) for t in types],
        "run_at": settings.JIFEN_EXPIRY_RUN_AT,
        "time_zone": settings.TIME_ZONE,
    }


@admin.register(PointLot)
class ExpiringPointsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The lots' summary page: what expires when. Lots change only through the ledger's posting and expiry."""

    def has_module_permission(self, request) -> bool:
        return False  # no row of its own in the app list: the section links to the page by name

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("ledger.view_account")

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **expiring_context(),
            "opts": self.opts,
            "title": _("Points expiring per month"),
        }
        return TemplateResponse(request, "admin/ledger/expiring.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:ledger_pointlot_changelist")

"""The admin site: Django's, with the operator's dashboard on its index page (SPEC §7)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from apps.tracking.charts import bar_chart
from apps.tracking.selectors import dashboard_figures


class JifenAdminSite(admin.AdminSite):
    site_header = _("Jifen points console")
    site_title = _("Jifen")
    index_title = _("Today at a glance")

    def index(self, request, extra_context=None):
        dashboard = dashboard_figures(user=request.user)
        charts = []
        if dashboard.shows_events:
            charts.append(bar_chart(_("Events per day"), [(d.day, d.events) for d in dashboard.days]))
        if dashboard.shows_ledger:
            charts.append(bar_chart(_("Points per day (net)"), [(d.day, d.points) for d in dashboard.days]))
        context = {"dashboard": dashboard, "dashboard_charts": charts, **(extra_context or {})}
        return super().index(request, extra_context=context)

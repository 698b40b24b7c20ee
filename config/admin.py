"""The admin site: Django's, with the operator's dashboard on its index page (SPEC §7).

Navigation is by job rather than by Django app (issue 14): the index and the sidebar list the
sections of `SECTIONS` in order, each with the models the operator may see and links to the
custom pages they may use. Models no section names land in System, which comes last.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _

from apps.notifications.selectors import webhooks_dashboard
from apps.rewards.selectors import pending_redemptions_count
from apps.rules.selectors.review import review_waiting_count
from apps.tracking.charts import bar_chart
from apps.tracking.selectors import dashboard_figures


def _model_admin(site: admin.AdminSite, label: str) -> admin.ModelAdmin | None:
    """The ModelAdmin registered for "app_label.modelname", or None."""
    try:
        return site.get_model_admin(apps.get_model(label))
    except (LookupError, NotRegistered):
        return None


def _admin_allows(label: str, check: str) -> Callable[[admin.AdminSite, object], bool]:
    """A link test: the model's admin grants `has_<check>_permission(request)`."""

    def allowed(site, request) -> bool:
        model_admin = _model_admin(site, label)
        return model_admin is not None and bool(getattr(model_admin, f"has_{check}_permission")(request))

    return allowed


def _may_view_any(*labels: str) -> Callable[[admin.AdminSite, object], bool]:
    def allowed(site, request) -> bool:
        return any(_admin_allows(label, "view")(site, request) for label in labels)

    return allowed


@dataclass(frozen=True)
class SectionLink:
    """A page that is not a model's list, shown as a row of its section to those `allowed`.

    `url` is an admin URL name ("admin:…") or a URL name of the site; `key` names the row
    (its id in the page is "<section>-<key>").
    """

    key: str
    name: str
    url: str
    allowed: Callable[[admin.AdminSite, object], bool]


@dataclass(frozen=True)
class Section:
    key: str
    name: str
    models: tuple[str, ...]
    links: list[SectionLink] = field(default_factory=list)


# The sections in their order; models as "app_label.modelname" in the order they are listed.
# A new custom page joins its section by adding it below, or with
# `section("<key>").links.append(SectionLink(...))` from its own app.
SECTIONS: tuple[Section, ...] = (
    Section(
        "authoring",
        _("Authoring"),
        ("tasks.taskconfig", "rules.scorerule", "rules.badge", "rules.scoreruleobjectpoints"),
        [
            SectionLink(
                "review",
                _("Review queue"),
                "admin:rules_scorerule_review",
                _may_view_any("rules.scorerule", "tasks.taskconfig", "rewards.rewarditem"),
            ),
            SectionLink(
                "test-request",
                _("Test a request"),
                "admin:tasks_taskconfig_test_request",
                _admin_allows("tasks.taskconfig", "view"),
            ),
            SectionLink(
                "sheet-import",
                _("Import a rule sheet"),
                "admin:rules_scorerule_import",
                _admin_allows("rules.scorerule", "import"),
            ),
            SectionLink(
                "sheet-export",
                _("Export a rule sheet"),
                "admin:rules_scorerule_export",
                _admin_allows("rules.scorerule", "export"),
            ),
        ],
    ),
    # What points are: their kinds (spendable or not, when they expire) and the levels they reach.
    Section("points", _("Point types & levels"), ("ledger.pointtype", "ledger.level")),
    Section(
        "shop",
        _("Shop"),
        # The rewards shop: the catalogue (items) and the redemption queue operators work through.
        ("rewards.rewarditem", "rewards.redemption"),
        [
            SectionLink(
                "item-sheet-import",
                _("Import an item sheet"),
                "admin:rewards_rewarditem_import",
                _admin_allows("rewards.rewarditem", "import"),
            ),
            SectionLink(
                "item-sheet-export",
                _("Export an item sheet"),
                "admin:rewards_rewarditem_export",
                _admin_allows("rewards.rewarditem", "export"),
            ),
        ],
    ),
    Section(
        "users-ledger",
        _("Users & ledger"),
        (
            "ledger.account",
            "ledger.scorerecord",
            "ledger.adjustment",
            "rules.userscoreinfo",
            "tasks.usertaskrecord",
            "ledger.leaderboardtotal",
            "rewards.hold",
        ),
        [
            SectionLink(
                "why",
                _("Why no points?"),
                "admin:tasks_usertaskrecord_why",
                _admin_allows("tasks.usertaskrecord", "view"),
            ),
            SectionLink(
                "expiring",
                _("Points expiring per month"),
                "admin:ledger_pointlot_changelist",
                _admin_allows("ledger.account", "view"),
            ),
        ],
    ),
    Section(
        "pipeline",
        _("Pipeline"),
        ("tracking.failedevent", "tracking.outboxevent", "tracking.servicekey"),
        [
            SectionLink(
                "health",
                _("Health check (/healthz)"),
                "healthz",
                _may_view_any("tracking.failedevent", "tracking.outboxevent", "tracking.servicekey"),
            ),
        ],
    ),
    # Outgoing webhooks: the endpoints (their secrets shown once) and every delivery with its attempts.
    Section("webhooks", _("Webhooks"), ("notifications.webhookendpoint", "notifications.webhookdelivery")),
    Section(
        "access",
        _("Access"),
        ("auth.user", "auth.group", "axes.accessattempt", "axes.accessfailurelog", "axes.accesslog"),
    ),
    Section(
        "system",
        _("System"),
        (
            "django_celery_results.taskresult",
            "django_celery_results.groupresult",
            "django_celery_beat.periodictask",
            "django_celery_beat.intervalschedule",
            "django_celery_beat.crontabschedule",
            "django_celery_beat.solarschedule",
            "django_celery_beat.clockedschedule",
        ),
    ),
)
CATCH_ALL_SECTION = "system"


def section(key: str) -> Section:
    return next(s for s in SECTIONS if s.key == key)


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
        may_review = any(
            request.user.has_perm(name) for name in ("rules.view_scorerule", "tasks.view_taskconfig", "rewards.view_rewarditem")
        )
        context = {
            "dashboard": dashboard,
            "dashboard_charts": charts,
            "review_waiting": review_waiting_count() if may_review else None,
            "redemptions_waiting": pending_redemptions_count() if request.user.has_perm("rewards.view_redemption") else None,
            "webhooks": webhooks_dashboard() if request.user.has_perm("notifications.view_webhookendpoint") else None,
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)

    def get_urls(self):
        own = [path("jobs/<slug:key>/", self.admin_view(self.section_view), name="jifen_section")]
        return own + super().get_urls()

    def get_app_list(self, request, app_label=None):
        """The index and the sidebar: job sections. One app's page (/admin/rules/) stays Django's."""
        if app_label is not None:
            return super().get_app_list(request, app_label)
        return self.job_sections(request, super().get_app_list(request))

    def job_sections(self, request, app_list) -> list[dict]:
        """Regroup Django's app list (already filtered by the user's permissions) into SECTIONS."""
        models = {entry["model"]._meta.label_lower: entry for app in app_list for entry in app["models"]}
        placed = {label for s in SECTIONS for label in s.models}
        leftovers = [label for label in models if label not in placed]
        sections = []
        for s in SECTIONS:
            labels = [label for label in s.models if label in models]
            if s.key == CATCH_ALL_SECTION:
                labels += leftovers
            rows = [models[label] for label in labels]
            rows += [self._link_row(request, link) for link in s.links if link.allowed(self, request)]
            rows = [row for row in rows if row is not None]
            if rows:
                sections.append(
                    {
                        "name": s.name,
                        "app_label": s.key,
                        "app_url": reverse("admin:jifen_section", kwargs={"key": s.key}, current_app=self.name),
                        "has_module_perms": True,
                        "models": rows,
                    }
                )
        return sections

    def _link_row(self, request, link: SectionLink) -> dict | None:
        try:
            url = reverse(link.url, current_app=self.name)
        except NoReverseMatch:
            return None
        # Shaped like a model's row of Django's app list, so admin/app_list.html shows it as is.
        return {"name": link.name, "object_name": link.key, "admin_url": url, "add_url": None, "view_only": True, "perms": {}}

    def section_view(self, request, key):
        """One section's page (the section's title in the index and sidebar links here)."""
        app_list = [s for s in self.get_app_list(request) if s["app_label"] == key]
        if not app_list:
            raise Http404
        context = {
            **self.each_context(request),
            "title": app_list[0]["name"],
            "subtitle": None,
            "app_list": app_list,
            "app_label": key,
        }
        request.current_app = self.name
        return TemplateResponse(request, self.app_index_template or "admin/app_index.html", context)

"""The badges' admin (SPEC §12): what a badge looks like, which rules grant it, how many users hold it.

A badge has no status of its own: what decides who earns it is the granting rule, which freezes
its `badge` once active. Its code is fixed once made, as webhooks and sheets name badges by code.
"""

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy
from simple_history.admin import SimpleHistoryAdmin

from apps.rules.models import Badge, BadgeAward, ScoreRule


def _count_of(rows, column: str) -> Coalesce:
    """A correlated COUNT per badge, so the list's two counts do not multiply each other's joins."""
    counted = rows.filter(badge=OuterRef("pk")).order_by().values("badge").annotate(n=Count(column, distinct=True)).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(Badge)
class BadgeAdmin(SimpleHistoryAdmin):
    list_display = ("image_thumbnail", "code", "name", "rules_count", "holders_count")
    list_display_links = ("code", "name")
    search_fields = ("code", "name")
    fields = ("code", "name", "description", "image", "image_preview", "granting_rules", "holders")
    readonly_fields = ("image_preview", "granting_rules", "holders")

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                rules_n=_count_of(ScoreRule.objects.all(), "pk"),
                holders_n=_count_of(BadgeAward.objects.filter(revoked_at__isnull=True), "user"),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return ["code", *readonly] if obj is not None else readonly

    @admin.display(description=gettext_lazy("image"))
    def image_thumbnail(self, badge: Badge) -> str:
        if not badge.image:
            return "-"
        return format_html('<img class="jifen-badge-image" src="{}" alt="" width="32" height="32">', badge.image.url)

    @admin.display(description=gettext_lazy("preview"))
    def image_preview(self, badge: Badge) -> str:
        if not badge.image:
            return gettext("No image yet: the site shows a plain star.")
        return format_html('<img class="jifen-badge-image" src="{}" alt="" width="128" height="128">', badge.image.url)

    @admin.display(description=gettext_lazy("rules granting it"), ordering="rules_n")
    def rules_count(self, badge: Badge) -> int:
        return badge.rules_n

    @admin.display(description=gettext_lazy("users holding it"), ordering="holders_n")
    def holders_count(self, badge: Badge) -> int:
        return badge.holders_n

    @admin.display(description=gettext_lazy("rules granting it"))
    def granting_rules(self, badge: Badge) -> str:
        rules = list(ScoreRule.objects.filter(badge=badge).order_by("score_type")) if badge.pk else []
        if not rules:
            return gettext("None: choose this badge on a draft rule's page, or in the rules sheet's badge column.")
        return format_html_join(
            ", ",
            '<a href="{}">{}</a> ({})',
            ((reverse("admin:rules_scorerule_change", args=[r.pk]), r.score_type, r.get_status_display()) for r in rules),
        )

    @admin.display(description=gettext_lazy("users holding it"))
    def holders(self, badge: Badge) -> int:
        return getattr(badge, "holders_n", 0)

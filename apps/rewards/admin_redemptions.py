"""The redemption queue in the operator's admin (SPEC §11): users' redemptions, fulfilled or cancelled in bulk.

Redemptions are read-only here: they are made by users (the shop, `POST /api/me/redemptions`) and
move only through `apps.rewards.services.redemptions`, after a confirmation page, for operators
holding `rewards.fulfil_redemption` (the ledger operators group). Cancelling refunds the points and
gives the unit back to the stock; it asks for a note, which the user sees.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from simple_history.admin import SimpleHistoryAdmin

from apps.core.points import signed_points
from apps.core.workflow_admin import AuditHistoryMixin, ReadOnlyAdminMixin, action_confirmation_page, confirmation_page
from apps.ledger.changelists import CappedCountPaginator, UserListMixin
from apps.rewards.models import Redemption
from apps.rewards.services import redemptions as service

FULFIL, CANCEL = "fulfil", "cancel"


def _note_field() -> dict:
    return {
        "needs_comment": True,
        "comment_label": _("Note for the user"),
        "comment_help": _("Why it is cancelled: the user sees it beside the redemption."),
        "comment_max": service.NOTE_MAX_LENGTH,
    }


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdminMixin, AuditHistoryMixin, UserListMixin, SimpleHistoryAdmin):
    """The queue: pending redemptions first to mind; each one's page with Fulfil and Cancel for operators."""

    list_display = (
        "created_at",
        "user_column",
        "item_column",
        "point_type",
        "cost",
        "status_badge",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", ("item", admin.RelatedFieldListFilter), ("point_type", admin.RelatedFieldListFilter))
    list_select_related = ("user", "item", "point_type", "decided_by")
    ordering = ("-created_at", "-id")
    date_hierarchy = None
    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["fulfil_selected", "cancel_selected"]
    fields = (
        "user_column",
        "item_column",
        "point_type",
        "cost",
        "status_badge",
        "created_at",
        "client_key",
        "spend_column",
        "decided_by",
        "decided_at",
        "refund_column",
        "note",
    )
    readonly_fields = fields
    history_list_display = ["status", "note"]

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description=gettext_lazy("item"), ordering="item__code")
    def item_column(self, redemption: Redemption) -> str:
        return format_html("{} <small>({})</small>", redemption.item.name, redemption.item.code)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, redemption: Redemption) -> str:
        return format_html(
            '<span class="jifen-badge jifen-badge-{}">{}</span>', redemption.status, redemption.get_status_display()
        )

    @admin.display(description=gettext_lazy("spend entry"))
    def spend_column(self, redemption: Redemption) -> str:
        return self._entry_link(redemption.spend_entry)

    @admin.display(description=gettext_lazy("refund entry"))
    def refund_column(self, redemption: Redemption) -> str:
        return self._entry_link(redemption.refund_entry) if redemption.refund_entry_id else "-"

    @staticmethod
    def _entry_link(entry) -> str:
        url = reverse("admin:ledger_scorerecord_change", args=[entry.pk])
        return format_html('<a href="{}">{}</a> ({})', url, entry.serial_number, signed_points(entry.trade_amount))

    # --- Permissions: users make redemptions; operators only move their status.

    def has_fulfil_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(service.FULFIL_PERMISSION)

    # --- What a step does, for its confirmation page

    @staticmethod
    def consequences(redemption: Redemption, step: str) -> tuple[list[str], str | None]:
        if redemption.status != Redemption.Status.PENDING:
            return [], _("It is %(status)s: only a pending redemption can be fulfilled or cancelled.") % {
                "status": redemption.get_status_display()
            }
        facts = {
            "item": redemption.item.name,
            "user": redemption.user,
            "cost": redemption.cost,
            "type": redemption.point_type,
        }
        if step == FULFIL:
            return [
                _("%(user)s has received %(item)s: the redemption is marked fulfilled and can no longer be cancelled.") % facts,
                _("No points move: the %(cost)s %(type)s were spent when it was redeemed.") % facts,
            ], None
        return [
            _("%(cost)s %(type)s are refunded to %(user)s (a refund entry; the points come back with their own expiry).") % facts,
            _("One %(item)s goes back to the stock.") % facts,
            _("The user sees the redemption as cancelled, with your note.") % facts,
        ], None

    # --- The list's actions

    def _report(self, request, outcome: service.Decided, step: str) -> None:
        if outcome.changed:
            done = (
                ngettext("Fulfilled %(count)d redemption.", "Fulfilled %(count)d redemptions.", len(outcome.changed))
                if step == FULFIL
                else ngettext(
                    "Cancelled and refunded %(count)d redemption.",
                    "Cancelled and refunded %(count)d redemptions.",
                    len(outcome.changed),
                )
            )
            self.message_user(request, done % {"count": len(outcome.changed)}, messages.SUCCESS)
            for redemption in outcome.changed:
                self.log_change(request, redemption, redemption.get_status_display())
        if outcome.unchanged:
            already = ngettext(
                "%(count)d was already so; nothing changed for it.",
                "%(count)d were already so; nothing changed for them.",
                len(outcome.unchanged),
            )
            self.message_user(request, already % {"count": len(outcome.unchanged)}, messages.WARNING)
        for redemption, reason in outcome.refused:
            self.message_user(request, f"{redemption}: {reason}", messages.ERROR)

    def _confirm_rows(self, queryset, step: str) -> list[dict]:
        rows = []
        for redemption in queryset.select_related("user", "item", "point_type").order_by("pk"):
            lines, not_possible = self.consequences(redemption, step)
            rows.append(
                {
                    "object": redemption,
                    "badge": self.status_badge(redemption),
                    "consequences": lines,
                    "not_possible": not_possible,
                }
            )
        return rows

    @admin.action(description=gettext_lazy("Fulfil selected redemptions"), permissions=["fulfil"])
    def fulfil_selected(self, request, queryset):
        if request.POST.get("post") != "yes":
            rows = self._confirm_rows(queryset, FULFIL)
            return action_confirmation_page(
                self, request, action_name="fulfil_selected", label=_("Fulfil selected redemptions"), rows=rows
            )
        self._report(request, service.redemptions_fulfil(redemptions=list(queryset), actor=request.user), FULFIL)
        return None

    @admin.action(description=gettext_lazy("Cancel and refund selected redemptions"), permissions=["fulfil"])
    def cancel_selected(self, request, queryset):
        note = request.POST.get("comment", "")
        if request.POST.get("post") == "yes":
            try:
                outcome = service.redemptions_cancel(redemptions=list(queryset), actor=request.user, note=note)
            except service.RedemptionDecisionRefused as refused:
                self.message_user(request, str(refused), messages.ERROR)  # the note: ask again, with the rows
            else:
                self._report(request, outcome, CANCEL)
                return None
        rows = self._confirm_rows(queryset, CANCEL)
        return action_confirmation_page(
            self,
            request,
            action_name="cancel_selected",
            label=_("Cancel and refund selected redemptions"),
            rows=rows,
            comment=note,
            **_note_field(),
        )

    # --- One redemption's page: Fulfil and Cancel buttons, each with its confirmation page

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<path:object_id>/fulfil/", view(self.decide_view), {"step": FULFIL}, name="rewards_redemption_fulfil"),
            path("<path:object_id>/cancel/", view(self.decide_view), {"step": CANCEL}, name="rewards_redemption_cancel"),
        ]
        return own + super().get_urls()

    def decide_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        """GET: what fulfilling (cancelling) will do, and the button; POST: do it."""
        if not self.has_fulfil_permission(request):
            raise PermissionDenied
        redemption = get_object_or_404(Redemption.objects.select_related("user", "item", "point_type"), pk=unquote(object_id))
        page_url = reverse("admin:rewards_redemption_change", args=[redemption.pk])
        note = request.POST.get("comment", "")
        if request.method == "POST":
            try:
                if step == FULFIL:
                    decided = service.redemption_fulfil(redemption=redemption, actor=request.user)
                else:
                    decided = service.redemption_cancel(redemption=redemption, actor=request.user, note=note)
            except service.RedemptionDecisionRefused as refused:
                self.message_user(request, str(refused), messages.ERROR)
                if step == CANCEL and redemption.status == Redemption.Status.PENDING:
                    return self._decide_page(request, redemption, step, note=note)  # the note: ask again
            else:
                self.log_change(request, decided, decided.get_status_display())
                self.message_user(request, self._decided_message(decided), messages.SUCCESS)
            return HttpResponseRedirect(page_url)
        return self._decide_page(request, redemption, step, note=note)

    def _decide_page(self, request, redemption: Redemption, step: str, *, note: str = "") -> HttpResponse:
        lines, not_possible = self.consequences(redemption, step)
        label = _("Fulfil") if step == FULFIL else _("Cancel and refund")
        return confirmation_page(
            self,
            request,
            obj=redemption,
            title=_("%(step)s: %(object)s") % {"step": label, "object": redemption},
            consequences=lines,
            not_possible=not_possible,
            action_url=reverse(f"admin:rewards_redemption_{step}", args=[redemption.pk]),
            cancel_url=reverse("admin:rewards_redemption_change", args=[redemption.pk]),
            confirm_label=label,
            confirm_class="approve" if step == FULFIL else "reject",
            status_badge=self.status_badge(redemption),
            **(_note_field() | {"comment": note} if step == CANCEL else {}),
        )

    @staticmethod
    def _decided_message(redemption: Redemption) -> str:
        values = {"item": redemption.item.name, "user": redemption.user, "cost": redemption.cost}
        if redemption.status == Redemption.Status.FULFILLED:
            return _("Fulfilled: %(item)s for %(user)s.") % values
        return _("Cancelled: %(item)s for %(user)s; %(cost)s points refunded.") % values

    def change_view(self, request, object_id, form_url="", extra_context=None):
        redemption = self.get_object(request, unquote(object_id))
        can_decide = (
            redemption is not None and redemption.status == Redemption.Status.PENDING and self.has_fulfil_permission(request)
        )
        extra_context = {**(extra_context or {}), "can_decide": can_decide}
        return super().change_view(request, object_id, form_url, extra_context)

"""The ledger in the operator's admin: accounts, the per-user page, entries, adjustments (SPEC §7).

Balances and entries change only through the ledger's services, never in a form. Lists over the
big tables (accounts, entries) count cheaply and filter, search and sort on indexes; see
`apps.ledger.changelists`.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from import_export.admin import ExportMixin
from simple_history.admin import SimpleHistoryAdmin

from apps.core.points import signed_points
from apps.core.sheets import LabelledExportForm, LocalDateExportFilenameMixin
from apps.core.workflow_admin import AuditHistoryMixin, ReadOnlyAdminMixin, confirm_first, confirmation_page
from apps.ledger.changelists import (
    BalanceFilter,
    BigTableAdminMixin,
    CappedCountPaginator,
    SerialNumberSearchMixin,
    UserListMixin,
)
from apps.ledger.forms import AdjustmentRequestForm
from apps.ledger.models import Account, Adjustment, LeaderboardTotal, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.resources import LedgerCSV, LedgerXLSX, ScoreRecordResource
from apps.ledger.services import adjustments
from apps.ledger.user_page import user_page_context
from apps.ledger.views import leaderboard_context


def adjustment_point_type(adjustment: Adjustment) -> PointType:
    """The adjustment's point type: one that names none (from before types) is the default's."""
    if adjustment.point_type_id is None:
        return PointType.objects.get(pk=default_point_type_id())
    return adjustment.point_type


class PointTypeFilter(admin.SimpleListFilter):
    """Rows by point type; `point_type` is the field filtered on."""

    title = gettext_lazy("point type")
    parameter_name = "point_type"
    field = "point_type"

    def lookups(self, request, model_admin):
        return [(str(point_type.pk), str(point_type)) for point_type in PointType.objects.all()]

    def queryset(self, request, queryset):
        value = self.value()
        if not value or not value.isdigit():
            return queryset
        return queryset.filter(**{f"{self.field}_id": int(value)})


class AdjustmentPointTypeFilter(PointTypeFilter):
    """Adjustments from before point types name none: they are the default type's."""

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit() and int(value) == default_point_type_id():
            return queryset.filter(Q(point_type_id=int(value)) | Q(point_type__isnull=True))
        return super().queryset(request, queryset)


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Balances and entries change only through the ledger service, never by hand."""

    show_full_result_count = False


@admin.register(Account)
class AccountAdmin(BigTableAdminMixin, ReadOnlyAdmin):
    list_display = ("user_column", "point_type", "balance_column", "earned_column", "entries_column", "last_activity_at")
    list_display_links = None  # the user column links to the per-user page instead of a bare form
    # The type is a filter on the rows the page walks (accounts have no index on it: one would cost
    # every award an index write); the list never counts them all (CappedCountPaginator).
    list_filter = (PointTypeFilter, BalanceFilter)
    # Sorting by last activity or entries would sort the whole table: indexing last_activity_at
    # would cost the scoring pipeline an index write on every account update.
    sortable_by = ("user_column", "balance_column")
    list_select_related = ("user", "point_type")
    raw_id_fields = ("user",)

    @admin.display(description=gettext_lazy("earned in all"))
    def earned_column(self, account: Account) -> int:
        return account.earned_total

    @admin.display(description=gettext_lazy("balance"), ordering="balance")
    def balance_column(self, account: Account) -> str:
        if account.balance < 0:  # only a reversal can do this (SPEC §5); make it stand out
            return format_html('<strong style="color: var(--error-fg)">{}</strong>', account.balance)
        return str(account.balance)

    @admin.display(description=gettext_lazy("entries"))
    def entries_column(self, account: Account) -> int:
        return account.last_seq  # seq has no gaps, so this is the number of entries: no COUNT

    def get_urls(self):
        own = [path("user/<int:user_id>/", self.admin_site.admin_view(self.user_view), name="ledger_account_user")]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """An account's page is its user's page, which also serves users who have no account yet."""
        account = get_object_or_404(Account, pk=unquote(object_id))
        return redirect("admin:ledger_account_user", user_id=account.user_id)

    def user_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        """Balance, progress on every active rule, history, completions with the engine's why, adjustments."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **user_page_context(request, user_id=user_id, admin_site=self.admin_site),
            "opts": self.opts,
        }
        return TemplateResponse(request, "admin/ledger/user_page.html", context)


@admin.register(LeaderboardTotal)
class LeaderboardAdmin(ReadOnlyAdmin):
    """The leaderboards as the site shows them, with the same choices: totals are never edited by hand."""

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **leaderboard_context(request, count_ranked=True),
            "opts": self.opts,
            "title": _("Leaderboards"),
        }
        return TemplateResponse(request, "admin/ledger/leaderboardtotal/leaderboard.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:ledger_leaderboardtotal_changelist")


@admin.register(ScoreRecord)
class ScoreRecordAdmin(SerialNumberSearchMixin, LocalDateExportFilenameMixin, ExportMixin, ReadOnlyAdmin):
    list_display = (
        "serial_number",
        "created_at",
        "user_column",
        "point_type",
        "kind",
        "trade_amount",
        "amount_before_trade",
        "amount_after_trade",
        "business_type",  # the rule's code for an award, the reason for an adjustment
    )
    # kind: the partial index of rare kinds (awards walk the created_at index); rule and user:
    # their foreign key indexes; dates: the created_at index, probed per period by the template.
    list_filter = ("kind", ("rule", admin.RelatedFieldListFilter))
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ("serial_number", "created_at")  # the unique index and the created_at index
    list_select_related = ("user", "point_type")
    raw_id_fields = ("account", "user", "score_info", "rule", "completion", "reverses")
    readonly_fields = ("adjustment_link",)
    resource_classes = [ScoreRecordResource]
    export_formats = [LedgerCSV, LedgerXLSX]
    export_form_class = LabelledExportForm
    export_max_rows = 100_000

    @admin.display(description=gettext_lazy("adjustment"))
    def adjustment_link(self, entry: ScoreRecord) -> str:
        adjustment = Adjustment.objects.filter(entry=entry).first()
        if adjustment is None:
            return "-"
        url = reverse("admin:ledger_adjustment_change", args=[adjustment.pk])
        return format_html('<a href="{}">{}</a>', url, adjustment.reason)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_export_data(self, file_format, request, queryset, **kwargs):
        """The library's own, with a size limit, and telling a binary format by what it is.

        The library recognises binary formats by their exact class; LedgerXLSX is a subclass, and
        XLSX cells must keep their native types (numbers that a spreadsheet can sum, dates).
        """
        if not self.has_export_permission(request):
            raise PermissionDenied
        if queryset.order_by()[: self.export_max_rows + 1].count() > self.export_max_rows:
            # The library builds the whole file in the web process's memory; the view shows this.
            raise ValueError(
                _("More than %(max)s entries: narrow the list (dates, kind, rule or user) and export again.")
                % {"max": f"{self.export_max_rows:,}"}
            )
        data = self.get_data_for_export(request, queryset, force_native_type=file_format.is_binary(), **kwargs)
        export_data = file_format.export_data(data)
        encoding = kwargs.get("encoding")
        if not file_format.is_binary() and encoding:
            export_data = export_data.encode(encoding)
        return export_data

    def get_export_queryset(self, request):
        # The export reads each row's user, rule and reversed entry: join them, not a query per row.
        return super().get_export_queryset(request).select_related("user", "point_type", "rule", "reverses")


@admin.register(Adjustment)
class AdjustmentAdmin(AuditHistoryMixin, UserListMixin, SimpleHistoryAdmin):
    """Requests (the add view), the list with approve/reject actions, and each one's page with its decision."""

    list_display = (
        "created_at",
        "user_column",
        "amount_column",
        "point_type_column",
        "status",
        "reason",
        "requested_by",
        "decided_by",
        "decided_at",
        "entry_column",
    )
    list_filter = ("status", AdjustmentPointTypeFilter)  # status: the (status, created_at) index
    list_select_related = ("user", "point_type", "requested_by", "decided_by", "entry")
    raw_id_fields = ("user",)
    paginator = CappedCountPaginator
    list_per_page = 50  # like the other big lists: rendering a row costs more than finding it
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["approve_selected", "reject_selected"]
    fields = (
        "user_column",
        "amount_column",
        "point_type_column",
        "reason",
        "status",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
        "entry_column",
        "request_token",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("amount"), ordering="amount")
    def amount_column(self, adjustment: Adjustment) -> str:
        return signed_points(adjustment.amount)

    @admin.display(description=gettext_lazy("point type"), ordering="point_type")
    def point_type_column(self, adjustment: Adjustment) -> str:
        return str(adjustment_point_type(adjustment))

    @admin.display(description=gettext_lazy("ledger entry"))
    def entry_column(self, adjustment: Adjustment) -> str:
        if adjustment.entry is None:
            return "-"
        url = reverse("admin:ledger_scorerecord_change", args=[adjustment.entry_id])
        return format_html('<a href="{}">{}</a>', url, adjustment.entry.serial_number)

    # --- Permissions: request = add, decide = approve; nothing is edited or deleted by hand.

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_approve_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(adjustments.APPROVE_PERMISSION)

    # --- Requesting

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"user": request.GET.get("user")} if request.GET.get("user", "").isdigit() else {}
        form = AdjustmentRequestForm(request.POST or None, initial=initial, admin_site=self.admin_site)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = adjustments.adjustment_request(
                    user_id=data["user"].pk,
                    point_type_id=data["point_type"].pk if data.get("point_type") else None,
                    amount=data["amount"],
                    reason=data["reason"],
                    request_token=data["request_token"],
                    actor=request.user,
                )
            except adjustments.AdjustmentRefused as refused:
                form.add_error(None, str(refused))
            else:
                self._report_request(request, result)
                return HttpResponseRedirect(reverse("admin:ledger_adjustment_change", args=[result.adjustment.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Request an adjustment"),
            "form": form,
            "media": self.media + form.media,
            "threshold": adjustments.approval_threshold(PointType.objects.filter(is_default=True).first()),
            "type_thresholds": [(kind, adjustments.approval_threshold(kind)) for kind in PointType.objects.all()],
        }
        return TemplateResponse(request, "admin/ledger/adjustment/request_form.html", context)

    def _report_request(self, request, result: adjustments.AdjustmentRequested) -> None:
        adjustment = result.adjustment
        if not result.created:
            self.message_user(request, _("This form was already submitted; this is the adjustment it made."), messages.WARNING)
            return
        self.log_addition(request, adjustment, [{"added": {}}])
        values = {"amount": signed_points(adjustment.amount), "user": adjustment.user}
        size = abs(adjustment.amount)
        point_type = adjustment_point_type(adjustment)
        if adjustment.status == Adjustment.Status.POSTED and not point_type.is_default:
            posted = _("Posted %(amount)s %(type)s for %(user)s.") % {**values, "type": point_type}
            self.message_user(request, posted, messages.SUCCESS)
        elif adjustment.status == Adjustment.Status.POSTED:
            posted = ngettext("Posted %(amount)s point for %(user)s.", "Posted %(amount)s points for %(user)s.", size)
            self.message_user(request, posted % values, messages.SUCCESS)
        elif not point_type.is_default:
            waiting = _(
                "%(amount)s %(type)s for %(user)s need a second operator's approval; "
                "until then the adjustment waits, pending, in the Adjustments list."
            )
            self.message_user(request, waiting % {**values, "type": point_type}, messages.WARNING)
        else:
            # Nothing is posted yet: not a success, but something still to do (by someone else).
            waiting = ngettext(
                "%(amount)s point for %(user)s needs a second operator's approval; "
                "until then the adjustment waits, pending, in the Adjustments list.",
                "%(amount)s points for %(user)s need a second operator's approval; "
                "until then the adjustment waits, pending, in the Adjustments list.",
                size,
            )
            self.message_user(request, waiting % values, messages.WARNING)

    # --- Deciding: buttons on an adjustment's page, and actions on the list

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<path:object_id>/approve/", view(self.decide_view), {"approve": True}, name="ledger_adjustment_approve"),
            path("<path:object_id>/reject/", view(self.decide_view), {"approve": False}, name="ledger_adjustment_reject"),
        ]
        return own + super().get_urls()

    @staticmethod
    def _decide(request, adjustment: Adjustment, *, approve: bool) -> Adjustment:
        service = adjustments.adjustment_approve if approve else adjustments.adjustment_reject
        return service(adjustment=adjustment, actor=request.user)

    def decide_view(self, request: HttpRequest, object_id: str, approve: bool) -> HttpResponse:
        """GET: what approving (rejecting) will do, and the button; POST: the decision."""
        if not self.has_approve_permission(request):
            raise PermissionDenied
        adjustment = get_object_or_404(Adjustment.objects.select_related("user", "requested_by"), pk=unquote(object_id))
        if request.method != "POST":
            lines, not_possible = self._decision_consequences(adjustment, approve=approve)
            label = _("Approve and post") if approve else _("Reject")
            return confirmation_page(
                self,
                request,
                obj=adjustment,
                title=_("%(step)s: %(object)s") % {"step": label, "object": adjustment},
                consequences=lines,
                not_possible=not_possible,
                action_url=reverse(
                    "admin:ledger_adjustment_approve" if approve else "admin:ledger_adjustment_reject", args=[adjustment.pk]
                ),
                cancel_url=reverse("admin:ledger_adjustment_change", args=[adjustment.pk]),
                confirm_label=label,
                confirm_class="approve" if approve else "reject",
            )
        try:
            decided = self._decide(request, adjustment, approve=approve)
        except adjustments.AdjustmentForbidden as refused:
            raise PermissionDenied(str(refused)) from None
        except adjustments.AdjustmentRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            self.log_change(request, decided, decided.get_status_display())
            self.message_user(request, self._decided_message(decided), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:ledger_adjustment_change", args=[adjustment.pk]))

    @staticmethod
    def _decision_consequences(adjustment: Adjustment, *, approve: bool) -> tuple[list[str], str | None]:
        if adjustment.status != Adjustment.Status.PENDING:
            return [], _("%(object)s is %(status)s: it was decided already.") % {
                "object": adjustment,
                "status": adjustment.get_status_display(),
            }
        point_type = adjustment_point_type(adjustment)
        facts = {
            "amount": adjustment.amount,
            "user": adjustment.user,
            "requester": adjustment.requested_by or "—",
            "reason": adjustment.reason,
            "type": point_type,
        }
        if approve:
            return [
                _("%(amount)+d points are posted to %(user)s's balance at once, as one adjustment entry.") % facts,
                _("Point type: %(type)s.") % facts,
                _("Requested by %(requester)s, for: %(reason)s") % facts,
                _("Entries are never changed: to undo it later, request the opposite adjustment.") % facts,
            ], None
        return [
            _("The request for %(amount)+d points for %(user)s is closed and nothing is posted.") % facts,
            _("Point type: %(type)s.") % facts,
            _("Requested by %(requester)s, for: %(reason)s") % facts,
        ], None

    @staticmethod
    def _decided_message(adjustment: Adjustment) -> str:
        values = {"amount": signed_points(adjustment.amount), "user": adjustment.user}
        size = abs(adjustment.amount)
        point_type = adjustment_point_type(adjustment)
        if not point_type.is_default:
            values["type"] = point_type
            if adjustment.status == Adjustment.Status.POSTED:
                return _("Approved: %(amount)s %(type)s posted for %(user)s.") % values
            return _("Rejected: %(amount)s %(type)s for %(user)s will not be posted.") % values
        if adjustment.status == Adjustment.Status.POSTED:
            return (
                ngettext(
                    "Approved: %(amount)s point posted for %(user)s.", "Approved: %(amount)s points posted for %(user)s.", size
                )
                % values
            )
        return (
            ngettext(
                "Rejected: %(amount)s point for %(user)s will not be posted.",
                "Rejected: %(amount)s points for %(user)s will not be posted.",
                size,
            )
            % values
        )

    def _decide_selected(self, request, queryset, *, approve: bool) -> None:
        for adjustment in queryset.select_related("user").order_by("pk"):
            try:
                decided = self._decide(request, adjustment, approve=approve)
            except adjustments.AdjustmentRefused as refused:
                self.message_user(request, f"{adjustment}: {refused}", messages.ERROR)
            else:
                self.log_change(request, decided, decided.get_status_display())
                self.message_user(request, self._decided_message(decided), messages.SUCCESS)

    @admin.action(description=gettext_lazy("Approve selected pending adjustments"), permissions=["approve"])
    @confirm_first(lambda admin_, adjustment: admin_._decision_consequences(adjustment, approve=True))
    def approve_selected(self, request, queryset):
        self._decide_selected(request, queryset, approve=True)

    @admin.action(description=gettext_lazy("Reject selected pending adjustments"), permissions=["approve"])
    @confirm_first(lambda admin_, adjustment: admin_._decision_consequences(adjustment, approve=False))
    def reject_selected(self, request, queryset):
        self._decide_selected(request, queryset, approve=False)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        adjustment = self.get_object(request, unquote(object_id))
        extra_context = {**(extra_context or {}), **self._decision_context(request, adjustment)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _decision_context(self, request, adjustment: Adjustment | None) -> dict:
        """What the page offers: the decision buttons, or why this operator gets none."""
        if adjustment is None or adjustment.status != Adjustment.Status.PENDING:
            return {}
        if not self.has_approve_permission(request):
            note = _("Waiting for an operator who may approve adjustments.")
        elif adjustment.requested_by_id == request.user.pk:
            note = _("You requested this adjustment; another operator must approve or reject it.")
        elif adjustment.user_id == request.user.pk:
            note = _("This adjustment is for your own account; another operator must decide it.")
        else:
            return {"can_decide": True}
        return {"decision_note": note}


# The site's users: Django's user admin, made to hold 100,000 users and more. Its default search
# ("contains" over four columns) and full count read the whole table on every page.
admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class SiteUserAdmin(UserAdmin):
    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("username",)
    search_help_text = gettext_lazy("The beginning of a username (case matters), or an exact email address.")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(email__iexact=term), False
        return queryset.filter(username__startswith=term), False


# Point types and levels: their own module, registered with the rest of the ledger.
from apps.ledger import admin_economy, admin_expiry  # noqa: E402, F401

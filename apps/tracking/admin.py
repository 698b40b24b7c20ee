from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from simple_history.admin import SimpleHistoryAdmin

from apps.core.workflow_admin import AuditHistoryMixin, confirm_first, confirmation_page
from apps.tracking.forms import ServiceKeyCreateForm
from apps.tracking.models import FailedEvent, OutboxEvent, ServiceKey
from apps.tracking.services import pipeline, service_keys
from apps.tracking.signing import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP

SIGNING_HEADERS = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE)


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
        count = unsendable = 0
        for failed in queryset.filter(status=FailedEvent.Status.FAILED):
            if pipeline.failed_event_retry(failed=failed):
                count += 1
            else:
                unsendable += 1
        message = ngettext("%(count)d event sent again.", "%(count)d events sent again.", count) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)
        if unsendable:
            message = ngettext(
                "%(count)d event was not sent: its payload could only be stored escaped (the error shows it as received).",
                "%(count)d events were not sent: their payloads could only be stored escaped (the errors show them as received).",
                unsendable,
            )
            self.message_user(request, message % {"count": unsendable}, messages.WARNING)


class KeyStatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", gettext_lazy("active")), ("revoked", gettext_lazy("revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ServiceKey)
class ServiceKeyAdmin(AuditHistoryMixin, SimpleHistoryAdmin):
    """Keys of other systems for POST /api/events: created here (the secret shown once), revoked here, never deleted.

    No page shows a secret after creation: it is in no field, list or history of this admin.
    """

    list_display = (
        "name",
        "key_id",
        "status_column",
        "task_types",
        "may_hold",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (KeyStatusFilter,)
    search_fields = ("name", "key_id")
    fields = ("name", "key_id", "task_types", "may_hold", "created_by", "created_at", "last_used_at", "revoked_at", "revoked_by")
    readonly_fields = fields
    actions = ["revoke_selected"]
    history_list_display = ("revoked_at",)

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a revoked key stays, with its history

    @admin.display(description=gettext_lazy("status"))
    def status_column(self, key: ServiceKey) -> str:
        if key.is_active:
            return format_html('<span class="jifen-badge jifen-badge-active">{}</span>', _("active"))
        return format_html('<span class="jifen-badge jifen-badge-retired">{}</span>', _("revoked"))

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ServiceKeyCreateForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form}
        if request.method == "POST" and form.is_valid():
            key, secret = service_keys.service_key_create(
                name=form.cleaned_data["name"],
                task_types=form.cleaned_data["task_types"],
                may_hold=form.cleaned_data["may_hold"],
                created_by=request.user,
            )
            self.log_addition(request, key, [{"added": {}}])
            # The secret is in this response only: not in a message (a cookie), not in the database's history.
            context.update(title=_("Service key created"), key=key, secret=secret, signing_headers=SIGNING_HEADERS)
            response = TemplateResponse(request, "admin/tracking/servicekey/created.html", context)
            response["Cache-Control"] = "no-store"
            return response
        context.update(title=_("Add service key"), media=self.media + form.media)
        return TemplateResponse(request, "admin/tracking/servicekey/add_form.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        key = self.get_object(request, unquote(object_id))
        extra = {
            **(extra_context or {}),
            "can_revoke": key is not None and key.is_active and self.has_change_permission(request, key),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        own = [path("<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="tracking_servicekey_revoke")]
        return own + super().get_urls()

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what revoking does, and the button; POST: the key is revoked."""
        key = get_object_or_404(ServiceKey, pk=unquote(object_id))
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        if request.method != "POST":
            lines, not_possible = self._revoke_consequences(key)
            return confirmation_page(
                self,
                request,
                obj=key,
                title=_("Revoke %(key)s") % {"key": key},
                consequences=lines,
                not_possible=not_possible,
                action_url=reverse("admin:tracking_servicekey_revoke", args=[key.pk]),
                cancel_url=reverse("admin:tracking_servicekey_change", args=[key.pk]),
                confirm_label=_("Revoke this key now"),
                confirm_class="revoke",
            )
        self._revoke(request, [key])
        return HttpResponseRedirect(reverse("admin:tracking_servicekey_change", args=[key.pk]))

    @staticmethod
    def _revoke_consequences(key: ServiceKey) -> tuple[list[str], str | None]:
        if not key.is_active:
            return [], _("%(key)s is revoked already.") % {"key": key}
        return [
            _("Every request signed with %(key)s is refused from now on, on every server.") % {"key": key},
            _("This cannot be undone: give the service a new key (Add service key) if it should go on sending events."),
        ], None

    @admin.action(description=gettext_lazy("Revoke selected keys"), permissions=["change"])
    @confirm_first(lambda admin_, key: admin_._revoke_consequences(key))
    def revoke_selected(self, request, queryset):
        self._revoke(request, list(queryset))

    def _revoke(self, request, keys: list[ServiceKey]) -> None:
        count = 0
        for key in keys:
            if service_keys.service_key_revoke(key=key, revoked_by=request.user):
                self.log_change(request, key, _("Revoked"))
                count += 1
        message = ngettext("%(count)d key revoked.", "%(count)d keys revoked.", count) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)

"""The admin of webhooks (SPEC §12): endpoints (their secret shown once) and every delivery with its attempts.

Endpoints carry secrets, so they are managed as service keys are: by superusers (no role holds add
or change on them); auditors see them without the secret, which no page shows after it was made.
Every change goes through apps.notifications.services.deliveries.
"""

from django import forms
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

from apps.core.clock import local_text
from apps.core.workflow_admin import confirm_first, confirmation_page
from apps.ledger.changelists import CappedCountPaginator
from apps.notifications.events import ENDPOINT_TEST, EVENT_TYPES
from apps.notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.notifications.selectors import endpoints_with_counts
from apps.notifications.services import deliveries as services

# "Send again" of many deliveries waits for their answers in the admin's request: at most this many.
RESEND_MAX = 50
_PENDING, _FAILED = WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label=gettext_lazy("URL"),
        max_length=WebhookEndpoint._meta.get_field("url").max_length,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text=WebhookEndpoint._meta.get_field("url").help_text,
    )
    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Event types"),
        choices=list(EVENT_TYPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("The events this endpoint receives; docs/api.md describes each one's data."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("name", "url", "event_types", "active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if services.url_problem(url):
            raise forms.ValidationError(_("Only http:// and https:// URLs with a host can receive webhooks."))
        return url


def _status_badge(endpoint: WebhookEndpoint) -> str:
    if endpoint.disabled_at:
        text = _("disabled at %(time)s for failing") % {"time": local_text(endpoint.disabled_at)}
        return format_html('<span class="jifen-badge jifen-badge-disabled" title="{}">{}</span>', endpoint.disabled_reason, text)
    if not endpoint.active:
        return format_html('<span class="jifen-badge jifen-badge-retired">{}</span>', _("off"))
    if endpoint.failing_since:
        text = _("failing since %(time)s") % {"time": local_text(endpoint.failing_since)}
        return format_html('<span class="jifen-badge jifen-badge-editing">{}</span>', text)
    return format_html('<span class="jifen-badge jifen-badge-active">{}</span>', _("active"))


def _deliveries_link(endpoint: WebhookEndpoint, status: str, count: int) -> str:
    url = reverse("admin:notifications_webhookdelivery_changelist")
    return format_html('<a href="{}">{}</a>', f"{url}?endpoint__id__exact={endpoint.pk}&status__exact={status}", count)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("name", "url", "status_column", "waiting_column", "failed_column")
    list_filter = ("active",)
    search_fields = ("name", "url")
    readonly_fields = ("failing_since", "disabled_at", "disabled_reason", "created_by", "created_at", "updated_at")
    actions = ["rotate_secret", "send_test", "enable"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_queryset(self, request):
        return endpoints_with_counts(super().get_queryset(request))

    @admin.display(description=gettext_lazy("status"))
    def status_column(self, endpoint: WebhookEndpoint) -> str:
        return _status_badge(endpoint)

    @admin.display(description=gettext_lazy("waiting"), ordering="waiting")
    def waiting_column(self, endpoint: WebhookEndpoint) -> str:
        return _deliveries_link(endpoint, _PENDING, endpoint.waiting)

    @admin.display(description=gettext_lazy("failed"), ordering="given_up")
    def failed_column(self, endpoint: WebhookEndpoint) -> str:
        return _deliveries_link(endpoint, _FAILED, endpoint.given_up)

    # --- Adding: the secret is on the answer's page only -------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = WebhookEndpointForm(request.POST or None)
        del form.fields["active"]
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form}
        if request.method == "POST" and form.is_valid():
            endpoint, secret = services.webhook_endpoint_create(
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                created_by=request.user,
            )
            self.log_addition(request, endpoint, [{"added": {}}])
            return self._secret_page(request, endpoint, secret, title=_("Webhook endpoint created"))
        context.update(title=_("Add webhook endpoint"), media=self.media + form.media)
        return TemplateResponse(request, "admin/notifications/webhookendpoint/add_form.html", context)

    def _secret_page(self, request, endpoint: WebhookEndpoint, secret: str, *, title: str) -> HttpResponse:
        # The secret is in this response only: not in a message (a cookie), a log or the change form.
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": title}
        context.update(endpoints=[(endpoint, secret)])
        response = TemplateResponse(request, "admin/notifications/webhookendpoint/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def save_model(self, request, obj, form, change):
        if not change:  # add_view above creates; this is Django's path, kept for completeness
            raise PermissionDenied
        stored = WebhookEndpoint.objects.get(pk=obj.pk)
        services.webhook_endpoint_update(
            endpoint=stored,
            name=form.cleaned_data["name"],
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            active=form.cleaned_data["active"],
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        endpoint = self.get_object(request, unquote(object_id))
        may_change = endpoint is not None and self.has_change_permission(request, endpoint)
        extra = {**(extra_context or {}), "may_act": may_change, "endpoint_status": endpoint and _status_badge(endpoint)}
        return super().change_view(request, object_id, form_url, extra)

    # --- Buttons: rotate the secret, send a test event, enable ----------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("<path:object_id>/rotate-secret/", view(self.rotate_view), name="notifications_webhookendpoint_rotate"),
            path("<path:object_id>/send-test/", view(self.send_test_view), name="notifications_webhookendpoint_send_test"),
            path("<path:object_id>/enable/", view(self.enable_view), name="notifications_webhookendpoint_enable"),
        ]
        return own + super().get_urls()

    def _endpoint_for_change(self, request, object_id) -> WebhookEndpoint:
        endpoint = get_object_or_404(WebhookEndpoint, pk=unquote(object_id))
        if not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        return endpoint

    def _ask(self, request, endpoint, *, step: str, lines: list[str], label: str, not_possible: str | None = None):
        return confirmation_page(
            self,
            request,
            obj=endpoint,
            title=f"{label}: {endpoint}",
            consequences=lines,
            not_possible=not_possible,
            action_url=reverse(f"admin:notifications_webhookendpoint_{step}", args=[endpoint.pk]),
            cancel_url=reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]),
            confirm_label=label,
        )

    def _back(self, endpoint) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk]))

    @staticmethod
    def _rotate_consequences(endpoint) -> tuple[list[str], str | None]:
        return [
            _("A new secret is made and shown once, on the next page; the old one stops working at once."),
            _("Every attempt from now on, retries of waiting deliveries included, is signed with the new secret."),
        ], None

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what rotating does; POST: a new secret, shown once."""
        endpoint = self._endpoint_for_change(request, object_id)
        if request.method != "POST":
            lines, _none = self._rotate_consequences(endpoint)
            return self._ask(request, endpoint, step="rotate", lines=lines, label=_("Rotate the secret"))
        secret = services.webhook_endpoint_rotate_secret(endpoint=endpoint)
        self.log_change(request, endpoint, _("Secret rotated"))
        return self._secret_page(request, endpoint, secret, title=_("New secret for %(name)s") % {"name": endpoint.name})

    @staticmethod
    def _test_consequences(endpoint) -> tuple[list[str], str | None]:
        if not endpoint.active:
            return [], _("%(name)s is not active: nothing would send a test event.") % {"name": endpoint}
        return [_("A webhook.test event is written for this endpoint only and sent within seconds, signed like any other.")], None

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint_for_change(request, object_id)
        if request.method != "POST":
            lines, not_possible = self._test_consequences(endpoint)
            return self._ask(
                request, endpoint, step="send_test", lines=lines, label=_("Send a test event"), not_possible=not_possible
            )
        self._send_tests(request, [endpoint])
        return self._back(endpoint)

    @staticmethod
    def _enable_consequences(endpoint) -> tuple[list[str], str | None]:
        if endpoint.active:
            return [], _("%(name)s is active already.") % {"name": endpoint}
        return [
            _("The endpoint receives new events again, and every delivery waiting for it is sent now."),
            _("A waiting delivery first tried more than a day ago gets one more attempt."),
        ], None

    def enable_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self._endpoint_for_change(request, object_id)
        if request.method != "POST":
            lines, not_possible = self._enable_consequences(endpoint)
            return self._ask(request, endpoint, step="enable", lines=lines, label=_("Enable"), not_possible=not_possible)
        self._enable(request, [endpoint])
        return self._back(endpoint)

    # --- The same as list actions ----------------------------------------------------------------

    @admin.action(description=gettext_lazy("Rotate the secrets of the selected endpoints"), permissions=["change"])
    @confirm_first(lambda admin_, endpoint: admin_._rotate_consequences(endpoint))
    def rotate_secret(self, request, queryset):
        pairs = []
        for endpoint in queryset.order_by("pk"):
            pairs.append((endpoint, services.webhook_endpoint_rotate_secret(endpoint=endpoint)))
            self.log_change(request, endpoint, _("Secret rotated"))
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": _("New secrets"), "endpoints": pairs}
        response = TemplateResponse(request, "admin/notifications/webhookendpoint/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=gettext_lazy("Send a test event"), permissions=["change"])
    def send_test(self, request, queryset):
        self._send_tests(request, list(queryset.order_by("pk")))

    def _send_tests(self, request, endpoints: list[WebhookEndpoint]) -> None:
        sent = 0
        for endpoint in endpoints:
            try:
                services.webhook_endpoint_send_test(endpoint=endpoint, sent_by=request.user.get_username())
                sent += 1
            except services.EndpointNotActive:
                self.message_user(request, _("%(name)s is not active: no test event.") % {"name": endpoint}, messages.WARNING)
        if sent:
            message = ngettext(
                "A test event was written for %(count)d endpoint; it is sent within seconds (see its deliveries).",
                "A test event was written for each of %(count)d endpoints; they are sent within seconds (see their deliveries).",
                sent,
            )
            self.message_user(request, message % {"count": sent}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Enable the selected endpoints"), permissions=["change"])
    def enable(self, request, queryset):
        self._enable(request, list(queryset.order_by("pk")))

    def _enable(self, request, endpoints: list[WebhookEndpoint]) -> None:
        count = 0
        for endpoint in endpoints:
            if services.webhook_endpoint_enable(endpoint=endpoint):
                self.log_change(request, endpoint, _("Enabled"))
                count += 1
        message = ngettext("%(count)d endpoint enabled.", "%(count)d endpoints enabled.", count) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)


class EventTypeFilter(admin.SimpleListFilter):
    """The known event types (a DISTINCT over the deliveries would read them all)."""

    title = gettext_lazy("event type")
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [*EVENT_TYPES.items(), (ENDPOINT_TEST, gettext_lazy("test event"))]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "status_code", "duration_ms", "error", "response", "manual")
    readonly_fields = fields
    extra = 0
    can_delete = False
    classes = ["jifen-attempts"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Every delivery, read-only, with each attempt and its answer; "send again" goes through the service."""

    list_display = (
        "created_column",
        "endpoint",
        "event_type",
        "message_id",
        "status",
        "attempts",
        "last_status_code",
        "next_column",
    )
    list_filter = ("status", "endpoint", EventTypeFilter)
    search_fields = ("message_id",)
    list_select_related = ("endpoint",)
    fields = (
        "endpoint",
        "event_type",
        "message_id",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "body",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["send_again"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    ordering = ["-id"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what was sent; old ones are pruned (JIFEN_WEBHOOK_KEEP_DAYS)

    @admin.display(description=gettext_lazy("created at"), ordering="id")
    def created_column(self, delivery: WebhookDelivery) -> str:
        return local_text(delivery.created_at)

    @admin.display(description=gettext_lazy("next attempt"), ordering="next_attempt_at")
    def next_column(self, delivery: WebhookDelivery) -> str:
        return local_text(delivery.next_attempt_at) if delivery.next_attempt_at else "–"

    @admin.display(description=gettext_lazy("body"))
    def body(self, delivery: WebhookDelivery) -> str:
        return format_html('<pre class="jifen-webhook-body" id="delivery-body">{}</pre>', delivery.payload)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        delivery = self.get_object(request, unquote(object_id))
        extra = {
            **(extra_context or {}),
            "may_send_again": delivery is not None and self.has_change_permission(request, delivery),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/send-again/",
                self.admin_site.admin_view(self.send_again_view),
                name="notifications_webhookdelivery_send_again",
            )
        ]
        return own + super().get_urls()

    def send_again_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what sending again does; POST: one attempt now, its answer reported."""
        delivery = get_object_or_404(WebhookDelivery, pk=unquote(object_id))
        if not self.has_change_permission(request, delivery):
            raise PermissionDenied
        if request.method != "POST":
            return confirmation_page(
                self,
                request,
                obj=delivery,
                title=_("Send %(delivery)s again") % {"delivery": delivery},
                consequences=self._send_again_consequences(delivery)[0],
                action_url=reverse("admin:notifications_webhookdelivery_send_again", args=[delivery.pk]),
                cancel_url=reverse("admin:notifications_webhookdelivery_change", args=[delivery.pk]),
                confirm_label=_("Send it now"),
            )
        self._send_again(request, [delivery])
        return HttpResponseRedirect(reverse("admin:notifications_webhookdelivery_change", args=[delivery.pk]))

    @staticmethod
    def _send_again_consequences(delivery) -> tuple[list[str], str | None]:
        return [
            _("It is POSTed to %(url)s now, with the same webhook-id and body, signed with the endpoint's current secret.")
            % {"url": delivery.endpoint.url},
            _("The receiver should drop it if it has it already (same webhook-id)."),
        ], None

    @admin.action(description=gettext_lazy("Send again now"), permissions=["change"])
    @confirm_first(lambda admin_, delivery: admin_._send_again_consequences(delivery))
    def send_again(self, request, queryset):
        rows = list(queryset.order_by("pk")[: RESEND_MAX + 1])
        if len(rows) > RESEND_MAX:
            message = _("At most %(count)d deliveries can be sent again at once: choose fewer.") % {"count": RESEND_MAX}
            self.message_user(request, message, messages.ERROR)
            return
        self._send_again(request, rows)

    def _send_again(self, request, rows: list[WebhookDelivery]) -> None:
        result = services.webhook_deliveries_resend(deliveries=rows)
        for delivery in rows:
            self.log_change(request, delivery, _("Sent again"))
        arrived = result.delivered
        message = ngettext(
            "%(count)d delivery sent again: %(arrived)d answered with success.",
            "%(count)d deliveries sent again: %(arrived)d answered with success.",
            len(rows),
        ) % {"count": len(rows), "arrived": arrived}
        self.message_user(request, message, messages.SUCCESS if arrived == len(rows) else messages.WARNING)

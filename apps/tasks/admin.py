import uuid

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.core.workflow_admin import FrozenFieldsMixin, ReadOnlyAdminMixin, WorkflowAdminMixin, WorkflowStep, review_steps
from apps.ledger.changelists import BigTableAdminMixin
from apps.ledger.user_page import decision_outcome, decision_reason
from apps.rules.admin_sheets import RuleSheetAdminMixin
from apps.rules.selectors.rules import active_rules_for
from apps.tasks import services
from apps.tasks.models import TaskConfig, UserTaskRecord
from apps.tasks.resources import TaskConfigResource
from apps.tasks.selectors import (
    WHY_RECENT,
    CompletionWhy,
    completion_explain,
    config_shadowing,
    live_rules_of,
    request_explain,
    request_path,
    request_routing_explain,
    user_recent_completions,
)

_Status = TaskConfig.Status


def _rule_names(rules) -> str:
    return ", ".join(rule.score_type for rule in rules)


def _routes_refresh() -> str:
    """When every web process sees a config change (each rereads its routes every JIFEN_ROUTES_REFRESH_S)."""
    seconds = settings.JIFEN_ROUTES_REFRESH_S
    if seconds <= 0:
        return gettext("at once")
    return ngettext("in every web process within %(n)s second", "in every web process within %(n)s seconds", seconds) % {
        "n": f"{seconds:g}"
    }


def put_in_use_consequences(config: TaskConfig) -> list[str]:
    rules = live_rules_of(task_type=config.task_type)
    lines = [
        gettext("%(method)s requests whose path matches %(regex)s start counting as completions of %(task)s, %(when)s.")
        % {"method": config.method, "regex": config.interface_name, "task": config.task_type, "when": _routes_refresh()},
        gettext("The active rules of %(task)s pay for them: %(rules)s.") % {"task": config.task_type, "rules": _rule_names(rules)}
        if rules
        else gettext("No active rule pays for %(task)s yet: its completions are recorded and earn points once one is active.")
        % {"task": config.task_type},
        gettext("Its method, path regex, priority and success test are frozen from then on; to change them, copy it as a draft."),
    ]
    if config.in_review:
        lines.append(gettext("It leaves the review queue."))
    return lines


def deprecate_consequences(config: TaskConfig) -> list[str]:
    rules = live_rules_of(task_type=config.task_type)
    lines = [
        gettext("Requests matching %(regex)s stop counting as completions of %(task)s, %(when)s.")
        % {"regex": config.interface_name, "task": config.task_type, "when": _routes_refresh()},
    ]
    if rules:
        lines.append(gettext("These active rules stop paying for those requests: %(rules)s.") % {"rules": _rule_names(rules)})
    lines.append(gettext("Points already awarded stay. This cannot be undone: a deprecated config is never put in use again."))
    return lines


class TestRequestForm(forms.Form):
    method = forms.ChoiceField(label=_("Method"), choices=TaskConfig.Method.choices, initial=TaskConfig.Method.POST)
    path = forms.CharField(
        label=_("Path"),
        max_length=2048,
        help_text=_("The request path, e.g. /posts/42/share/ (a pasted URL works too: host and query are dropped)."),
        widget=forms.TextInput(attrs={"size": 60, "autofocus": True}),
    )

    def clean_path(self) -> str:
        return request_path(self.cleaned_data["path"])


class WhyForm(forms.Form):
    """A user, and either one of their completions or a request (method, path, about when)."""

    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("Exactly as the user signs in (case matters)."),
        widget=forms.TextInput(attrs={"autofocus": True}),
    )
    completion = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    # Not required: a link that picks a completion carries no method.
    method = forms.ChoiceField(
        label=_("Method"), choices=TaskConfig.Method.choices, initial=TaskConfig.Method.POST, required=False
    )
    path = forms.CharField(
        label=_("Path"),
        max_length=2048,
        required=False,
        help_text=_("Optional: the request the user made, e.g. /posts/42/share/ (a pasted URL works too)."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    around = forms.DateTimeField(
        label=_("About when"),
        required=False,
        help_text=_("When the user made the request, in the site's time zone; completions within an hour either side are shown."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        self.user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if self.user is None:
            raise forms.ValidationError(_("No user is called %(username)s.") % {"username": username})
        return username

    def clean_path(self) -> str:
        text = self.cleaned_data["path"]
        return request_path(text) if text.strip() else ""

    def clean(self):
        data = super().clean()
        if data.get("path") and not data.get("around"):
            self.add_error("around", _("Say about when the request was made."))
        if data.get("path") and not data.get("method"):
            self.add_error("method", _("Say which method the request used."))
        return data


def _why_rows(why: CompletionWhy) -> tuple:
    """A completion and, per rule, its verdict with the wording the per-user ledger page uses."""
    return why, [(v, decision_outcome(v.decision), decision_reason(v.decision)) for v in why.verdicts]


@admin.register(TaskConfig)
class TaskConfigAdmin(WorkflowAdminMixin, FrozenFieldsMixin, RuleSheetAdminMixin, SimpleHistoryAdmin):
    list_display = (
        "task_type",
        "status_badge",
        "method",
        "interface_name",
        "id_group_name",
        "priority",
        "reverses",
        "updated_at",
    )
    list_filter = ("status", "method")
    search_fields = ("task_type", "task_desc", "interface_name")
    # Fixed order, so fields keep their place when they turn read-only; the status shows as a badge.
    fieldsets = (
        (None, {"fields": ("task_type", "task_desc")}),
        (_("Request"), {"fields": ("method", "interface_name", "id_group_name", "priority", "reverses")}),
        (
            _("Success"),
            {"fields": ("success_status_min", "success_status_max", "success_json_field", "success_json_value")},
        ),
    )
    import_export_change_list_template = "admin/tasks/taskconfig/change_list.html"
    resource_classes = [TaskConfigResource]
    workflow_steps = (
        *review_steps(
            submit=services.task_config_submit_for_review,
            send_back=services.task_config_send_back,
            keyword="config",
            draft=_Status.EDITING,
            approve_permission="put_in_use",
        ),
        WorkflowStep(
            "put_in_use",
            _("Put in use"),
            services.task_config_put_in_use,
            "config",
            (_Status.EDITING,),
            permission="put_in_use",
            consequences=lambda config: put_in_use_consequences(config),
        ),
        WorkflowStep(
            "deprecate",
            _("Deprecate"),
            services.task_config_deprecate,
            "config",
            (_Status.IN_USE,),
            permission="deprecate",
            consequences=lambda config: deprecate_consequences(config),
        ),
        WorkflowStep(
            "copy_as_draft", _("Copy as draft"), services.task_config_copy_as_draft, "config", permission="add", confirm=False
        ),
    )

    def workflow_confirm_context(self, request, obj, step):
        if step.name != "put_in_use":
            return {}
        shadowing = config_shadowing(config=obj)
        return {"shadows": shadowing.takes_over, "outranked_by": shadowing.outranked_by}

    def workflow_confirm_row_context(self, request, obj, step):
        if step.name != "put_in_use":
            return {}
        return {"shadows": config_shadowing(config=obj).takes_over}

    # Roles (SPEC §7): putting in use and deprecating are the rule approvers' own permissions, not "change".
    def has_put_in_use_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("tasks.put_in_use_taskconfig")

    def has_deprecate_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("tasks.deprecate_taskconfig")

    def get_urls(self):
        return [
            path("test-request/", self.admin_site.admin_view(self.test_request_view), name="tasks_taskconfig_test_request"),
            *super().get_urls(),
        ]

    def test_request_view(self, request):
        """Method + path in: the config the middleware would pick and the business id, or why none."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = TestRequestForm(request.GET or None)
        routing = rules = None
        if form.is_valid():
            routing = request_routing_explain(method=form.cleaned_data["method"], path=form.cleaned_data["path"])
            if routing.match:
                rules = active_rules_for(task_type=routing.match.config.task_type)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Test a request"),
            "opts": self.opts,
            "form": form,
            "routing": routing,
            "rules": rules,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/tasks/taskconfig/test_request.html", context)


@admin.register(UserTaskRecord)
class UserTaskRecordAdmin(ReadOnlyAdminMixin, BigTableAdminMixin, admin.ModelAdmin):
    """Completions, one per tracked event: read-only and, like the ledger, a table of millions of rows."""

    list_display = ("occurred_at", "user_column", "task", "business_id", "reversed_at")
    list_display_links = ("occurred_at",)
    # The task's foreign key index serves its filter; pages walk the primary key, newest first.
    list_filter = ("task",)
    ordering = ("-id",)
    list_select_related = ("user", "task")
    raw_id_fields = ("user", "reversed_by")
    readonly_fields = [field.name for field in UserTaskRecord._meta.fields]
    search_help_text = _("The beginning of a username (case matters), or an event id.")
    change_list_template = "admin/tasks/usertaskrecord/change_list.html"

    def get_urls(self):
        return [
            path("why/", self.admin_site.admin_view(self.why_view), name="tasks_usertaskrecord_why"),
            *super().get_urls(),
        ]

    def why_view(self, request):
        """Why no points?: a user's completion, or a request and a time, and what each rule decided."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = WhyForm(request.GET or None)
        subject = recent = explained = request_why = None
        if form.is_valid():
            subject, data = form.user, form.cleaned_data
            if data["completion"]:
                explained = completion_explain(user_id=subject.pk, completion_id=data["completion"])
            elif data["path"]:
                request_why = request_explain(user_id=subject.pk, method=data["method"], path=data["path"], around=data["around"])
            recent = user_recent_completions(user_id=subject.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Why no points?"),
            "opts": self.opts,
            "form": form,
            "subject": subject,
            "recent": recent,
            "recent_limit": WHY_RECENT,
            "asked_completion": form.is_valid() and form.cleaned_data["completion"],
            "explained": _why_rows(explained) if explained else None,
            "request_why": request_why,
            "request_rows": [_why_rows(why) for why in request_why.completions] if request_why else [],
            "user_page": subject and request.user.has_perm("ledger.view_account"),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/tasks/usertaskrecord/why.html", context)

    def get_search_results(self, request, queryset, search_term):
        try:
            event_id = uuid.UUID(search_term.strip())
        except ValueError:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(event_id=event_id), False

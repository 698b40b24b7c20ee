"""Admin pieces shared by the TaskConfig and ScoreRule admins.

Each workflow step (activate, retire, copy as draft, …) is declared once and appears both as a
changelist action and as a button on the change page; both call the same workflow service.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from apps.core.lifecycle import save_with_history


@dataclass(frozen=True)
class WorkflowStep:
    """One step of the authoring workflow, as the admin offers it."""

    name: str  # the action's name and the button's URL segment
    label: str
    service: Callable  # service(<keyword>=obj, actor=user) -> the object it changed or created
    keyword: str
    sources: tuple[str, ...] | None = None  # statuses the step starts from; None: any
    # The ModelAdmin's has_<permission>_permission decides who is offered and may run the step:
    # a status's own permission (activate, retire, …) or "add" (a new draft).
    permission: str = "workflow"


def workflow_action(service: Callable, *, keyword: str, name: str, description: str, permission: str = "change"):
    """An admin action that runs `service(<keyword>=obj, actor=user)` on each selected row."""

    @admin.action(description=description, permissions=[permission])
    def action(modeladmin, request, queryset):
        done, refused = 0, []
        for obj in queryset.order_by("pk"):
            try:
                service(**{keyword: obj, "actor": request.user})
                done += 1
            except ValidationError as exc:
                refused.append(f"{obj}: {' '.join(exc.messages)}")
            except PermissionDenied as exc:
                refused.append(f"{obj}: {exc}")
        if done:
            modeladmin.message_user(request, _("%(count)d done.") % {"count": done}, messages.SUCCESS)
        for message in refused:
            modeladmin.message_user(request, message, messages.ERROR)

    action.__name__ = name
    return action


class AuditHistoryMixin:
    """History is the audit trail, to read: no "revert", which would skip the workflow (or un-revoke a key)."""

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class FrozenFieldsMixin:
    """Past the draft status, the fields that decide behaviour are shown read-only."""

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != obj.Status.EDITING:
            readonly += [name for name in obj.FROZEN_FIELDS if name not in readonly]
        return readonly


class WorkflowAdminMixin(AuditHistoryMixin):
    """Workflow actions and buttons, status badges, history with author and reason.

    The status is never edited in the form: it moves only through the workflow steps, each under
    the service's row lock and with its own line in history. Each step names the permission it
    needs (`has_<permission>_permission`); the services check the model's STATUS_PERMISSIONS again,
    and so does a sheet import (`apps.core.sheets`), so no path moves a status on "change" rights.
    """

    workflow_steps: tuple[WorkflowStep, ...] = ()
    history_list_display = ["status"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_actions(self, request):
        actions = super().get_actions(request)
        for step in self.workflow_steps:
            func = workflow_action(
                step.service, keyword=step.keyword, name=step.name, description=step.label, permission=step.permission
            )
            if getattr(self, f"has_{step.permission}_permission")(request):
                actions[step.name] = (func, step.name, step.label)
        return actions

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if "status" in readonly else [*readonly, "status"]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj) -> str:
        return format_html('<span class="jifen-badge jifen-badge-{}">{}</span>', obj.status, obj.get_status_display())

    # --- change page buttons ------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<path:object_id>/workflow/<str:step>/",
                self.admin_site.admin_view(self.workflow_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_workflow",
            ),
            *super().get_urls(),
        ]

    def available_steps(self, request, obj) -> list[WorkflowStep]:
        return [
            step
            for step in self.workflow_steps
            if (step.sources is None or obj.status in step.sources)
            and getattr(self, f"has_{step.permission}_permission")(request)
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if obj is not None:
            extra_context = {
                **(extra_context or {}),
                "workflow_steps": self.available_steps(request, obj),
                "status_badge": self.status_badge(obj),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def _change_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    @method_decorator(require_POST)
    def workflow_view(self, request, object_id, step):
        obj = self.get_object(request, unquote(object_id))
        chosen = next((s for s in self.workflow_steps if s.name == step), None)
        if obj is None or chosen is None:
            raise Http404
        if not getattr(self, f"has_{chosen.permission}_permission")(request):
            raise PermissionDenied
        try:
            result = chosen.service(**{chosen.keyword: obj, "actor": request.user})
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        if result.pk != obj.pk:
            message = _("Copied %(old)s as the draft %(new)s.") % {"old": obj, "new": result}
        else:
            message = _("Done: %(object)s is now %(status)s.") % {"object": obj, "status": obj.get_status_display()}
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(result))

    # --- saving and history -------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # Validates again (frozen fields against the stored row) and records the operator and reason.
        save_with_history(obj, actor=request.user, reason="changed in the admin" if change else "created in the admin")

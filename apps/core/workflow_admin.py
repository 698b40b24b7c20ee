"""Admin pieces shared by the TaskConfig and ScoreRule admins.

Each workflow step (activate, retire, copy as draft, submit for review, …) is declared once and
appears both as a changelist action and as a button on the change page; both call the same
workflow service. A step that changes what is live or cannot be undone asks first: its button
opens a confirmation page (a GET, so a reload or a bookmark shows the page again rather than an
error) that says what will happen, and its list action shows the same for every selected row.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

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
    # a status's own permission (activate, retire, …), "change" or "add" (a new draft).
    permission: str = "workflow"
    # What the step does, in sentences for its confirmation page: consequences(obj) -> [str, …].
    consequences: Callable | None = None
    # A step that changes what is live, or cannot be undone, asks first on a page of its own; the
    # others (a copy, a submission) happen on one click and say what they did.
    confirm: bool = True
    when: Callable | None = None  # a further condition on the object (its review state), or None
    needs_comment: bool = False  # the service takes comment=, asked for on the confirmation page
    done: str = ""  # the success message, with %(object)s; empty: "Done: … is now <status>."

    def applies_to(self, obj) -> bool:
        return (self.sources is None or obj.status in self.sources) and (self.when is None or self.when(obj))

    def explain(self, obj) -> list[str]:
        return list(self.consequences(obj)) if self.consequences else []

    def not_possible(self, obj) -> str | None:
        if self.applies_to(obj):
            return None
        return _("%(object)s is %(status)s: “%(step)s” is not possible now.") % {
            "object": obj,
            "status": obj.get_status_display(),
            "step": self.label,
        }


def confirmation_page(model_admin, request, *, obj, title, consequences, action_url, cancel_url, confirm_label, **more):
    """A page that says what a step will do to `obj` and asks (GET), its form posting to `action_url`.

    Every admin step that changes something live or cannot be undone answers a GET with this page,
    so that a reload, a bookmark or a link opened in a new tab shows the question again, never an
    error or the step itself. `more` may hold not_possible (a reason instead of the button),
    confirm_class, needs_comment (a comment box; comment_label, comment_help and comment_max name
    it), status_badge, and what the page includes (a rule's dry run: result, reason_rows,
    dry_run_url; a config's shadows, outranked_by).
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.opts,
        "original": obj,
        "consequences": consequences,
        "action_url": action_url,
        "cancel_url": cancel_url,
        "confirm_label": confirm_label,
        "confirm_class": "",
        "needs_comment": False,
        "media": model_admin.media,
        **more,
    }
    return TemplateResponse(request, "admin/jifen_workflow_confirm.html", context)


def action_confirmation_page(model_admin, request, *, action_name: str, label: str, rows: list[dict], **more):
    """A list action's question: each selected row with what the action does to it, or why not.

    Each row is {"object", "consequences": [str], "not_possible": str | None, "badge"?, "shadows"?}.
    Its form posts the action again with post=yes, as Django's own "delete selected" does. `more`
    may hold needs_comment (a text asked for all rows, posted as `comment`) with comment_label,
    comment_help and comment_max.
    """
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("%(step)s: %(count)d selected") % {"step": label, "count": len(rows)},
        "opts": model_admin.opts,
        "action_name": action_name,
        "action_label": label,
        "rows": rows,
        "possible": sum(1 for row in rows if not row.get("not_possible")),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
        **more,
    }
    return TemplateResponse(request, "admin/jifen_action_confirm.html", context)


def confirm_first(consequences: Callable):
    """Make an admin action ask first: consequences(model_admin, obj) -> ([str], reason it cannot or None).

    Put it under @admin.action. Without post=yes the action answers with its confirmation page.
    """

    def wrap(func):
        @wraps(func)
        def action(model_admin, request, queryset):
            if request.POST.get("post") == "yes":
                return func(model_admin, request, queryset)
            rows = []
            for obj in queryset.order_by("pk"):
                lines, not_possible = consequences(model_admin, obj)
                rows.append({"object": obj, "consequences": lines, "not_possible": not_possible})
            label = getattr(action, "short_description", func.__name__)  # set by @admin.action, outside
            return action_confirmation_page(model_admin, request, action_name=func.__name__, label=label, rows=rows)

        return action

    return wrap


def workflow_action(step: WorkflowStep):
    """An admin action that runs the step's service on each selected row, after a confirmation page if it asks."""

    @admin.action(description=step.label, permissions=[step.permission])
    def action(modeladmin, request, queryset):
        rows = list(queryset.order_by("pk"))
        if step.confirm and request.POST.get("post") != "yes":
            return modeladmin.workflow_action_confirm(request, step, rows)
        done, refused = 0, []
        for obj in rows:
            try:
                step.service(**{step.keyword: obj, "actor": request.user})
                done += 1
            except ValidationError as exc:
                refused.append(f"{obj}: {' '.join(exc.messages)}")
            except PermissionDenied as exc:
                refused.append(f"{obj}: {exc}")
        if done:
            modeladmin.message_user(request, _("%(count)d done.") % {"count": done}, messages.SUCCESS)
        for message in refused:
            modeladmin.message_user(request, message, messages.ERROR)
        return None

    action.__name__ = step.name
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
    """Workflow actions and buttons, confirmation pages, status badges, history with author and reason.

    The status is never edited in the form: it moves only through the workflow steps, each under
    the service's row lock and with its own line in history. Each step names the permission it
    needs (`has_<permission>_permission`); the services check the model's STATUS_PERMISSIONS again,
    and so does a sheet import (`apps.core.sheets`), so no path moves a status on "change" rights.
    """

    workflow_steps: tuple[WorkflowStep, ...] = ()
    history_list_display = ["status", "review_state"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Only drafts may be deleted (has_delete_permission). A bulk delete of a mixed selection would
        # end on Django's "you may not delete" page, so the list offers none: a draft's own page does.
        actions.pop("delete_selected", None)
        for step in self.workflow_steps:
            if step.needs_comment:
                continue  # a comment is about one object: asked on its page or from the review queue
            if getattr(self, f"has_{step.permission}_permission")(request):
                actions[step.name] = (workflow_action(step), step.name, step.label)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        # A live or retired object is what past awards point to: it is retired, never deleted.
        if obj is not None and obj.status != obj.Status.EDITING:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if "status" in readonly else [*readonly, "status"]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj) -> str:
        badge = format_html('<span class="jifen-badge jifen-badge-{}">{}</span>', obj.status, obj.get_status_display())
        if obj.status == obj.Status.EDITING and obj.review_state:
            badge = format_html(
                '{} <span class="jifen-badge jifen-badge-{}">{}</span>', badge, obj.review_state, obj.get_review_state_display()
            )
        return badge

    # --- change page buttons and confirmation pages -------------------------------------

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
            if step.applies_to(obj) and getattr(self, f"has_{step.permission}_permission")(request)
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

    def workflow_url(self, obj, step: WorkflowStep) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_workflow", args=[obj.pk, step.name])

    def workflow_view(self, request, object_id, step):
        """GET: the step's confirmation page (a reload or a bookmark shows it again); POST: the step."""
        obj = self.get_object(request, unquote(object_id))
        chosen = next((s for s in self.workflow_steps if s.name == step), None)
        if obj is None or chosen is None:
            raise Http404
        if not getattr(self, f"has_{chosen.permission}_permission")(request):
            raise PermissionDenied
        if request.method != "POST":
            return self.workflow_confirm_view(request, obj, chosen)
        extra = {"comment": request.POST.get("comment", "")} if chosen.needs_comment else {}
        try:
            result = chosen.service(**{chosen.keyword: obj, "actor": request.user}, **extra)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            if chosen.needs_comment and chosen.applies_to(obj):
                return HttpResponseRedirect(self.workflow_url(obj, chosen))  # the comment was refused: ask again
            return HttpResponseRedirect(self._change_url(obj))
        if result.pk != obj.pk:
            message = _("Copied %(old)s as the draft %(new)s.") % {"old": obj, "new": result}
        elif chosen.done:
            message = chosen.done % {"object": obj}
        else:
            message = _("Done: %(object)s is now %(status)s.") % {"object": obj, "status": obj.get_status_display()}
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(result))

    def workflow_confirm_context(self, request, obj, step: WorkflowStep) -> dict:
        """More for a step's confirmation page (a rule's dry run, a config's shadowing); none by default."""
        return {}

    def workflow_confirm_row_context(self, request, obj, step: WorkflowStep) -> dict:
        """More for one row of a list action's confirmation page; none by default."""
        return {}

    def workflow_confirm_view(self, request, obj, step: WorkflowStep):
        not_possible = step.not_possible(obj)
        return confirmation_page(
            self,
            request,
            obj=obj,
            title=_("%(step)s: %(object)s") % {"step": step.label, "object": obj},
            consequences=[] if not_possible else step.explain(obj),
            not_possible=not_possible,
            action_url=self.workflow_url(obj, step),
            cancel_url=self._change_url(obj),
            confirm_label=step.label,
            confirm_class=step.name,
            needs_comment=step.needs_comment,
            status_badge=self.status_badge(obj),
            **({} if not_possible else self.workflow_confirm_context(request, obj, step)),
        )

    def workflow_action_confirm(self, request, step: WorkflowStep, rows: list):
        """A list action's confirmation page: what the step does to each selected row."""
        entries = []
        for obj in rows:
            not_possible = step.not_possible(obj)
            entries.append(
                {
                    "object": obj,
                    "badge": self.status_badge(obj),
                    "not_possible": not_possible,
                    "consequences": [] if not_possible else step.explain(obj),
                    **({} if not_possible else self.workflow_confirm_row_context(request, obj, step)),
                }
            )
        return action_confirmation_page(self, request, action_name=step.name, label=step.label, rows=entries)

    # --- saving and history -------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # Validates again (frozen fields against the stored row) and records the operator and reason.
        save_with_history(obj, actor=request.user, reason="changed in the admin" if change else "created in the admin")


def review_steps(*, submit: Callable, send_back: Callable, keyword: str, draft: str, approve_permission: str):
    """The review flow's two steps (apps.core.review), the same on every model that has one.

    Submit is an editor's ("change"), on one click: it changes nothing live. Send back is an
    approver's (the permission that activates), with a comment asked on its page.
    """
    from apps.core.review import ReviewState

    return (
        WorkflowStep(
            "submit_for_review",
            gettext_lazy("Submit for review"),
            submit,
            keyword,
            (draft,),
            permission="change",
            confirm=False,
            when=lambda obj: obj.review_state != ReviewState.SUBMITTED,
            done=gettext_lazy("%(object)s is waiting for review: approvers see it in the review queue."),
        ),
        WorkflowStep(
            "send_back",
            gettext_lazy("Send back"),
            send_back,
            keyword,
            (draft,),
            permission=approve_permission,
            when=lambda obj: obj.review_state == ReviewState.SUBMITTED,
            needs_comment=True,
            consequences=lambda obj: [
                _("%(object)s goes back to its editor as a draft with your comment, and leaves the review queue.")
                % {"object": obj}
            ],
            done=gettext_lazy("%(object)s went back to its editor with your comment."),
        ),
    )


class ReadOnlyAdminMixin:
    """An admin that shows rows and changes none: no add, change or delete, for anyone (superusers too).

    For what only services write (the ledger, completions, progress, the outbox, redemptions,
    holds): the admin lists and shows them, and its own actions and pages call the services.
    """

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

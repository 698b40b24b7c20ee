"""The rule admin's dry run page, and the activation step that offers a backfill.

A rule whose window starts in the past may have earned points already, by completions recorded
before it was active. Activating it shows first what it would have awarded over [start, now),
then offers both: activate only, or activate and award those past completions (a backfill, run
by a worker; its progress shows on the rule's page).

The dry run page replays a window of up to JIFEN_DRY_RUN_INLINE_MAX completions in the request;
a bigger one is given to a worker (`dry_run_rule`, its figures kept as the task's result) and the
page, at ?job=<task id>, says it is running and reloads itself until the figures are there.
"""

import logging
from datetime import datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from celery.result import AsyncResult
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.clock import local_date, local_today
from apps.ledger.user_page import decision_reason
from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.selectors.dry_run import DryRun, StoredDryRun, Window, completions_more_than, rule_dry_run
from apps.rules.services.backfill import BackfillRefused, score_rule_activate_with_backfill
from apps.rules.tasks import dry_run_rule
from config.celery import app as celery_app

logger = logging.getLogger(__name__)

DRY_RUN_DAYS = 30  # how far back the dry run page looks unless told
DRY_RUN_REFRESH_S = 2  # how often the page of a dry run a worker runs reloads itself


def _local_midnight(day) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(settings.TIME_ZONE))


def _reason_rows(result: DryRun | StoredDryRun | None) -> list[tuple[str, str, int]]:
    """(reason, in the words of "why no points?", completions), most first."""
    if result is None:
        return []
    return [(reason, decision_reason({"reason": reason}), count) for reason, count in result.reasons()]


def dry_run_context(rule: ScoreRule, *, since: datetime) -> dict:
    """A page's dry run of `rule` over [since, now): its figures when few enough to replay in the request,
    else the link to the dry run page (which hands a long one to a worker)."""
    window = Window.of(rule, since=since)
    if completions_more_than(task_type=rule.task_type, window=window, limit=settings.JIFEN_DRY_RUN_INLINE_MAX):
        query = urlencode({"since": local_date(since).isoformat()})
        return {"result": None, "dry_run_url": f"{reverse('admin:rules_scorerule_dry_run', args=[rule.pk])}?{query}"}
    result = rule_dry_run(rule=rule, since=since)
    return {"result": result, "reason_rows": _reason_rows(result)}


class DryRunForm(forms.Form):
    since = forms.DateField(label=gettext_lazy("Completions since"), help_text=gettext_lazy("A date, e.g. 2026-11-01."))
    until = forms.DateField(label=gettext_lazy("Until (not included)"), required=False, help_text=gettext_lazy("Empty: now."))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise ValidationError(_("The end must be after the start."))
        return data


class RuleDryRunAdminMixin:
    """The dry run tool page on a rule, and the Activate step's choice of a backfill."""

    def get_urls(self):
        return [
            path(
                "<path:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_dry_run",
            ),
            *super().get_urls(),
        ]

    def _rule_or_404(self, request, object_id) -> ScoreRule:
        rule = self.get_object(request, unquote(object_id))
        if rule is None:
            raise Http404
        return rule

    def dry_run_view(self, request, object_id):
        """What the rule (a draft too) would have awarded over past completions; writes nothing."""
        rule = self._rule_or_404(request, object_id)
        if not self.has_view_permission(request, rule):
            raise PermissionDenied
        initial = {"since": local_today() - timedelta(days=DRY_RUN_DAYS)}
        form = DryRunForm(request.GET if "since" in request.GET else None, initial=initial)
        result, running = None, False
        if form.is_valid():
            until = form.cleaned_data["until"]
            since, until = _local_midnight(form.cleaned_data["since"]), _local_midnight(until) if until else timezone.now()
            job = request.GET.get("job")
            if job:
                result, running = self._dry_run_job(request, rule, job)
            elif not completions_more_than(
                task_type=rule.task_type,
                window=Window.of(rule, since=since, until=until),
                limit=settings.JIFEN_DRY_RUN_INLINE_MAX,
            ):
                result = rule_dry_run(rule=rule, since=since, until=until)
            else:  # too many for the request: a worker runs it, this page waits for its figures
                try:
                    # No waiting on the broker's retries on an operator's request.
                    queued = dry_run_rule.apply_async((rule.pk, since.isoformat(), until.isoformat()), retry=False)
                except Exception as exc:  # kombu's errors vary by transport
                    logger.warning("dry run of rule %s could not be sent to the workers: %s", rule.score_type, exc)
                    messages.error(
                        request,
                        _("The workers cannot be reached right now, so this long dry run could not start. Try again shortly."),
                    )
                    queued = None
                if queued is not None and queued.ready():  # run in place (CELERY_TASK_ALWAYS_EAGER)
                    result = StoredDryRun.of(rule, queued.get())
                elif queued is not None:
                    return HttpResponseRedirect(f"{request.path}?{urlencode({**request.GET.dict(), 'job': queued.id})}")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Dry run of %(rule)s") % {"rule": rule.score_type},
            "opts": self.opts,
            "original": rule,
            "form": form,
            "result": result,
            "running": running,
            "refresh_s": DRY_RUN_REFRESH_S,
            "reason_rows": _reason_rows(result),
        }
        return TemplateResponse(request, "admin/rules/scorerule/dry_run.html", context)

    def _dry_run_job(self, request, rule: ScoreRule, job: str) -> tuple[StoredDryRun | None, bool]:
        """(figures, still running) of the dry run a worker was given."""
        queued = AsyncResult(job, app=celery_app)
        if queued.successful():
            data = queued.result
            if isinstance(data, dict) and data.get("rule") == rule.score_type:
                return StoredDryRun.of(rule, data), False
            self.message_user(request, _("That dry run is not one of this rule."), messages.ERROR)
            return None, False
        if queued.failed():
            self.message_user(request, _("The dry run failed: %(error)s") % {"error": queued.result}, messages.ERROR)
            return None, False
        return None, True

    def workflow_confirm_context(self, request, obj, step):
        """Activating asks with the dry run of the last DRY_RUN_DAYS days on the page, or a link to it."""
        if step.name != "activate":
            return super().workflow_confirm_context(request, obj, step)
        return dry_run_context(obj, since=timezone.now() - timedelta(days=DRY_RUN_DAYS))

    def workflow_view(self, request, object_id, step):
        # Activating a rule whose window starts in the past goes through a page of its own: activate
        # only, or activate and award the completions since its start.
        if step != "activate":
            return super().workflow_view(request, object_id, step)
        rule = self._rule_or_404(request, object_id)
        if rule.status != ScoreRule.Status.EDITING or rule.start_time is None or rule.start_time >= timezone.now():
            return super().workflow_view(request, object_id, step)
        if not self.has_activate_permission(request, rule):
            raise PermissionDenied
        choice = request.POST.get("choice") if request.method == "POST" else None
        if choice == "activate":
            return super().workflow_view(request, object_id, step)
        if choice == "backfill":
            try:
                run = score_rule_activate_with_backfill(rule=rule, actor=request.user)
            except (ValidationError, BackfillRefused) as exc:
                self.message_user(request, " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Done: %(rule)s is now active; backfill run %(run)s awards its past completions.")
                    % {"rule": rule.score_type, "run": run.pk},
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(self._change_url(rule))
        chosen = next(s for s in self.workflow_steps if s.name == "activate")
        context = {
            "inline_max": settings.JIFEN_DRY_RUN_INLINE_MAX,
            "dry_run_since": local_date(rule.start_time).isoformat(),
            **self.admin_site.each_context(request),
            "title": _("Activate %(rule)s") % {"rule": rule.score_type},
            "opts": self.opts,
            "original": rule,
            "consequences": chosen.explain(rule),
            **dry_run_context(rule, since=rule.start_time),
        }
        return TemplateResponse(request, "admin/rules/scorerule/activate.html", context)

    def backfill_runs(self, rule: ScoreRule) -> list[BackfillRun]:
        return list(rule.backfills.select_related("requested_by")[:5])

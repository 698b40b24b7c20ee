"""What the admin's per-user page shows, built from `selectors.user_ledger`."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import localize
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from apps.core.clock import local_date
from apps.ledger.models import PointType
from apps.ledger.selectors.ledger import user_ledger
from apps.rules.selectors.badges import badges_of
from apps.tasks.selectors import pending_reversals

# The engine's reasons (apps.rules.engine.Reason), as an operator asking "why no points?" reads them.
_REASONS = {
    "counted": gettext_lazy("counted; no award at this step"),
    "not_active": gettext_lazy("not counted: the rule is not active"),
    "outside_window": gettext_lazy("not counted: outside the rule's time window"),
    "duplicate_object": gettext_lazy("not counted: this object already counted in the period (the rule does not repeat)"),
    "limit_reached": gettext_lazy("counted; no award: the period's award limit was already reached"),
    "cap_reached": gettext_lazy("counted; no award: the rule's recipient cap was already reached"),
    "period_already_counted": gettext_lazy("not counted again: this period already counts toward the streak"),
    "late_event": gettext_lazy("not counted: older than the streak's last counted period"),
    "cooldown": gettext_lazy("not counted: too close in time to another counted completion (the rule's cooldown)"),
    "reversed": gettext_lazy("not counted: a reversal undid this completion"),
}

# Why a decision was made again after the completion was first scored (SPEC §6).
_RESCORE_CAUSES = {
    "late": gettext_lazy("re-scored after a late event of %(day)s"),
    "reversal": gettext_lazy("re-scored after a reversal of %(day)s"),
}


def _duration_text(seconds: int) -> str:
    """A cooldown as people say it: "30 seconds", "10 minutes", "1 day, 2 hours"."""
    if seconds < 60:
        return ngettext("%(n)s second", "%(n)s seconds", seconds) % {"n": seconds}
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return timesince(start, start + timedelta(seconds=seconds), depth=3)


def _cooldown_text(decision: dict) -> str:
    """The cooldown reason with the rule's cooldown and when the next completion can count, as far as recorded."""
    ends = parse_datetime(decision.get("cooldown_ends") or "")
    if ends is None or "cooldown_s" not in decision:
        return str(_REASONS["cooldown"])
    return _(
        "not counted: within the rule's cooldown of %(cooldown)s of another counted completion; "
        "a completion from %(time)s on can count"
    ) % {"cooldown": _duration_text(decision["cooldown_s"]), "time": localize(timezone.localtime(ends))}


def _awarded_text(decision: dict) -> str:
    points = decision.get("points", 0)
    if not points:  # only a rule with a badge awards 0 points
        return _("awarded its badge")
    return ngettext("awarded %(points)s point", "awarded %(points)s points", points) % {"points": points}


def rescore_note(decision: dict) -> str:
    """ "re-scored after a late event of 2026-11-28" when a re-score made this decision, else ""."""
    mark = decision.get("rescored") or {}
    moment = parse_datetime(mark.get("event_at") or "")
    template = _RESCORE_CAUSES.get(mark.get("cause", ""))
    if template is None or moment is None:
        return ""
    return str(template) % {"day": local_date(moment).isoformat()}


def _with_note(text: str, decision: dict) -> str:
    note = rescore_note(decision)
    return f"{text} ({note})" if note else text


def decision_outcome(decision: dict) -> str:
    """What a rule's decision came to, in three words: awarded N points, counted with no award, not counted."""
    if decision.get("reason") == "awarded":
        return _awarded_text(decision)
    return _("counted, no award") if decision.get("counted") else _("not counted")


def decision_reason(decision: dict) -> str:
    """Why the rule decided so, in plain words."""
    reason = decision.get("reason", "")
    if reason == "awarded":
        return _with_note(_("the completion reached the number of times the rule asks for"), decision)
    if reason == "cooldown":
        return _with_note(_cooldown_text(decision), decision)
    return _with_note(str(_REASONS.get(reason, reason)), decision)


def decision_text(decision: dict) -> str:
    """One rule's decision on a completion, e.g. "awarded 5 points (progress 3)"."""
    reason = decision.get("reason", "")
    text = _awarded_text(decision) if reason == "awarded" else str(_REASONS.get(reason, reason))
    if reason == "cooldown":
        text = _cooldown_text(decision)
    if decision.get("counted") or reason in ("period_already_counted", "late_event", "duplicate_object", "cooldown"):
        text = _("%(decision)s (progress %(progress)s)") % {"decision": text, "progress": decision.get("progress", 0)}
    return _with_note(text, decision)


def _changelist(request: HttpRequest, name: str, permission: str, query: str) -> str | None:
    """A link to another admin list for this user, if the operator may see it."""
    if not request.user.has_perm(permission):
        return None
    try:
        return f"{reverse(f'admin:{name}')}?{query}"
    except NoReverseMatch:  # that model is not in this admin site
        return None


def _user_admin_page(request: HttpRequest, user_id: int) -> str | None:
    model = get_user_model()._meta
    if not request.user.has_perm(f"{model.app_label}.view_{model.model_name}"):
        return None
    try:
        return reverse(f"admin:{model.app_label}_{model.model_name}_change", args=[user_id])
    except NoReverseMatch:
        return None


def _history_tabs(ledger, chosen: PointType | None) -> list[tuple[str, str, bool]]:
    """(label, query string, current) for the history's choice: every type together, or one type the user holds."""
    tabs = [(_("All types"), "", chosen is None)]
    for standing in ledger.standings:
        if standing.entries or (chosen is not None and standing.point_type.pk == chosen.pk):
            code = standing.point_type.code
            tabs.append((str(standing.point_type), urlencode({"type": code}), chosen is not None and chosen.code == code))
    return tabs if len(tabs) > 2 else []


def user_page_context(request: HttpRequest, *, user_id: int, admin_site) -> dict:
    before = request.GET.get("before", "")
    code = request.GET.get("type", "")
    chosen = PointType.objects.filter(code=code).first() if code else None
    try:
        ledger = user_ledger(
            user_id=user_id,
            before=int(before) if before.isdigit() else None,
            point_type_id=chosen.pk if chosen else None,
        )
    except get_user_model().DoesNotExist:
        raise Http404(_("No such user.")) from None
    by_user = f"user__id__exact={user_id}"
    return {
        "title": _("Points of %(user)s") % {"user": ledger.user},
        "subject": ledger.user,
        "ledger": ledger,
        "balance": ledger.account.balance if ledger.account else 0,
        "standings": ledger.standings,
        "default_type": next((s.point_type for s in ledger.standings if s.point_type.is_default), None),
        "history_tabs": _history_tabs(ledger, chosen),
        "history_type": chosen,
        "history_query": urlencode({"type": chosen.code}) + "&" if chosen else "",
        "entries": [(entry, getattr(entry, "adjustment", None)) for entry in ledger.entries],
        "completions": [
            (record, [(decision.get("rule", "?"), decision_text(decision)) for decision in record.decisions])
            for record in ledger.completions
        ],
        "pending_reversals": pending_reversals(user_id=user_id),
        "badges": badges_of(user_id=user_id),
        "links": {
            "entries": _changelist(request, "ledger_scorerecord_changelist", "ledger.view_scorerecord", by_user),
            "completions": _changelist(request, "tasks_usertaskrecord_changelist", "tasks.view_usertaskrecord", by_user),
            "progress": _changelist(request, "rules_userscoreinfo_changelist", "rules.view_userscoreinfo", by_user),
            "adjustments": _changelist(request, "ledger_adjustment_changelist", "ledger.view_adjustment", by_user),
            "badges": _changelist(request, "rules_badge_changelist", "rules.view_badge", ""),
            "new_adjustment": _changelist(request, "ledger_adjustment_add", "ledger.add_adjustment", f"user={user_id}"),
            "user": _user_admin_page(request, user_id),
            "why": _changelist(
                request,
                "tasks_usertaskrecord_why",
                "tasks.view_usertaskrecord",
                urlencode({"username": ledger.user.get_username()}),
            ),
        },
    }

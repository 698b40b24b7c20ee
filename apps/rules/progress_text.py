"""What a user's progress on a rule means, in the words a user would use: "3 of 3 today — limit reached".

One place for the site's My points, the admin's per-user page and the API's `summary`, for every
kind of rule: once per period (N = 1, with or without an award limit), every N completions,
streaks, lifetime rules and recipient caps. `progress_summary` and `progress_percent` are pure
functions of plain values, so each wording is tested without a database
(tests/rules/test_progress_text.py); `RuleProgress.summary` and `.percent` call them.
"""

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

DAY, WEEK, MONTH, YEAR, NONE = "day", "week", "month", "year", "none"
STREAK = "streak"

# The period a count is in, as a user says it; a lifetime rule's count needs no period.
_WHEN = {
    DAY: gettext_lazy("today"),
    WEEK: gettext_lazy("this week"),
    MONTH: gettext_lazy("this month"),
    YEAR: gettext_lazy("this year"),
    NONE: "",
}


# The streak's length and what is left to its next award, per period kind: "streak: 4 days",
# "2 more days to earn 10 points". The count is the interpolation's `n` (ngettext_lazy's key form).
_STREAK_LENGTH = {
    DAY: ngettext_lazy("streak: %(n)s day", "streak: %(n)s days", "n"),
    WEEK: ngettext_lazy("streak: %(n)s week", "streak: %(n)s weeks", "n"),
    MONTH: ngettext_lazy("streak: %(n)s month", "streak: %(n)s months", "n"),
    YEAR: ngettext_lazy("streak: %(n)s year", "streak: %(n)s years", "n"),
}
_STREAK_MORE = {
    DAY: ngettext_lazy("%(n)s more day to earn %(points)s points", "%(n)s more days to earn %(points)s points", "n"),
    WEEK: ngettext_lazy("%(n)s more week to earn %(points)s points", "%(n)s more weeks to earn %(points)s points", "n"),
    MONTH: ngettext_lazy("%(n)s more month to earn %(points)s points", "%(n)s more months to earn %(points)s points", "n"),
    YEAR: ngettext_lazy("%(n)s more year to earn %(points)s points", "%(n)s more years to earn %(points)s points", "n"),
}


def _streak_length(period: str, n: int) -> str:
    return _STREAK_LENGTH.get(period, _STREAK_LENGTH[DAY]) % {"n": n}


def _streak_more(period: str, left: int, points: int) -> str:
    return _STREAK_MORE.get(period, _STREAK_MORE[DAY]) % {"n": left, "points": points}


def _streak_not_yet(period: str) -> str:
    return {
        WEEK: _("not yet this week"),
        MONTH: _("not yet this month"),
        YEAR: _("not yet this year"),
    }.get(period) or _("not yet today")


def _tidy(text: str) -> str:
    """Without the gap an empty period phrase leaves (a lifetime rule's "2 of 3 " is "2 of 3")."""
    return " ".join(text.split())


@dataclass(frozen=True)
class ProgressFacts:
    """What the wording needs about one user, one rule and its current period."""

    kind: str  # count or streak
    period: str  # day, week, month, year or none
    required: int  # N: completions (or periods in a row) per award
    points: int  # the rule's amount per award
    progress: int  # completions counted in the period (count) or the streak's length (streak)
    awards: int = 0  # awards in the period
    award_limit: int | None = None  # most awards per period; None: no limit
    counted_now: bool = False  # streak: the current period already counts
    places_left: int | None = None  # capped rule the user has no place on yet: places still free; None otherwise

    @property
    def limit_reached(self) -> bool:
        return self.award_limit is not None and self.awards >= self.award_limit

    @property
    def no_places(self) -> bool:
        return self.places_left is not None and self.places_left <= 0


def progress_summary(facts: ProgressFacts) -> str:
    """One line: "2 of 3 today", "3 of 3 today — limit reached", "1 more to earn 10 points", "streak: 4 days"."""
    parts = [_streak_summary(facts) if facts.kind == STREAK else _count_summary(facts)]
    if facts.no_places:
        parts = [_("no places left: every recipient place of this rule is taken")]
    elif facts.places_left is not None and not facts.limit_reached:
        parts.append(ngettext("%(n)s place left", "%(n)s places left", facts.places_left) % {"n": facts.places_left})
    return _tidy(" · ".join(part for part in parts if part))


def _count_summary(facts: ProgressFacts) -> str:
    when = str(_WHEN.get(facts.period, ""))
    n, limit = facts.required, facts.award_limit
    if facts.limit_reached:
        values = {"done": facts.awards, "limit": limit, "when": when}
        if n == 1:
            return _("%(done)s of %(limit)s %(when)s — limit reached") % values
        return (
            ngettext(
                "%(done)s of %(limit)s award %(when)s — limit reached",
                "%(done)s of %(limit)s awards %(when)s — limit reached",
                limit,
            )
            % values
        )
    if n == 1:
        if limit is not None:
            return _("%(done)s of %(limit)s %(when)s") % {"done": facts.awards, "limit": limit, "when": when}
        if facts.progress == 0:
            return _("not yet %(when)s") % {"when": when} if when else _("not yet")
        return ngettext("done %(n)s time %(when)s", "done %(n)s times %(when)s", facts.progress) % {
            "n": facts.progress,
            "when": when,
        }
    step = facts.progress % n
    if step == 0 and facts.progress > 0:
        # Right at a multiple of N: the award was just earned; the next completion starts again.
        text = _("%(done)s of %(n)s %(when)s — earned %(points)s points") % {
            "done": n,
            "n": n,
            "when": when,
            "points": facts.points,
        }
    else:
        text = " · ".join(
            (
                _("%(done)s of %(n)s %(when)s") % {"done": step, "n": n, "when": when},
                _("%(left)s more to earn %(points)s points") % {"left": n - step, "points": facts.points},
            )
        )
    if limit is not None and facts.awards:
        text += " · " + ngettext("%(done)s of %(limit)s award %(when)s", "%(done)s of %(limit)s awards %(when)s", limit) % {
            "done": facts.awards,
            "limit": limit,
            "when": when,
        }
    return text


def _streak_summary(facts: ProgressFacts) -> str:
    length, n = facts.progress, facts.required
    parts = [_streak_length(facts.period, length) if length else _("no streak yet")]
    if not facts.counted_now:
        parts.append(_streak_not_yet(facts.period))
    if facts.limit_reached:
        parts.append(_("limit reached"))
    elif n > 1:
        step = length % n
        if step == 0 and length > 0 and facts.counted_now:
            parts.append(_("earned %(points)s points") % {"points": facts.points})
        else:
            parts.append(_streak_more(facts.period, n - step, facts.points))
    return " · ".join(parts)


def progress_percent(facts: ProgressFacts) -> int:
    """How full the bar is: toward the period's limit for once-a-time rules, else toward the next award."""
    if facts.limit_reached:
        return 100
    n = facts.required
    if n == 1 and facts.kind != STREAK:
        if facts.award_limit:
            return round(100 * facts.awards / facts.award_limit)
        return 100 if facts.progress else 0
    if facts.progress == 0:
        return 0
    step = facts.progress % n or n
    return round(100 * step / n)

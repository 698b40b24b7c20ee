"""The site's leaderboard page: include `apps.ledger.urls` in a host site's URLconf to get `/leaderboard/`."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from apps.ledger.forms import LeaderboardForm
from apps.ledger.models import LeaderboardTotal
from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_rank_of
from apps.ledger.selectors.ledger import adjustments_total, balance_of


def leaderboard_context(request: HttpRequest, *, count_ranked: bool = False) -> dict:
    """What the site's and the admin's leaderboard pages show for the request's query string."""
    form = LeaderboardForm(request.GET)
    rule, period, page_number = form.choice()
    per_page = LeaderboardForm.PER_PAGE
    page = leaderboard_page(
        rule=rule, period=period, offset=(page_number - 1) * per_page, limit=per_page, count_ranked=count_ranked
    )
    mine = None
    if request.user.is_authenticated:
        mine = leaderboard_rank_of(user_id=request.user.pk, rule=rule, period=period)
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "form": form,
        "board": page,
        "mine": mine,
        "mine_on_page": mine is not None and any(entry.user_id == mine.user_id for entry in page.entries),
        "mine_page": mine.position // per_page + 1 if mine is not None else None,
        "period_tabs": [(value, label, value == period) for value, label in form.fields["period"].choices],
        "rule_value": rule.pk if rule is not None else "",
        "page_number": page_number,
        "previous_page": page_number - 1 if page_number > 1 else None,
        "next_page": page_number + 1 if page.has_next else None,
        "query": query.urlencode(),
    }


def balance_differences(*, balance: int, board_points: int, adjustments: int, rule, period: str) -> list[str]:
    """Why a user's balance is not the points a board ranks them by, one sentence per reason; [] when equal.

    A board counts points earned from tasks (awards less their reversals) of its rule (or of all
    rules) in its period; a balance counts every entry ever, operators' adjustments included.
    """
    if balance == board_points:
        return []
    values = {"balance": number_format(balance, force_grouping=True), "points": number_format(board_points, force_grouping=True)}
    reasons = [_("Your balance is %(balance)s points; this leaderboard counts %(points)s of them.") % values]
    if adjustments:
        reasons.append(
            _("Adjustments by operators (%(amount)s points) are in your balance but never on a leaderboard.")
            % {"amount": ("+" if adjustments > 0 else "") + number_format(adjustments, force_grouping=True)}
        )
    if period != LeaderboardTotal.Period.ALL:
        reasons.append(_("Points earned before this period are in your balance, not on this leaderboard."))
    if rule is not None:
        reasons.append(_("Points from other rules are in your balance, not on this rule's leaderboard."))
    return reasons


def leaderboard(request: HttpRequest) -> HttpResponse:
    context = leaderboard_context(request)
    if request.user.is_authenticated:
        mine = context["mine"]
        context["balance_differences"] = balance_differences(
            balance=balance_of(user_id=request.user.pk),
            board_points=mine.points if mine is not None else 0,
            adjustments=adjustments_total(user_id=request.user.pk),
            rule=context["board"].rule,
            period=context["board"].period,
        )
    return render(request, "ledger/leaderboard.html", context)

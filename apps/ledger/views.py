"""The site's leaderboard page: include `apps.ledger.urls` in a host site's URLconf to get `/leaderboard/`."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from apps.ledger.forms import LeaderboardForm
from apps.ledger.models import LeaderboardTotal, ScoreRecord
from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_rank_of
from apps.ledger.selectors.ledger import balance_of, entry_totals


def leaderboard_context(request: HttpRequest, *, count_ranked: bool = False) -> dict:
    """What the site's and the admin's leaderboard pages show for the request's query string."""
    form = LeaderboardForm(request.GET)
    rule, period, page_number, point_type = form.choice()
    per_page = LeaderboardForm.PER_PAGE
    page = leaderboard_page(
        rule=rule,
        period=period,
        offset=(page_number - 1) * per_page,
        limit=per_page,
        count_ranked=count_ranked,
        point_type_id=point_type.pk,
    )
    mine = None
    if request.user.is_authenticated:
        mine = leaderboard_rank_of(user_id=request.user.pk, rule=rule, period=period, point_type_id=point_type.pk)
    query = request.GET.copy()
    query.pop("page", None)
    types = list(form.fields["point_type"].queryset)
    return {
        "form": form,
        "board": page,
        "point_type": point_type,
        "point_type_name": str(point_type),
        "mine": mine,
        "mine_on_page": mine is not None and any(entry.user_id == mine.user_id for entry in page.entries),
        "mine_page": mine.position // per_page + 1 if mine is not None else None,
        "period_tabs": [(value, label, value == period) for value, label in form.fields["period"].choices],
        # One tab per point type when there are several; a type's tab shows its overall board.
        "type_tabs": [(t.code, str(t), t.pk == point_type.pk) for t in types] if len(types) > 1 else [],
        "rule_value": rule.pk if rule is not None else "",
        "page_number": page_number,
        "previous_page": page_number - 1 if page_number > 1 else None,
        "next_page": page_number + 1 if page.has_next else None,
        "query": query.urlencode(),
    }


def balance_differences(*, balance: int, board_points: int, totals: dict[str, int], rule, period: str) -> list[str]:
    """Why a user's balance is not the points a board ranks them by, one sentence per reason; [] when equal.

    A board counts points earned from tasks (awards less their reversals) of its rule (or of all
    rules) of its point type in its period; a balance counts every entry of the type ever:
    operators' adjustments, spending (less refunds) and expiry included. `totals` is the user's
    {kind: net amount} in the type (`entry_totals`).
    """
    if balance == board_points:
        return []
    number = lambda amount: number_format(amount, force_grouping=True)  # noqa: E731
    values = {"balance": number(balance), "points": number(board_points)}
    if board_points <= balance:
        reasons = [_("Your balance is %(balance)s points; this leaderboard counts %(points)s of them.") % values]
    else:
        reasons = [_("Your balance is %(balance)s points; this leaderboard counts %(points)s.") % values]
    adjustments = totals.get(ScoreRecord.Kind.ADJUSTMENT, 0)
    if adjustments:
        reasons.append(
            _("Adjustments by operators (%(amount)s points) are in your balance but never on a leaderboard.")
            % {"amount": ("+" if adjustments > 0 else "") + number(adjustments)}
        )
    spent = -(totals.get(ScoreRecord.Kind.SPEND, 0) + totals.get(ScoreRecord.Kind.REFUND, 0))
    if spent > 0:
        reasons.append(
            _("Points you spent (%(amount)s) have left your balance; a leaderboard still counts them as earned.")
            % {"amount": number(spent)}
        )
    expired = -totals.get(ScoreRecord.Kind.EXPIRY, 0)
    if expired > 0:
        reasons.append(
            _("Points that expired (%(amount)s) have left your balance; a leaderboard still counts them as earned.")
            % {"amount": number(expired)}
        )
    if period != LeaderboardTotal.Period.ALL:
        reasons.append(_("Points earned before this period are in your balance, not on this leaderboard."))
    if rule is not None:
        reasons.append(_("Points from other rules are in your balance, not on this rule's leaderboard."))
    return reasons


def leaderboard(request: HttpRequest) -> HttpResponse:
    context = leaderboard_context(request)
    if request.user.is_authenticated:
        mine, point_type = context["mine"], context["point_type"]
        context["balance_differences"] = balance_differences(
            balance=balance_of(user_id=request.user.pk, point_type_id=point_type.pk),
            board_points=mine.points if mine is not None else 0,
            totals=entry_totals(user_id=request.user.pk, point_type_id=point_type.pk),
            rule=context["board"].rule,
            period=context["board"].period,
        )
    return render(request, "ledger/leaderboard.html", context)

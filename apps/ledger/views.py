"""The site's leaderboard page: include `apps.ledger.urls` in a host site's URLconf to get `/leaderboard/`."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.ledger.forms import LeaderboardForm
from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_rank_of


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


def leaderboard(request: HttpRequest) -> HttpResponse:
    return render(request, "ledger/leaderboard.html", leaderboard_context(request))

"""Changelist pieces for tables with millions of rows: cheap counts, indexed searches and filters.

Shared by the ledger's admin classes and the progress (UserScoreInfo) admin. Templates that go
with them: `templates/admin/ledger/change_list.html` (estimated count, indexed date drill-down).
"""

import json
import re

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

# "20261127093000123456-42-7": the time it was posted, the account and the entry's seq.
_SERIAL_NUMBER = re.compile(r"^\d{14,}-\d+-\d+$")


class CappedCountPaginator(Paginator):
    """Counts exactly what is cheap to count; past that, takes PostgreSQL's planner estimate.

    The admin asks every changelist for its number of rows. An exact COUNT over a million ledger
    entries reads them all. Here the first count stops at `exact_up_to` + 1 rows. Past that, the
    planner's estimate is used when it says the list is big (at least `estimate_from` rows), which
    is all an operator needs ("about 1,000,000"); a smaller estimate is either right, and then an
    exact count is cheap, or wrong (a skewed filter), and then only an exact count keeps the pages
    right. The embedded SQLite has no estimate and counts exactly.
    """

    exact_up_to = 10_000
    estimate_from = 50_000

    @cached_property
    def count(self) -> int:
        self._estimated = False
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        bounded = queryset.order_by()[: self.exact_up_to + 1].count()
        if bounded <= self.exact_up_to:
            return bounded
        estimate = self._planner_estimate(queryset)
        if estimate is None or estimate < self.estimate_from:
            return queryset.count()
        self._estimated = True
        return estimate

    @property
    def is_estimate(self) -> bool:
        """Whether `count` is the planner's estimate rather than an exact number."""
        return self.count is not None and self._estimated

    @staticmethod
    def _planner_estimate(queryset: QuerySet) -> int | None:
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])


def user_page_link(user) -> str:
    """The user's name, linking to their page in the ledger admin."""
    return format_html('<a href="{}">{}</a>', reverse("admin:ledger_account_user", args=[user.pk]), user)


class UserListMixin:
    """A list of rows that each belong to a user: a user column and a search that use indexes.

    `user_column` links to the user's ledger page (the row's user must be in list_select_related).
    Search takes the beginning of a username, matched with case (`startswith`), which PostgreSQL
    answers from the username's pattern index; the admin's default `icontains` would read every
    user for each search.
    """

    search_fields = ("user__username",)
    search_help_text = _("The beginning of a username (case matters).")

    @admin.display(description=_("user"), ordering="user__username")
    def user_column(self, obj) -> str:
        return user_page_link(obj.user)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(user__username__startswith=term), False


class IndexOrderChangeList(ChangeList):
    """Breaks ties on the primary key in the direction of the sort column.

    The admin appends `-pk` to any ordering that is not unique, so sorting by balance ascending
    reads `ORDER BY balance, id DESC`, which no single index serves: PostgreSQL sorts the whole
    table. With the tie broken as `balance, id` (or `-balance, -id`) an index on (balance, id)
    serves both directions.
    """

    def get_ordering(self, request, queryset):
        ordering = super().get_ordering(request, queryset)
        first = ordering[0] if ordering else None
        if len(ordering) > 1 and ordering[-1] == "-pk" and isinstance(first, str) and not first.startswith("-"):
            ordering[-1] = "pk"
        return ordering


class BigTableAdminMixin(UserListMixin):
    """A read-only changelist over a big table: no full counts, facets or bulk actions.

    Subclasses set `sortable_by` to the columns an index can sort. The page holds 50 rows: with
    the queries bounded, the admin's per-row rendering (about a millisecond a row) is what a
    page costs.
    """

    paginator = CappedCountPaginator
    list_per_page = 50
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # a facet is a COUNT per filter choice over the table
    change_list_template = "admin/ledger/change_list.html"
    actions = None
    sortable_by = ()

    def get_changelist(self, request, **kwargs):
        return IndexOrderChangeList


class SerialNumberSearchMixin(BigTableAdminMixin):
    """Also finds one entry by its exact serial number (the unique index)."""

    search_help_text = _("The beginning of a username (case matters), or an entry's serial number.")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if _SERIAL_NUMBER.match(term):
            return queryset.filter(serial_number=term), False
        return super().get_search_results(request, queryset, search_term)


class BalanceFilter(admin.SimpleListFilter):
    """Accounts by the sign of their balance; "below zero" is a range scan on the balance index."""

    title = _("balance")
    parameter_name = "balance"

    def lookups(self, request, model_admin):
        return [("negative", _("below zero")), ("zero", _("zero")), ("positive", _("above zero"))]

    def queryset(self, request, queryset):
        lookup = {"negative": "balance__lt", "zero": "balance", "positive": "balance__gt"}.get(self.value())
        return queryset.filter(**{lookup: 0}) if lookup else queryset

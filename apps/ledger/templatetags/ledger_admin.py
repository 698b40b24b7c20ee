"""Template tags for the ledger's admin pages: a date drill-down and pagination fit for big tables."""

from datetime import date, datetime, timedelta

from django import template
from django.contrib.admin.templatetags.admin_list import pagination, search_form
from django.db import connections
from django.db.models import Max, Min, QuerySet
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

register = template.Library()


@register.inclusion_tag("admin/ledger/counted_pagination.html")
def counted_pagination(cl):
    """The admin's pagination, saying "about" when the paginator estimated the number of rows."""
    context = pagination(cl)
    context["estimated"] = getattr(cl.paginator, "is_estimate", False)
    return context


@register.inclusion_tag("admin/ledger/counted_search_form.html")
def counted_search_form(cl):
    """The admin's search box; its "N results" says "about" when the number is an estimate."""
    context = search_form(cl)
    context["estimated"] = getattr(cl.paginator, "is_estimate", False)
    return context


def _month_after(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


@register.inclusion_tag("admin/date_hierarchy.html")
def indexed_date_hierarchy(cl):
    """The admin's date drill-down (years, then months, then days), for a DateTimeField.

    Django's own tag lists the periods that have rows with SELECT DISTINCT over every row in
    range: a scan of the whole ledger on the first page. Here each candidate period is one probe
    on the field's index, at most 31 of them in one query; the links and the filter they set are
    Django's.
    """
    field = cl.date_hierarchy
    year, month, day = (cl.params.get(f"{field}__{part}") for part in ("year", "month", "day"))
    queryset = cl.queryset.order_by()

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    def with_rows(periods: list[tuple[date, date]]) -> list[bool]:
        return _exists_each(queryset, field, [(_local_midnight(start), _local_midnight(end)) for start, end in periods])

    if not (year or month or day):
        # Like Django: start at the year, or the month, when everything falls within one.
        span = queryset.aggregate(first=Min(field), last=Max(field))
        if span["first"] is None:
            return {"show": True, "back": None, "choices": []}
        first, last = timezone.localtime(span["first"]), timezone.localtime(span["last"])
        if first.year != last.year:
            candidates = list(range(first.year, last.year + 1))
            found = with_rows([(date(y, 1, 1), date(y + 1, 1, 1)) for y in candidates])
            years = [y for y, present in zip(candidates, found, strict=True) if present]
            return {
                "show": True,
                "back": None,
                "choices": [{"link": link({f"{field}__year": str(y)}), "title": str(y)} for y in years],
            }
        year = str(first.year)
        if first.month == last.month:
            month = str(first.month)
    try:
        year_n, month_n, day_n = int(year), int(month) if month else None, int(day) if day else None
        if month_n and day_n:
            chosen = date(year_n, month_n, day_n)
        elif month_n:
            chosen = date(year_n, month_n, 1)
        else:
            chosen = date(year_n, 1, 1)
    except (TypeError, ValueError):  # the changelist itself reports bad parameters
        return {"show": False}
    if day_n:
        return {
            "show": True,
            "back": {
                "link": link({f"{field}__year": year, f"{field}__month": month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if month_n:
        candidates = [chosen + timedelta(days=n) for n in range((_month_after(chosen) - chosen).days)]
        found = with_rows([(d, d + timedelta(days=1)) for d in candidates])
        days = [d for d, present in zip(candidates, found, strict=True) if present]
        return {
            "show": True,
            "back": {"link": link({f"{field}__year": year}), "title": year},
            "choices": [
                {
                    "link": link({f"{field}__year": year, f"{field}__month": month, f"{field}__day": str(d.day)}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in days
            ],
        }
    candidates = [date(year_n, m, 1) for m in range(1, 13)]
    found = with_rows([(m, _month_after(m)) for m in candidates])
    months = [m for m, present in zip(candidates, found, strict=True) if present]
    return {
        "show": True,
        "back": {"link": link({}), "title": _("All dates")},
        "choices": [
            {
                "link": link({f"{field}__year": year, f"{field}__month": str(m.month)}),
                "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
            }
            for m in months
        ],
    }


def _exists_each(queryset: QuerySet, field: str, ranges: list[tuple[datetime, datetime]]) -> list[bool]:
    """For each [start, end) range, whether `queryset` has a row in it: one round trip, one index probe each.

    SELECT (...) IS NOT NULL, ... with each subquery the ORM's own SQL and parameters.
    """
    if not ranges:
        return []
    parts, params = [], []
    for start, end in ranges:
        # A scalar subquery ordered by the field, not EXISTS: PostgreSQL drops ORDER BY and LIMIT
        # inside EXISTS, and with a filter such as kind = 'award' it then guesses that a scan of the
        # table finds a row sooner than the index (162 ms instead of 0.1 ms on a million entries).
        probe = queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end}).order_by(field).values("pk")[:1]
        sql, probe_params = probe.query.sql_with_params()
        parts.append(f"({sql}) IS NOT NULL")
        params.extend(probe_params)
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        return [bool(value) for value in cursor.fetchone()]


def _local_midnight(day: date) -> datetime:
    """The first instant of `day` in the current time zone, as the changelist's own filter uses."""
    return timezone.make_aware(datetime(day.year, day.month, day.day))

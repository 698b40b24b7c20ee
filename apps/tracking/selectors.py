"""Reads about the pipeline's health (GET /healthz) and the admin index's dashboard."""

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.core.clock import local_today
from apps.tracking.handoff import handoff, uses_inbox
from apps.tracking.models import FailedEvent, Heartbeat, OutboxEvent


@dataclass
class Health:
    checks: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict:
        """What anyone may read: the status, the failing checks' names and the names of all checks."""
        return {"status": "ok" if self.ok else "unhealthy", "problems": self.problems, "checks": list(self.checks)}

    def details(self) -> dict:
        """The summary's status and problems with every check's value, error text included (staff, or a token)."""
        return {"status": "ok" if self.ok else "unhealthy", "problems": self.problems, **self.checks}


def _age_s(moment) -> float | None:
    return None if moment is None else round((timezone.now() - moment).total_seconds(), 1)


def health_report() -> Health:
    """Database, broker, outbox backlog, oldest unprocessed event, last worker heartbeat."""
    health = Health()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        health.checks["database"] = "ok"
    except Exception as exc:
        health.checks["database"] = f"error: {exc}"
        health.problems.append("database")
        return health  # everything below needs the database

    oldest = None
    if uses_inbox():
        try:
            inbox = handoff().inbox  # the process's client: no new connection pool per check
            inbox.ping()
            health.checks["broker"] = "ok"
            health.checks["inbox_backlog"] = inbox.backlog()
            oldest = inbox.oldest_age_s()
        except Exception as exc:
            health.checks["broker"] = f"error: {type(exc).__name__}: {exc}"
            health.problems.append("broker")
    else:
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "")
        health.checks["broker"] = "ok" if folder else "unknown"

    outbox = OutboxEvent.objects.order_by("created_at").values_list("created_at", flat=True)
    first_waiting = outbox.first()
    health.checks["outbox_backlog"] = outbox.count() if first_waiting else 0
    outbox_age = _age_s(first_waiting)
    ages = [age for age in (oldest, outbox_age) if age is not None]
    health.checks["oldest_unprocessed_age_s"] = round(max(ages), 1) if ages else None
    if ages and max(ages) > settings.JIFEN_HEALTH_MAX_EVENT_AGE_S:
        health.problems.append("oldest_unprocessed_age_s")

    beat = Heartbeat.objects.filter(name="worker").values_list("seen_at", flat=True).first()
    health.checks["worker_heartbeat_age_s"] = _age_s(beat)
    if beat is None or _age_s(beat) > settings.JIFEN_HEALTH_MAX_HEARTBEAT_AGE_S:
        health.problems.append("worker_heartbeat_age_s")

    health.checks["failed_events"] = FailedEvent.objects.filter(status=FailedEvent.Status.FAILED).count()
    health.checks["checked_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return health


# --- The admin index's dashboard (SPEC §7) ---------------------------------------------------

CHART_DAYS = 14
# The chart's past days are read once per process and kept this long. Ledger entries are always
# written "now", so a past day's entries never change and are kept until the day ends; a past
# day's events can still grow by late events (ingested files, an outbox drained after an outage).
PAST_EVENTS_CACHE_S = 300
PAST_LEDGER_CACHE_S = 24 * 3600


@dataclass(frozen=True)
class DayFigures:
    day: date
    events: int | None  # None: the viewer may not see completions
    entries: int | None  # None: the viewer may not see the ledger
    points: int | None


@dataclass
class Dashboard:
    """What the admin index shows; a figure the viewer may not see is None and is never computed."""

    today: date
    days: list[DayFigures]
    active_rules: int | None = None
    in_use_tasks: int | None = None
    health: Health | None = None
    failed_events: int | None = None
    failed_tasks: int | None = None

    @property
    def shows_events(self) -> bool:
        return self.days[-1].events is not None

    @property
    def shows_ledger(self) -> bool:
        return self.days[-1].points is not None

    @property
    def today_figures(self) -> DayFigures:
        return self.days[-1]


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _per_day(queryset, field: str, tz: ZoneInfo, start: datetime, end: datetime, **aggregates) -> dict[date, dict]:
    """{local day: aggregates} over [start, end): one range query on `field`'s index, grouped by local day."""
    rows = (
        queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})
        .annotate(day=TruncDate(field, tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(**aggregates)
    )
    return {row.pop("day"): row for row in rows}


def _days_figures(name: str, queryset, field: str, *, tz: ZoneInfo, first: date, today: date, cache_s: int, **aggregates):
    """Per-day aggregates from `first` to `today`: the past days from the cache (or one query), today always live.

    Today's range holds a day's rows; the past days' query reads thirteen days' rows (on a big
    site a few hundred thousand), which is why it runs once per process and `cache_s`.
    """
    today_start = _local_midnight(today, tz)
    key = f"jifen:dashboard:{name}:{first}:{today}"
    past = cache.get(key)
    if past is None:
        past = _per_day(queryset, field, tz, _local_midnight(first, tz), today_start, **aggregates)
        cache.set(key, past, cache_s)
    return past | _per_day(queryset, field, tz, today_start, _local_midnight(today + timedelta(days=1), tz), **aggregates)


def dashboard_figures(*, user) -> Dashboard:
    """Today's and the last CHART_DAYS days' events and points, rules, backlogs and failures, as `user` may see them.

    Each figure is shown only to a user with the view permission of the model it comes from
    (ledger figures need `ledger.view_scorerecord`). The per-day figures are range queries on
    indexed timestamps (`UserTaskRecord.occurred_at`, `ScoreRecord.created_at`), grouped by the
    day in `settings.TIME_ZONE`, the zone rules count in: today's on every load, the thirteen days
    before from the cache (see PAST_EVENTS_CACHE_S); nothing counts a whole big table.
    """
    from celery import states
    from django_celery_results.models import TaskResult

    from apps.ledger.models import ScoreRecord
    from apps.rules.models import ScoreRule
    from apps.tasks.models import TaskConfig, UserTaskRecord

    tz = ZoneInfo(settings.TIME_ZONE)
    today = local_today()
    first = today - timedelta(days=CHART_DAYS - 1)
    span = {"tz": tz, "first": first, "today": today}

    events = entries = None
    if user.has_perm("tasks.view_usertaskrecord"):
        events = _days_figures(
            "events", UserTaskRecord.objects, "occurred_at", **span, cache_s=PAST_EVENTS_CACHE_S, n=Count("id")
        )
    if user.has_perm("ledger.view_scorerecord"):
        entries = _days_figures(
            "ledger",
            ScoreRecord.objects,
            "created_at",
            **span,
            cache_s=PAST_LEDGER_CACHE_S,
            n=Count("id"),
            points=Sum("trade_amount"),
        )
    days = []
    for offset in range(CHART_DAYS):
        day = first + timedelta(days=offset)
        ledger_day = entries.get(day, {}) if entries is not None else None
        days.append(
            DayFigures(
                day=day,
                events=events.get(day, {}).get("n", 0) if events is not None else None,
                entries=ledger_day.get("n", 0) if ledger_day is not None else None,
                points=(ledger_day.get("points") or 0) if ledger_day is not None else None,
            )
        )

    dashboard = Dashboard(today=today, days=days)
    if user.has_perm("rules.view_scorerule"):
        dashboard.active_rules = ScoreRule.objects.filter(status=ScoreRule.Status.ACTIVE).count()
    if user.has_perm("tasks.view_taskconfig"):
        dashboard.in_use_tasks = TaskConfig.objects.filter(status=TaskConfig.Status.IN_USE).count()
    if user.has_perm("tracking.view_outboxevent"):
        dashboard.health = health_report()
    if user.has_perm("tracking.view_failedevent"):
        dashboard.failed_events = (
            dashboard.health.checks["failed_events"]
            if dashboard.health and "failed_events" in dashboard.health.checks
            else FailedEvent.objects.filter(status=FailedEvent.Status.FAILED).count()
        )
    if user.has_perm("django_celery_results.view_taskresult"):
        dashboard.failed_tasks = TaskResult.objects.filter(status=states.FAILURE).count()
    return dashboard

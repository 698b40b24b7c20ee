"""The admin index's dashboard: today's figures, backlogs, failures and a 14-day chart, per permission."""

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django_celery_results.models import TaskResult

from apps.tracking.events import Event
from apps.tracking.models import FailedEvent, OutboxEvent
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_days():
    """The chart's past days are cached per process; each test starts from its own data."""
    cache.clear()
    yield
    cache.clear()


def post(user, when) -> None:
    event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=when))


@pytest.fixture
def activity():
    """Two posts today and one three days ago, 5 points each (all posted to the ledger now), and some trouble."""
    TaskConfigFactory(task_type="post")
    ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
    ScoreRuleFactory(task_type="post", score_type="post-draft", points=1, status="editing")
    alice = UserFactory(username="alice")
    now = timezone.now()
    post(alice, now)
    post(alice, now - timedelta(seconds=1))
    post(alice, now - timedelta(days=3))
    FailedEvent.objects.create(event_id=uuid.uuid4(), payload={}, error="boom", attempts=3)
    OutboxEvent.objects.create(event_id=uuid.uuid4(), payload={})
    TaskResult.objects.create(task_id="t-1", status="FAILURE")
    TaskResult.objects.create(task_id="t-2", status="SUCCESS")
    return now


def figure(page: str, name: str) -> str | None:
    match = re.search(rf'id="figure-{name}".*?class="value">([^<]*)<', page, re.S)
    return match.group(1).strip() if match else None


def charts(page: str) -> dict[str, dict[str, int]]:
    """{chart title: {day: value}} for every SVG chart on the page."""
    found = {}
    for title, svg in re.findall(r'<svg class="jifen-chart"[^>]*aria-label="([^"]+)"(.*?)</svg>', page, re.S):
        found[title] = {day: int(value) for day, value in re.findall(r'data-day="([\d-]+)" data-value="(-?\d+)"', svg)}
    return found


def test_figures_after_some_events_and_points(client, activity):
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:index")).content.decode()

    assert figure(page, "events-today") == "2"
    assert figure(page, "points-today") == "15"
    assert "in 3 ledger entries" in page
    assert figure(page, "active-rules") == "1"
    assert figure(page, "outbox") == "1"
    assert figure(page, "failed-events") == "1"
    assert figure(page, "failed-tasks") == "1"
    # The job sections are still there.
    assert reverse("admin:rules_scorerule_changelist") in page and 'class="app-authoring module' in page


def test_the_chart_has_fourteen_days_ending_today(client, activity):
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:index")).content.decode()

    found = charts(page)
    assert set(found) == {"Events per day", "Points per day (net)"}
    today = timezone.localdate(activity)
    days = [str(today - timedelta(days=n)) for n in range(13, -1, -1)]
    events, points = found["Events per day"], found["Points per day (net)"]
    assert list(events) == days and list(points) == days
    assert events[str(today)] == 2 and events[str(today - timedelta(days=3))] == 1
    assert sum(events.values()) == 3
    # Points are counted on the day they were posted, which is today for all three.
    assert points[str(today)] == 15 and sum(points.values()) == 15
    assert "cdn" not in page.lower() and "<script" not in page.split('id="jifen-dashboard"')[1].split("</svg>")[0]


def test_a_user_who_cannot_view_the_ledger_sees_no_ledger_figures(client, activity):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_usertaskrecord", "view_scorerule", "view_taskconfig"])
    )
    client.force_login(viewer)
    page = client.get(reverse("admin:index")).content.decode()

    assert figure(page, "events-today") == "2"
    assert figure(page, "points-today") is None
    assert "ledger entries" not in page
    assert set(charts(page)) == {"Events per day"}
    # Nor the pipeline's internals without their view permissions.
    assert figure(page, "outbox") is None and figure(page, "failed-tasks") is None

    viewer.user_permissions.add(Permission.objects.get(codename="view_scorerecord"))
    client.force_login(viewer)
    page = client.get(reverse("admin:index")).content.decode()
    assert figure(page, "points-today") == "15"
    assert set(charts(page)) == {"Events per day", "Points per day (net)"}


def big_table_queries(client) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("admin:index")).status_code == 200
    big = ("tasks_usertaskrecord", "ledger_scorerecord")
    return [q["sql"] for q in captured.captured_queries if any(f'"{table}"' in q["sql"] for table in big)]


def test_the_per_day_figures_are_range_queries_and_past_days_are_read_once(client, activity):
    """Range queries on the indexed timestamps, never a COUNT over a whole big table; past days come from the cache."""
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    first = big_table_queries(client)
    assert len(first) == 4, first  # past days and today, for events and for the ledger
    assert all(re.search(r'WHERE .*"(occurred_at|created_at)" >= .* AND .*"(occurred_at|created_at)" < ', sql) for sql in first)
    again = big_table_queries(client)
    assert len(again) == 2, again  # today only


def test_todays_figures_are_live_while_past_days_are_cached(client, activity):
    client.force_login(UserFactory(username="op", is_staff=True, is_superuser=True))
    client.get(reverse("admin:index"))
    post(get_user_model().objects.get(username="alice"), timezone.now())
    page = client.get(reverse("admin:index")).content.decode()
    assert figure(page, "events-today") == "3"
    assert figure(page, "points-today") == "20"

"""What keeps the ledger's admin pages fast on big tables: bounded counts, probes, few queries."""

import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.core.periods import next_period_start, period_bounds
from apps.ledger.changelists import CappedCountPaginator
from apps.ledger.models import ScoreRecord
from apps.rules.models import ScoreRule, UserScoreInfo
from apps.rules.selectors.rules import RuleProgress, current_progress_for
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.ledger.conftest import give_points

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 9, tzinfo=TZ)


def reference_progress(*, user_id: int, at: datetime | None = None) -> list[RuleProgress]:
    """The plain reading of SPEC §4, one query per rule: what `current_progress_for` must mean."""
    at = at or timezone.now()
    tz = ZoneInfo(settings.TIME_ZONE)
    rules = list(ScoreRule.objects.filter(status=ScoreRule.Status.ACTIVE).order_by("task_type", "id"))
    infos = UserScoreInfo.objects.filter(user_id=user_id, achievement_type__in=rules)
    rows = []
    for rule in rules:
        start, deadline = period_bounds(rule.statistical_period, at, tz)
        if rule.kind == ScoreRule.Kind.STREAK:
            latest = infos.filter(achievement_type=rule, streak_length__gt=0).order_by("-period_start").first()
            alive = latest is not None and (
                latest.period_start == start or next_period_start(rule.statistical_period, latest.period_start, tz) == start
            )
            progress = latest.streak_length if alive else 0
            current = latest if latest is not None and latest.period_start == start else None
        else:
            current = infos.filter(achievement_type=rule, period_start=start).first()
            progress = current.achievement_amount_now if current else 0
        rows.append(
            RuleProgress(
                rule=rule,
                period_start=start,
                deadline=deadline,
                progress=progress,
                required=rule.required_number_of_times,
                achieved=bool(current and current.achieved),
                awards=current.awards_in_period if current else 0,
                counted_now=current is not None and (current.streak_length > 0 or current.achievement_amount_now > 0),
            )
        )
    return rows


@pytest.fixture
def superuser(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def small_cap(monkeypatch):
    """Count exactly up to 5 rows; trust any estimate past that (as for a million rows)."""
    monkeypatch.setattr(CappedCountPaginator, "exact_up_to", 5)
    monkeypatch.setattr(CappedCountPaginator, "estimate_from", 0)


class TestProgressInTwoQueries:
    @pytest.fixture
    def history(self):
        TaskConfigFactory(task_type="sign-in")
        rules = [
            ScoreRuleFactory(score_type="daily"),
            ScoreRuleFactory(score_type="weekly-3", statistical_period="week", required_number_of_times=3),
            ScoreRuleFactory(score_type="streak-3", kind="streak", required_number_of_times=3),
            ScoreRuleFactory(score_type="first-ever", statistical_period="none", award_limit_per_period=1),
            ScoreRuleFactory(score_type="draft", status="editing"),
        ]
        alice = UserFactory(username="alice")
        for day in (2, 3, 4, 4):  # Monday 2 November 2026 onwards
            event_process(
                event=Event(
                    event_id=uuid.uuid4(),
                    user_id=alice.pk,
                    task_type="sign-in",
                    occurred_at=datetime(2026, 11, day, 9, tzinfo=TZ),
                )
            )
        return alice, rules

    @pytest.mark.parametrize(
        "when",
        [
            datetime(2026, 11, 4, 20, tzinfo=TZ),  # same day: streak 3, weekly 4 (one award, next at 6)
            datetime(2026, 11, 5, 8, tzinfo=TZ),  # next day: the streak is still alive, today not done yet
            datetime(2026, 11, 6, 8, tzinfo=TZ),  # a day missed: the streak is broken
            datetime(2026, 11, 9, 8, tzinfo=TZ),  # a new week
        ],
    )
    def test_means_the_same_as_reading_each_rule_on_its_own(self, history, when):
        alice, _rules = history
        ours = current_progress_for(user_id=alice.pk, at=when)
        assert ours == reference_progress(user_id=alice.pk, at=when)
        assert [row.rule.score_type for row in ours] == ["daily", "weekly-3", "streak-3", "first-ever"]

    def test_streak_and_count_values(self, history):
        alice, _rules = history
        progress = current_progress_for(user_id=alice.pk, at=datetime(2026, 11, 5, 8, tzinfo=TZ))
        rows = {row.rule.score_type: row for row in progress}
        assert rows["streak-3"].progress == 3 and rows["weekly-3"].progress == 4 and rows["daily"].progress == 0
        assert rows["weekly-3"].deadline == datetime(2026, 11, 9, tzinfo=TZ)
        assert rows["first-ever"].deadline is None and rows["first-ever"].progress == 4

    def test_reads_with_two_queries_whatever_the_number_of_rules(self, history, django_assert_num_queries):
        alice, _rules = history
        for n in range(30):
            ScoreRuleFactory(score_type=f"more-{n}", statistical_period=("day", "week", "month", "year")[n % 4])
        with django_assert_num_queries(2):
            assert len(current_progress_for(user_id=alice.pk)) == 34


class TestCappedCount:
    def test_counts_exactly_up_to_the_cap(self, small_cap):
        alice = UserFactory(username="alice")
        for _ in range(5):
            give_points(alice, 1)
        paginator = CappedCountPaginator(ScoreRecord.objects.order_by("-id"), 2)
        assert paginator.count == 5 and not paginator.is_estimate and paginator.num_pages == 3

    def test_past_the_cap_a_big_estimate_is_taken(self, small_cap):
        alice = UserFactory(username="alice")
        for _ in range(12):
            give_points(alice, 1)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        paginator = CappedCountPaginator(ScoreRecord.objects.order_by("-id"), 2)
        if connection.vendor == "postgresql":
            assert paginator.is_estimate and paginator.count == 12  # fresh statistics: the estimate is right
        else:
            assert not paginator.is_estimate and paginator.count == 12  # the embedded SQLite counts exactly
        assert len(paginator.page(1).object_list) == 2

    def test_past_the_cap_a_small_estimate_is_checked_by_counting(self, small_cap, monkeypatch):
        monkeypatch.setattr(CappedCountPaginator, "estimate_from", 1000)
        monkeypatch.setattr(CappedCountPaginator, "_planner_estimate", staticmethod(lambda queryset: 7))
        alice = UserFactory(username="alice")
        for _ in range(12):
            give_points(alice, 1)
        paginator = CappedCountPaginator(ScoreRecord.objects.order_by("-id"), 2)
        assert paginator.count == 12 and not paginator.is_estimate and paginator.num_pages == 6

    @pytest.mark.postgres
    def test_the_ledger_list_never_counts_the_whole_table(self, client, superuser, small_cap):
        alice = UserFactory(username="alice")
        for _ in range(12):
            give_points(alice, 1)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE ledger_scorerecord")
        for params in ({}, {"kind": "award"}, {"q": "ali"}):
            with CaptureQueriesContext(connection) as queries:
                html = client.get(reverse("admin:ledger_scorerecord_changelist"), params).content.decode()
            counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
            assert counts and all("LIMIT 6" in sql for sql in counts), counts
            assert re.search(r"about \d+ ledger entries", html), params


class TestQueriesPerPage:
    @staticmethod
    def queries_for(client, name: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        return len(queries)

    @pytest.mark.parametrize(
        "name",
        ["ledger_account", "ledger_scorerecord", "ledger_adjustment", "rules_userscoreinfo", "tasks_usertaskrecord", "auth_user"],
    )
    def test_more_rows_cost_no_more_queries(self, client, superuser, name, threshold):
        from apps.ledger.services.adjustments import adjustment_request

        TaskConfigFactory(task_type="sign-in")
        ScoreRuleFactory(score_type="daily")

        def add_users(start: int, count: int) -> None:
            for n in range(start, start + count):
                user = UserFactory(username=f"user{n}")
                give_points(user, 5)
                adjustment_request(user_id=user.pk, amount=1, reason="r", request_token=uuid.uuid4(), actor=superuser)
                event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="sign-in", occurred_at=NOW))

        add_users(0, 3)
        self.queries_for(client, name)  # warm the per-process caches (content types, ...)
        few = self.queries_for(client, name)
        add_users(3, 20)
        assert self.queries_for(client, name) == few

    def test_the_date_drill_down_never_scans_for_distinct_dates(self, client, superuser):
        give_points(UserFactory(username="alice"), 1)
        url = reverse("admin:ledger_scorerecord_changelist")
        for params in ({}, {"created_at__year": "2026"}):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url, params).status_code == 200
            assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"].upper()]


class TestCompletionsAndUsers:
    """The completions and users lists search through indexes: a username's beginning, an event id, an email."""

    def test_completions_are_found_by_username_prefix_or_event_id(self, client, superuser):
        TaskConfigFactory(task_type="sign-in")
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        event_id = uuid.uuid4()
        event_process(event=Event(event_id=event_id, user_id=alice.pk, task_type="sign-in", occurred_at=NOW))
        event_process(event=Event(event_id=uuid.uuid4(), user_id=bob.pk, task_type="sign-in", occurred_at=NOW))
        url = reverse("admin:tasks_usertaskrecord_changelist")
        by_prefix = client.get(url, {"q": "ali"}).context["cl"].result_list
        assert [record.user.username for record in by_prefix] == ["alice"]
        by_event = client.get(url, {"q": str(event_id)}).context["cl"].result_list
        assert [record.event_id for record in by_event] == [event_id]

    def test_users_are_found_by_username_prefix_or_exact_email(self, client, superuser):
        UserFactory(username="alice", email="Alice@Example.com")
        UserFactory(username="malice", email="m@example.com")
        url = reverse("admin:auth_user_changelist")
        assert [u.username for u in client.get(url, {"q": "ali"}).context["cl"].result_list] == ["alice"]
        assert [u.username for u in client.get(url, {"q": "alice@example.com"}).context["cl"].result_list] == ["alice"]

"""Cooldowns (anti-farming): the least time between two counted completions of a user, by occurred_at."""

import io
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.ledger.models import Account
from apps.ledger.user_page import decision_text
from apps.rules.models import CountedCompletion, ScoreRule
from apps.rules.services.workflow import score_rule_copy_as_draft, score_rule_update
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process, events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
TEN_MINUTES = timedelta(minutes=10)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, second, tzinfo=TZ)


@pytest.fixture(autouse=True)
def _site_zone(settings):
    settings.TIME_ZONE = "Asia/Shanghai"


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def bob():
    return UserFactory(username="bob")


@pytest.fixture
def tasks():
    TaskConfigFactory(task_type="share")
    TaskConfigFactory(task_type="unshare", reverses="share")


def event(user, when: datetime, business_id: str = "", task_type: str = "share") -> Event:
    return Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=when, business_id=business_id)


def do(user, when: datetime, business_id: str = "", task_type: str = "share") -> str:
    """Process one event as the worker does; the reason of the (first) rule's decision."""
    done = event(user, when, business_id, task_type)
    event_process(event=done)
    decisions = UserTaskRecord.objects.get(event_id=done.event_id).decisions
    return decisions[0]["reason"] if decisions else ""


def reasons(events: list[Event]) -> list[str]:
    return [UserTaskRecord.objects.get(event_id=e.event_id).decisions[0]["reason"] for e in events]


def balance(user) -> int:
    return Account.objects.get(user=user).balance


class TestScoring:
    def test_per_user_blocks_any_object_until_the_cooldown_has_passed_exactly(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        assert do(alice, at(9), "1") == "awarded"
        assert do(alice, at(9, 5), "2") == "cooldown"
        assert do(alice, at(9, 9, 59), "3") == "cooldown"
        assert do(alice, at(9, 10), "4") == "awarded"  # exactly the cooldown after the counted one
        assert balance(alice) == 6

    def test_per_object_blocks_only_the_same_object(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES, cooldown_scope="object")
        assert do(alice, at(9), "1") == "awarded"
        assert do(alice, at(9, 1), "2") == "awarded"
        assert do(alice, at(9, 5), "1") == "cooldown"
        assert do(alice, at(9, 10), "1") == "awarded"
        assert balance(alice) == 9

    def test_users_do_not_block_each_other(self, alice, bob, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        assert do(alice, at(9), "1") == "awarded"
        assert do(bob, at(9, 1), "1") == "awarded"

    def test_late_events_are_decided_as_if_they_had_come_in_time(self, alice, tasks):
        # Arriving newest first, they end up decided as the time-ordered replay decides them (SPEC §6):
        # 09:45 counts, 09:50 is within its cooldown, 09:55 is exactly the cooldown after it, 10:00 within.
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        events = [
            event(alice, at(10), "1"),
            event(alice, at(9, 55), "2"),
            event(alice, at(9, 50), "3"),
            event(alice, at(9, 45), "4"),
        ]
        for done in events:
            event_process(event=done)
        assert reasons(events) == ["cooldown", "awarded", "cooldown", "awarded"]
        assert balance(alice) == 6

    def test_occurred_at_decides_not_the_time_of_processing(self, alice, tasks):
        # Processed within milliseconds of each other, but they happened an hour apart: both count.
        ScoreRuleFactory(task_type="share", points=3, cooldown=timedelta(minutes=30))
        assert do(alice, at(9), "1") == "awarded"
        assert do(alice, at(10), "2") == "awarded"
        # And one that happened a minute later is refused whenever it arrives.
        assert do(alice, at(10, 1), "3") == "cooldown"
        stored = CountedCompletion.objects.order_by("id").values_list("occurred_at", "user_id", "business_id")
        assert list(stored) == [(at(9), alice.pk, "1"), (at(10), alice.pk, "2")]

    def test_a_refused_completion_counts_toward_nothing_and_starts_no_cooldown(self, alice, tasks):
        rule = ScoreRuleFactory(task_type="share", points=3, required_number_of_times=2, cooldown=TEN_MINUTES)
        assert do(alice, at(9), "1") == "counted"
        assert do(alice, at(9, 8), "2") == "cooldown"
        assert do(alice, at(9, 10), "3") == "awarded"  # 10 minutes after 09:00, 2 after the refused 09:08
        assert rule.progress.get().achievement_amount_now == 2

    def test_two_completions_of_one_user_in_one_batch(self, alice, bob, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        first, second, late, later, others = (
            event(alice, at(9), "1"),
            event(alice, at(9, 5), "2"),
            event(alice, at(8, 58), "3"),
            event(alice, at(9, 10), "4"),
            event(bob, at(9, 1), "1"),
        )
        with CaptureQueriesContext(connection) as queries:
            events_process_batch(payloads=[e.to_payload() for e in (first, second, late, later, others)])
        # Each user's events are decided in time order: 08:58 counts and blocks 09:00 and 09:05.
        assert reasons([first, second, late, later, others]) == ["cooldown", "cooldown", "awarded", "awarded", "awarded"]
        assert (balance(alice), balance(bob)) == (6, 3)
        reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT") and "countedcompletion" in q["sql"]]
        assert len(reads) == 1, reads

    def test_the_batch_sees_the_counted_completions_before_it(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES, cooldown_scope="object")
        do(alice, at(9), "1")
        batch = [event(alice, at(9, 5), "1"), event(alice, at(9, 5), "2"), event(alice, at(8, 55), "2")]
        events_process_batch(payloads=[e.to_payload() for e in batch])
        assert reasons(batch) == ["cooldown", "awarded", "awarded"]

    def test_a_reversed_completion_frees_the_cooldown(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        assert do(alice, at(9), "7") == "awarded"
        refused = event(alice, at(9, 1), "8")
        event_process(event=refused)
        assert reasons([refused]) == ["cooldown"]
        do(alice, at(9, 2), "7", task_type="unshare")
        # Without 09:00, the 09:01 share is the first: it counts now, and 09:03 is within its cooldown.
        assert reasons([refused]) == ["awarded"]
        assert do(alice, at(9, 3), "8") == "cooldown"
        assert balance(alice) == 3

    def test_rules_without_a_cooldown_write_no_cooldown_columns(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3)
        ScoreRuleFactory(task_type="share", points=1, cooldown=TEN_MINUTES)
        do(alice, at(9), "1")
        assert do(alice, at(9, 1), "2") == "awarded"  # the first rule has no cooldown
        stored = CountedCompletion.objects.order_by("rule_id", "id").values_list("occurred_at", flat=True)
        assert list(stored) == [None, None, at(9)]
        assert balance(alice) == 3 + 3 + 1

    def test_a_streak_with_a_cooldown(self, alice, tasks):
        ScoreRuleFactory(task_type="share", kind="streak", points=2, cooldown=timedelta(hours=20))
        assert do(alice, at(9)) == "awarded"
        assert do(alice, datetime(2026, 11, 3, 1, tzinfo=TZ)) == "cooldown"  # next day, but 16 hours later
        assert do(alice, datetime(2026, 11, 3, 5, tzinfo=TZ)) == "awarded"


class TestWhyNoPoints:
    def test_the_reason_says_the_cooldown_and_when_the_next_can_count(self, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=timedelta(hours=1, minutes=30))
        do(alice, at(9))
        done = event(alice, at(9, 20))
        event_process(event=done)
        (decision,) = UserTaskRecord.objects.get(event_id=done.event_id).decisions
        assert (decision["reason"], decision["counted"], decision["cooldown_s"]) == ("cooldown", False, 5400)
        assert datetime.fromisoformat(decision["cooldown_ends"]) == at(10, 30)
        text = decision_text(decision)
        assert "1\xa0hour, 30\xa0minutes" in text and "10:30" in text and "cooldown" in text

    def test_short_cooldowns_say_seconds(self):
        decision = {"reason": "cooldown", "counted": False, "cooldown_s": 30, "cooldown_ends": "2026-11-02T01:00:30+00:00"}
        assert "cooldown of 30 seconds" in decision_text(decision)

    def test_the_per_user_page_shows_it(self, client, operator, alice, tasks):
        ScoreRuleFactory(task_type="share", points=3, cooldown=TEN_MINUTES)
        do(alice, at(9))
        do(alice, at(9, 5))
        page = client.get(reverse("admin:ledger_account_user", args=[alice.pk])).content.decode()
        assert "within the rule&#x27;s cooldown of 10\xa0minutes" in page


class TestSettings:
    @pytest.mark.parametrize("value", [timedelta(0), timedelta(seconds=-5), timedelta(milliseconds=500), timedelta(days=367)])
    def test_a_cooldown_must_be_sane(self, tasks, value):
        rule = ScoreRule(task_type="share", score_type="r", points=1, cooldown=value)
        with pytest.raises(ValidationError, match="at least one second and at most 366 days"):
            rule.full_clean()

    def test_the_cooldown_is_frozen_on_an_active_rule_and_kept_by_a_copy(self, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each", cooldown=TEN_MINUTES, cooldown_scope="object")
        with pytest.raises(ValidationError, match="cooldown cannot change while share-each is active"):
            score_rule_update(rule=rule, cooldown=timedelta(minutes=1))
        with pytest.raises(ValidationError, match="cooldown scope cannot change while share-each is active"):
            score_rule_update(rule=ScoreRule.objects.get(pk=rule.pk), cooldown_scope="user")
        copy = score_rule_copy_as_draft(rule=ScoreRule.objects.get(pk=rule.pk))
        assert (copy.cooldown, copy.cooldown_scope) == (TEN_MINUTES, "object")

    def test_admin_form_takes_a_cooldown_and_refuses_a_bad_one(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each", status="editing")
        data = {
            "task_type": "share",
            "score_type": "share-each",
            "kind": "count",
            "points": 1,
            "point_type": rule.point_type_id,
            "statistical_period": "day",
            "required_number_of_times": 1,
            "can_repeat": "on",
            "cooldown": "00:00:00",
            "cooldown_scope": "object",
            "object_points-TOTAL_FORMS": 0,
            "object_points-INITIAL_FORMS": 0,
        }
        url = reverse("admin:rules_scorerule_change", args=[rule.pk])
        response = client.post(url, data)
        assert response.status_code == 200
        assert "at least one second and at most 366 days" in response.content.decode()
        response = client.post(url, {**data, "cooldown": "00:10:00"})
        assert response.status_code == 302
        rule.refresh_from_db()
        assert (rule.cooldown, rule.cooldown_scope) == (TEN_MINUTES, "object")
        listed = client.get(reverse("admin:rules_scorerule_changelist") + "?cooldown__isempty=0").content.decode()
        assert "share-each" in listed

    def test_active_rule_page_shows_the_cooldown_read_only(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each", cooldown=TEN_MINUTES)
        page = client.get(reverse("admin:rules_scorerule_change", args=[rule.pk])).content.decode()
        assert 'name="cooldown"' not in page and 'name="cooldown_scope"' not in page
        assert "0:10:00" in page


HEADER = "score_type,task_type,kind,points,statistical_period,cooldown,cooldown_scope,status\n"


def import_rules(path) -> str:
    out = io.StringIO()
    call_command("import_rules", str(path), "--resource", "rules", stdout=out, stderr=io.StringIO())
    return out.getvalue()


class TestSheets:
    def test_cooldowns_round_trip_through_every_format(self, tmp_path, tasks):
        ScoreRuleFactory(task_type="share", score_type="a", cooldown=TEN_MINUTES)
        long = timedelta(days=1, hours=2, seconds=5)
        ScoreRuleFactory(task_type="share", score_type="b", cooldown=long, cooldown_scope="object")
        ScoreRuleFactory(task_type="share", score_type="c")
        for extension in ("csv", "xlsx", "json"):
            path = tmp_path / f"rules.{extension}"
            call_command("export_rules", str(path), "--resource", "rules", stdout=io.StringIO())
            assert "skip 3" in import_rules(path), extension
        assert "a,share,,count,1,points,,day,1,,,,,true,00:10:00,user,active" in (tmp_path / "rules.csv").read_text()
        stored = ScoreRule.objects.order_by("score_type").values_list("cooldown", "cooldown_scope")
        assert list(stored) == [(TEN_MINUTES, "user"), (long, "object"), (None, "user")]

    def test_a_sheet_may_write_durations_as_people_do(self, tmp_path, tasks):
        path = tmp_path / "rules.csv"
        path.write_text(
            HEADER
            + "a,share,count,1,day,00:10:00,user,editing\n"
            + "b,share,count,1,day,PT2H,object,editing\n"
            + "c,share,count,1,day,1 00:00:00,,editing\n"
            + "d,share,count,1,day,90,,editing\n"
            + "e,share,count,1,day,,,editing\n"
        )
        import_rules(path)
        stored = ScoreRule.objects.order_by("score_type").values_list("cooldown", "cooldown_scope")
        assert list(stored) == [
            (TEN_MINUTES, "user"),
            (timedelta(hours=2), "object"),
            (timedelta(days=1), "user"),
            (timedelta(seconds=90), "user"),
            (None, "user"),
        ]

    @pytest.mark.parametrize(
        ("cells", "column", "message"),
        [
            ("ten minutes,user", "cooldown", "'ten minutes' is not a duration"),
            ("00:00:00,user", "cooldown", "at least one second and at most 366 days"),
            ("-00:10:00,user", "cooldown", "at least one second and at most 366 days"),
            ("400 00:00:00,user", "cooldown", "at least one second and at most 366 days"),
            ("00:10:00,team", "cooldown_scope", "'team' is not one of: user, object"),
        ],
    )
    def test_bad_values_are_refused_by_row_and_column(self, tmp_path, tasks, cells, column, message):
        path = tmp_path / "rules.csv"
        path.write_text(HEADER + "good,share,count,1,day,,,editing\n" + f"r,share,count,1,day,{cells},editing\n")
        err = io.StringIO()
        with pytest.raises(CommandError, match="nothing was applied"):
            call_command("import_rules", str(path), "--resource", "rules", stdout=io.StringIO(), stderr=err)
        assert f"row 3, column {column.replace('_', ' ').capitalize()}: " in err.getvalue()  # the admin's label
        assert message in err.getvalue()
        assert not ScoreRule.objects.exists()

    def test_an_active_rules_cooldown_cannot_change_by_sheet(self, tmp_path, tasks):
        ScoreRuleFactory(task_type="share", score_type="a", cooldown=TEN_MINUTES)
        path = tmp_path / "rules.csv"
        path.write_text(HEADER + "a,share,count,1,day,00:05:00,user,active\n")
        err = io.StringIO()
        with pytest.raises(CommandError, match="nothing was applied"):
            call_command("import_rules", str(path), "--resource", "rules", stdout=io.StringIO(), stderr=err)
        assert "row 2, column Cooldown: cooldown cannot change while a is active" in err.getvalue()

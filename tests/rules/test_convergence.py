"""Arrival order does not change what a user earns (SPEC §6, G11): the cases users noticed, one test each.

Every case feeds the same events in two orders and expects what the time-ordered replay earns;
the property test in test_reference_model.py covers random rules and streams.
"""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from apps.ledger.models import Account, ScoreRecord
from apps.ledger.user_page import decision_text
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process, events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def tasks():
    TaskConfigFactory(task_type="sign-in")
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="post-delete", reverses="post")
    TaskConfigFactory(task_type="comment")


def event(user, task_type: str, when: datetime, business_id: str = "") -> Event:
    return Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=when, business_id=business_id)


def feed(*events: Event) -> None:
    for item in events:
        event_process(event=item)


def balance(user) -> int:
    return Account.objects.get(user=user).balance


def reason(item: Event, rule_code: str) -> str:
    decisions = UserTaskRecord.objects.get(event_id=item.event_id).decisions
    return next(d["reason"] for d in decisions if d["rule"] == rule_code)


def test_a_post_deleted_before_the_post_arrives_earns_nothing(alice, tasks):
    ScoreRuleFactory(task_type="post", points=15, score_type="post-points")
    post, delete = event(alice, "post", at(2, 9), "42"), event(alice, "post-delete", at(2, 10), "42")
    feed(delete)  # the deletion arrives first: nothing to undo yet, it waits
    assert not UserTaskRecord.objects.filter(reversed_at__isnull=False).exists()
    feed(post)
    record = UserTaskRecord.objects.get(event_id=post.event_id)
    assert record.reversed_by.event_id == delete.event_id
    assert balance(alice) == 0
    assert reason(post, "post-points") == "reversed"
    assert not ScoreRecord.objects.exists()  # recorded reversed at once: never awarded, nothing to take back


def test_a_deletion_does_not_undo_a_post_made_after_it(alice, tasks):
    ScoreRuleFactory(task_type="post", points=15)
    feed(event(alice, "post-delete", at(2, 10), "42"), event(alice, "post", at(2, 11), "42"))
    assert balance(alice) == 15
    assert not UserTaskRecord.objects.filter(reversed_at__isnull=False).exists()


def test_an_outage_does_not_cost_the_streak(alice, tasks):
    ScoreRuleFactory(task_type="sign-in", kind="streak", points=2, required_number_of_times=5, score_type="five-days")
    days = [event(alice, "sign-in", at(day)) for day in range(1, 6)]
    feed(*days[:2], *days[3:], days[2])  # day 3 was held in the outbox and arrives last
    assert balance(alice) == 2
    assert reason(days[4], "five-days") == "awarded"


def test_the_daily_limit_goes_to_the_earliest_comments_whatever_order_they_arrive_in(alice, tasks):
    ScoreRuleFactory(task_type="comment", points=1, award_limit_per_period=3, score_type="comments")
    comments = [event(alice, "comment", at(2, 9 + i), str(i)) for i in range(4)]
    feed(comments[0], comments[1], comments[3], comments[2])  # the fourth is processed before the third
    assert [reason(c, "comments") for c in comments] == ["awarded", "awarded", "awarded", "limit_reached"]
    assert balance(alice) == 3


def test_deleting_and_posting_again_never_pays_a_threshold_twice(alice, tasks):
    ScoreRuleFactory(task_type="post", points=10, required_number_of_times=3, statistical_period="none")
    feed(*(event(alice, "post", at(2, 9 + i), str(i)) for i in range(3)))
    assert balance(alice) == 10
    for round_ in range(3):  # delete the third post and post it again, three times over
        feed(event(alice, "post-delete", at(3, 9, round_ * 2), "2"), event(alice, "post", at(3, 9, round_ * 2 + 1), "2"))
    assert balance(alice) == 10  # three live posts: one threshold


def test_a_late_post_changes_which_post_a_deletion_undoes(alice, tasks):
    ScoreRuleFactory(task_type="post", points=5)
    first, late = event(alice, "post", at(2, 9), "7"), event(alice, "post", at(2, 11), "7")
    delete = event(alice, "post-delete", at(2, 12), "7")
    feed(first, delete)
    assert UserTaskRecord.objects.get(event_id=first.event_id).reversed_at is not None
    feed(late)  # the latest post at or before the deletion is now this one
    assert UserTaskRecord.objects.get(event_id=first.event_id).reversed_at is None
    assert UserTaskRecord.objects.get(event_id=late.event_id).reversed_by.event_id == delete.event_id
    assert balance(alice) == 5


def test_a_batch_that_arrives_newest_first_earns_what_time_order_earns(alice, tasks):
    ScoreRuleFactory(task_type="sign-in", kind="streak", points=3, required_number_of_times=3)
    ScoreRuleFactory(task_type="post", points=2, award_limit_per_period=1)
    items = [event(alice, "sign-in", at(day)) for day in range(1, 8)] + [event(alice, "post", at(4, h)) for h in (8, 9, 10)]
    events_process_batch(payloads=[item.to_payload() for item in reversed(items)])
    assert balance(alice) == 2 * 3 + 2  # streaks of 3 and 6; one post a day


def test_fed_again_in_any_order_nothing_changes(alice, tasks):
    ScoreRuleFactory(task_type="sign-in", kind="streak", points=3, required_number_of_times=2)
    items = [event(alice, "sign-in", at(day)) for day in (1, 2, 4, 3)]
    feed(*items)
    entries = ScoreRecord.objects.count()
    feed(*reversed(items))
    events_process_batch(payloads=[item.to_payload() for item in items])
    assert ScoreRecord.objects.count() == entries
    assert balance(alice) == 6


def test_the_admin_says_what_was_re_scored_and_which_reversals_wait(alice, tasks, admin_user):
    ScoreRuleFactory(task_type="sign-in", kind="streak", points=2, required_number_of_times=3, score_type="three-days")
    days = [event(alice, "sign-in", at(day)) for day in (26, 27, 28)]
    feed(days[0], days[2], days[1])  # 28 November's sign-in waited while 27's was late
    decision = next(d for d in UserTaskRecord.objects.get(event_id=days[2].event_id).decisions if d["rule"] == "three-days")
    assert decision["reason"] == "awarded"
    assert "re-scored after a late event of 2026-11-27" in decision_text(decision)
    feed(event(alice, "post-delete", at(28, 13), "99"))

    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("admin:ledger_account_user", args=[alice.pk])).content.decode()
    assert "re-scored after a late event of 2026-11-27" in page
    assert 'id="pending-reversals"' in page and "post-delete" in page

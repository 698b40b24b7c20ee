"""Reversal (SPEC §6) and what deleting a user does to the ledger."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.rules.models import ScoreRule, UserScoreInfo
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=TZ)


@pytest.fixture
def alice():
    return UserFactory(username="alice")


@pytest.fixture
def tasks():
    TaskConfigFactory(task_type="share")
    TaskConfigFactory(task_type="unshare", reverses="share")


def do(user, task_type: str, when: datetime, business_id: str = "") -> UserTaskRecord:
    event_id = uuid.uuid4()
    event_process(event=Event(event_id=event_id, user_id=user.pk, task_type=task_type, occurred_at=when, business_id=business_id))
    return UserTaskRecord.objects.get(event_id=event_id)


def balance(user) -> int:
    return Account.objects.get(user=user).balance


def test_the_latest_unreversed_completion_with_the_same_business_id_is_undone(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3)
    first = do(alice, "share", at(2, 9), "7")
    second = do(alice, "share", at(2, 10), "7")
    other = do(alice, "share", at(2, 11), "8")
    do(alice, "unshare", at(2, 12), "7")
    reversed_ids = set(UserTaskRecord.objects.filter(reversed_at__isnull=False).values_list("pk", flat=True))
    assert reversed_ids == {second.pk}
    do(alice, "unshare", at(2, 13), "7")
    reversed_ids = set(UserTaskRecord.objects.filter(reversed_at__isnull=False).values_list("pk", flat=True))
    assert reversed_ids == {first.pk, second.pk}
    assert other.pk not in reversed_ids
    assert balance(alice) == 3


def test_reversal_entry_points_to_the_original_award(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3)
    do(alice, "share", at(2), "7")
    do(alice, "unshare", at(2, 13), "7")
    award, reversal = ScoreRecord.objects.order_by("seq")
    assert (reversal.kind, reversal.trade_amount, reversal.reverses_id) == ("reversal", -3, award.pk)
    assert (reversal.amount_before_trade, reversal.amount_after_trade) == (3, 0)


def test_progress_goes_down_and_the_business_id_is_free_again(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3, can_repeat=False)
    do(alice, "share", at(2, 9), "7")
    do(alice, "unshare", at(2, 10), "7")
    assert UserScoreInfo.objects.get().achievement_amount_now == 0
    again = do(alice, "share", at(2, 11), "7")
    assert again.decisions[0]["reason"] == "awarded"
    assert balance(alice) == 3


def test_a_reversed_award_no_longer_counts_toward_the_period_limit(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3, award_limit_per_period=1)
    do(alice, "share", at(2, 9), "7")
    do(alice, "unshare", at(2, 10), "7")
    assert do(alice, "share", at(2, 11), "8").decisions[0]["reason"] == "awarded"
    assert balance(alice) == 3


def test_deleting_one_of_two_takes_the_threshold_award_back_and_posting_again_pays_it_once(alice, tasks):
    ScoreRuleFactory(task_type="share", points=5, required_number_of_times=2)
    do(alice, "share", at(2, 9), "7")
    do(alice, "share", at(2, 10), "8")  # the second share reaches N = 2
    do(alice, "unshare", at(2, 11), "7")  # one share is left: what one share earns is nothing
    assert balance(alice) == 0
    assert UserScoreInfo.objects.get().achievement_amount_now == 1
    do(alice, "share", at(2, 12), "7")
    do(alice, "unshare", at(2, 13), "7")
    do(alice, "share", at(2, 14), "7")
    assert balance(alice) == 5  # two live shares: one award, however often 7 was deleted and shared again


def test_a_deleted_completion_no_longer_counts_toward_the_streak(alice, tasks):
    ScoreRuleFactory(task_type="share", kind="streak", points=2, required_number_of_times=2)
    do(alice, "share", at(2), "7")
    do(alice, "share", at(3), "8")  # streak 2: award
    do(alice, "unshare", at(3, 13), "8")  # day 3 no longer counts: the award goes, the streak is 1 again
    assert balance(alice) == 0
    assert [row.streak_length for row in UserScoreInfo.objects.order_by("period_start")] == [1, 0]
    do(alice, "share", at(4), "9")  # day 3 was missed: a new streak starts
    assert UserScoreInfo.objects.order_by("-period_start").first().streak_length == 1
    assert balance(alice) == 0


def test_a_recipient_keeps_the_place(alice, tasks):
    rule = ScoreRuleFactory(task_type="share", points=10, statistical_period="none", award_limit_per_period=1, number_limit_all=1)
    bob = UserFactory(username="bob")
    do(alice, "share", at(2, 9), "7")
    do(alice, "unshare", at(2, 10), "7")
    assert do(bob, "share", at(2, 11), "7").decisions[0]["reason"] == "cap_reached"
    assert ScoreRule.objects.get(pk=rule.pk).recipients_count == 1
    assert do(alice, "share", at(2, 12), "7").decisions[0]["reason"] == "awarded"


def test_nothing_to_undo_changes_nothing(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3)
    do(alice, "share", at(2), "7")
    do(alice, "unshare", at(2, 13), "999")
    assert ScoreRecord.objects.count() == 1
    assert not UserTaskRecord.objects.filter(reversed_at__isnull=False).exists()


def test_a_reversal_may_take_the_balance_below_zero(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3)
    do(alice, "share", at(2), "7")
    with transaction.atomic():
        ledger_post_entry(account=account_lock(user_id=alice.pk), amount=-3, kind="adjustment", idempotency_key="spend")
    do(alice, "unshare", at(2, 13), "7")
    assert balance(alice) == -3


def test_deleting_a_user_with_ledger_entries_is_refused(alice, tasks):
    ScoreRuleFactory(task_type="share", points=3)
    do(alice, "share", at(2), "7")
    with pytest.raises(ProtectedError):
        alice.delete()
    assert ScoreRecord.objects.filter(user=alice).count() == 1

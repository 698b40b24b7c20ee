"""Badges (SPEC §12): granted with a rule's award, once per user, and taken back with it, whatever the arrival order."""

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from apps.ledger.models import Account, ScoreRecord
from apps.notifications.models import Notification
from apps.rules.models import Badge, BadgeAward, ScoreRule
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
    TaskConfigFactory(task_type="sign-in")
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="post-delete", reverses="post")


@pytest.fixture
def streak_badge(tasks):
    badge = Badge.objects.create(code="streak-3", name="Three days running")
    ScoreRuleFactory(
        score_type="streak-3", task_type="sign-in", kind=ScoreRule.Kind.STREAK, required_number_of_times=3, points=0, badge=badge
    )
    return badge


@pytest.fixture
def first_post_badge(tasks):
    badge = Badge.objects.create(code="first-post", name="First post")
    ScoreRuleFactory(
        score_type="first-post",
        task_type="post",
        statistical_period=ScoreRule.Period.NONE,
        award_limit_per_period=1,
        points=5,
        badge=badge,
    )
    return badge


def event(user, task_type: str, when: datetime, business_id: str = "") -> Event:
    return Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=when, business_id=business_id)


def feed(*events: Event) -> None:
    for item in events:
        event_process(event=item)


def held(user) -> set[str]:
    return set(BadgeAward.objects.filter(user=user, revoked_at__isnull=True).values_list("badge__code", flat=True))


def badge_news(user) -> list[tuple[str, str]]:
    return list(
        Notification.objects.filter(user=user, kind__startswith="badge.").order_by("id").values_list("kind", "data__badge")
    )


def test_a_streak_earns_its_badge_without_points(alice, streak_badge):
    feed(event(alice, "sign-in", at(2)), event(alice, "sign-in", at(3)))
    assert held(alice) == set()
    feed(event(alice, "sign-in", at(4)))
    assert held(alice) == {"streak-3"}
    assert badge_news(alice) == [("badge.earned", "streak-3")]
    assert not ScoreRecord.objects.filter(user=alice).exists()  # a badge-only rule posts no 0-point entry


def test_a_badge_is_earned_once_however_often_its_rule_awards(alice, first_post_badge):
    ScoreRule.objects.filter(score_type="first-post").update(award_limit_per_period=None)
    feed(event(alice, "post", at(2), "p1"), event(alice, "post", at(3), "p2"))
    assert BadgeAward.objects.filter(user=alice, revoked_at__isnull=True).count() == 2
    assert badge_news(alice) == [("badge.earned", "first-post")]


def test_a_reversal_takes_the_badge_back_with_the_award_and_posting_again_earns_it_again(alice, first_post_badge):
    feed(event(alice, "post", at(2), "p1"))
    assert held(alice) == {"first-post"}
    feed(event(alice, "post-delete", at(2, 13), "p1"))
    assert held(alice) == set()
    assert Account.objects.get(user=alice).balance == 0
    assert badge_news(alice) == [("badge.earned", "first-post"), ("badge.revoked", "first-post")]
    revoked = BadgeAward.objects.get(user=alice)
    assert revoked.revoked_at is not None  # kept, marked: the badge's history stays readable
    feed(event(alice, "post", at(3), "p2"))
    assert held(alice) == {"first-post"}
    assert [kind for kind, _ in badge_news(alice)] == ["badge.earned", "badge.revoked", "badge.earned"]


def test_undoing_one_of_two_awards_keeps_the_badge_and_says_nothing(alice, first_post_badge):
    ScoreRule.objects.filter(score_type="first-post").update(award_limit_per_period=None)
    feed(event(alice, "post", at(2), "p1"), event(alice, "post", at(3), "p2"))
    feed(event(alice, "post-delete", at(3, 13), "p1"))
    assert held(alice) == {"first-post"}
    assert badge_news(alice) == [("badge.earned", "first-post")]


def test_a_late_post_moves_the_badge_to_the_earlier_award(alice, first_post_badge):
    """Lifetime limit 1: the earliest post is the one awarded, whichever arrived first (§6)."""
    late, early = event(alice, "post", at(5), "p5"), event(alice, "post", at(2), "p2")
    feed(late, early)
    live = BadgeAward.objects.get(user=alice, revoked_at__isnull=True)
    assert live.completion.event_id == early.event_id
    assert held(alice) == {"first-post"}
    assert badge_news(alice) == [("badge.earned", "first-post")]  # held throughout: no news


@pytest.mark.parametrize("order", ["time", "scrambled"])
def test_what_a_user_holds_does_not_depend_on_arrival_order(alice, streak_badge, first_post_badge, order):
    stream = [
        event(alice, "sign-in", at(2)),
        event(alice, "post", at(2, 14), "p1"),
        event(alice, "sign-in", at(3)),
        event(alice, "post-delete", at(3, 15), "p1"),
        event(alice, "sign-in", at(4)),
        event(alice, "post", at(5), "p2"),
    ]
    feed(*(stream if order == "time" else [stream[i] for i in (5, 2, 0, 3, 4, 1)]))
    live = BadgeAward.objects.filter(user=alice, revoked_at__isnull=True)
    assert sorted((a.badge.code, a.completion.occurred_at) for a in live) == [("first-post", at(5)), ("streak-3", at(4))]
    assert Account.objects.get(user=alice).balance == 5


def test_zero_points_need_a_badge(tasks):
    rule = ScoreRule(score_type="nothing", task_type="post", points=0)
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert "points" in refused.value.message_dict
    rule.badge = Badge.objects.create(code="b", name="B")
    rule.full_clean()


def test_verify_ledger_checks_that_badges_follow_their_awards(alice, streak_badge, first_post_badge):
    import io

    from django.core.management import CommandError, call_command

    feed(*(event(alice, "sign-in", at(day)) for day in (2, 3, 4)), event(alice, "post", at(4), "p1"))
    feed(event(alice, "post-delete", at(4, 13), "p1"))
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "badges agree" in out.getvalue()

    BadgeAward.objects.filter(badge=streak_badge).update(revoked_at=at(5))  # a badge lost behind the ledger's back
    BadgeAward.objects.filter(badge=first_post_badge).update(revoked_at=None)  # and one kept that was taken back
    errors = io.StringIO()
    with pytest.raises(CommandError, match="2 badge award"):
        call_command("verify_ledger", stdout=io.StringIO(), stderr=errors)
    assert "awarded without its badge" in errors.getvalue()
    assert "holds a badge its award no longer grants" in errors.getvalue()

"""What users are told and what endpoints receive (SPEC §12), written in the transaction of what they announce."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from apps.ledger.models import Level, PointType
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.ledger.services.expiry_notices import expiry_notices_send
from apps.notifications.models import Notification, WebhookDelivery, WebhookEndpoint
from apps.notifications.services.announce import message_id
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
def exp():
    exp = PointType.objects.create(code="exp", name="Experience")
    for name, threshold in (("Newcomer", 0), ("Regular", 20), ("Veteran", 50)):
        Level.objects.create(point_type=exp, name=name, threshold=threshold)
    return exp


@pytest.fixture
def rules(exp):
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="post-delete", reverses="post")
    ScoreRuleFactory(score_type="post-points", task_type="post", points=5)
    ScoreRuleFactory(score_type="post-exp", task_type="post", points=15, point_type=exp)


def post(user, when: datetime, business_id: str, task_type: str = "post") -> Event:
    item = Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=when, business_id=business_id)
    event_process(event=item)
    return item


def notices(user, kind: str | None = None) -> list[Notification]:
    found = Notification.objects.filter(user=user).order_by("id")
    return list(found.filter(kind=kind) if kind else found)


def endpoint(*types: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="crm", url="http://127.0.0.1:9/hook", event_types=list(types))


def test_one_notice_per_completion_names_every_type_it_earned(alice, rules):
    post(alice, at(2), "p1")
    (notice,) = notices(alice, "points.awarded")
    assert notice.data["amounts"] == [{"point_type": "points", "amount": 5}, {"point_type": "exp", "amount": 15}]
    assert sorted(notice.data["rules"]) == ["post-exp", "post-points"]
    assert notice.read_at is None


def test_a_level_is_announced_once_when_earned_points_cross_it(alice, rules):
    post(alice, at(2), "p1")  # 15 exp
    assert notices(alice, "level.reached") == []
    post(alice, at(3), "p2")  # 30 exp: Regular
    (level,) = notices(alice, "level.reached")
    assert (level.data["level"], level.data["point_type"], level.data["earned"]) == ("Regular", "exp", 30)
    post(alice, at(4), "p3")  # 45: still Regular
    assert len(notices(alice, "level.reached")) == 1


def test_a_reversal_is_announced_and_a_level_reached_again_is_announced_again(alice, rules):
    post(alice, at(2), "p1")
    post(alice, at(3), "p2")  # Regular at 30
    post(alice, at(3, 13), "p2", task_type="post-delete")  # back to 15
    taken = notices(alice, "points.reversed")  # one per rule re-scored
    assert sorted(a["amount"] for n in taken for a in n.data["amounts"]) == [-15, -5]
    post(alice, at(4), "p3")  # 30 again
    assert [n.data["level"] for n in notices(alice, "level.reached")] == ["Regular", "Regular"]


def test_endpoints_get_one_delivery_per_entry_of_the_types_they_want(alice, rules):
    wants_awards = endpoint("points.awarded")
    endpoint("redemption.created")
    post(alice, at(2), "p1")
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert {d.endpoint_id for d in deliveries} == {wants_awards.pk}
    assert sorted(d.event_type for d in deliveries) == ["points.awarded", "points.awarded"]
    assert len({d.message_id for d in deliveries}) == 2
    assert all(d.status == "pending" and d.attempts == 0 for d in deliveries)
    assert '"type":"points.awarded"' in deliveries[0].payload


def test_nothing_is_announced_when_the_transaction_rolls_back(alice):
    endpoint("points.adjusted")

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        account = account_lock(user_id=alice.pk)
        ledger_post_entry(account=account, amount=50, kind="adjustment", idempotency_key="adj-1", business_type="goodwill")
        assert notices(alice, "points.adjusted")  # written with the entry...
        raise Undo
    assert notices(alice) == []  # ...and gone with it
    assert not WebhookDelivery.objects.exists()


def test_an_adjustment_tells_the_user_why(alice):
    with transaction.atomic():
        account = account_lock(user_id=alice.pk)
        ledger_post_entry(account=account, amount=50, kind="adjustment", idempotency_key="adj-2", business_type="goodwill")
    (notice,) = notices(alice, "points.adjusted")
    assert (notice.data["amount"], notice.data["balance"], notice.data["reason"]) == (50, 50, "goodwill")


def test_message_ids_are_stable_and_distinct():
    assert message_id("award:x:1") == message_id("award:x:1") != message_id("award:x:2")
    assert message_id("award:x:1").startswith("msg_")


class TestExpiryNotices:
    @pytest.fixture
    def coins(self, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        PointType.objects.filter(pk=default_point_type_id()).update(expiry=PointType.Expiry.ROLLING, expiry_months=1)
        return PointType.objects.get(pk=default_point_type_id())

    def earn(self, user, amount: int, earned_at: datetime, key: str):
        from apps.ledger.services.entries import EntrySpec, ledger_post_entries

        with transaction.atomic():
            account = account_lock(user_id=user.pk)
            ledger_post_entries(
                account=account, entries=[EntrySpec(amount=amount, kind="award", idempotency_key=key, earned_at=earned_at)]
            )

    def test_points_ending_within_the_window_are_announced_once_per_day(self, alice, coins, settings):
        settings.JIFEN_EXPIRY_NOTICE_DAYS = 7
        now = timezone.now()
        self.earn(alice, 10, now - timedelta(days=28), "a")  # ends in about 2-3 days
        self.earn(alice, 4, now - timedelta(days=28) + timedelta(minutes=1), "b")  # same day
        self.earn(alice, 7, now - timedelta(days=10), "c")  # ends in about 3 weeks: not yet
        assert expiry_notices_send(now=now) == 1
        (notice,) = notices(alice, "points.expiring")
        assert (notice.data["amount"], notice.data["point_type"]) == (14, "points")
        assert expiry_notices_send(now=now) == 0  # run again: nothing new
        assert expiry_notices_send(now=now + timedelta(days=15)) == 1  # the third lot's turn
        assert len(notices(alice, "points.expiring")) == 2

    def test_no_window_no_notices(self, alice, coins):
        now = timezone.now()
        self.earn(alice, 10, now - timedelta(days=28), "a")
        assert expiry_notices_send(now=now, days=0) == 0
        assert notices(alice, "points.expiring") == []


def test_a_backfill_tells_each_user_once_per_batch_and_endpoints_once_per_entry(alice):
    from apps.rules.models import ScoreRule
    from apps.rules.services.backfill import score_rule_backfill
    from apps.rules.services.workflow import score_rule_activate

    TaskConfigFactory(task_type="post")
    for day in range(2, 7):
        post(alice, at(day), f"p{day}")  # no rule yet: nothing earned, nothing said
    assert notices(alice) == []
    hook = endpoint("points.awarded")
    rule = ScoreRuleFactory(score_type="post-late", task_type="post", points=3, status=ScoreRule.Status.EDITING)
    score_rule_activate(rule=rule)
    score_rule_backfill(rule=rule, wait=lambda _s: None)
    (notice,) = notices(alice, "points.awarded")
    assert (notice.data["completions"], notice.data["amounts"]) == (5, [{"point_type": "points", "amount": 15}])
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == 5


def test_the_notices_command_sends_once_and_refuses_a_bad_window(alice, settings):
    import io

    from django.core.management import CommandError, call_command

    PointType.objects.filter(pk=default_point_type_id()).update(expiry=PointType.Expiry.ROLLING, expiry_months=1)
    TestExpiryNotices().earn(alice, 10, timezone.now() - timedelta(days=28), "a")
    out = io.StringIO()
    call_command("send_expiry_notices", "--days", "7", stdout=out)
    assert "1 expiry notice(s) sent" in out.getvalue()
    call_command("send_expiry_notices", "--days", "7", stdout=out)
    assert len(notices(alice, "points.expiring")) == 1
    with pytest.raises(CommandError, match="--days"):
        call_command("send_expiry_notices", "--days", "0")


def test_an_endpoint_saved_in_this_process_receives_the_very_next_event(alice, rules):
    post(alice, at(2), "p1")  # the process has read the (empty) subscriptions
    hook = endpoint("points.awarded")
    post(alice, at(3), "p2")
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == 2
    hook.active = False
    hook.save()
    post(alice, at(4), "p3")
    assert WebhookDelivery.objects.filter(endpoint=hook).count() == 2


def test_deleting_a_user_takes_their_notifications_without_a_database_foreign_key(alice):
    from apps.notifications.services.announce import Announcement, announce

    bob = UserFactory(username="bob")
    with transaction.atomic():
        announce([Announcement("level.reached", u.pk, f"level:{u.pk}", {"level": "Regular"}) for u in (alice, bob)])
    alice.delete()  # the ORM cascades (the table has no foreign key to do it)
    assert list(Notification.objects.values_list("user_id", flat=True)) == [bob.pk]

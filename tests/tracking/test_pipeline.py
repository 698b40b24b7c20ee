"""Processing events in the worker: completions, count rules, the ledger, the outbox."""

import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.ledger.models import Account, ScoreRecord
from apps.rules.models import RuleRecipient, UserScoreInfo
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.handoff import HandoffUnavailable
from apps.tracking.models import OutboxEvent
from apps.tracking.services import pipeline as services
from apps.tracking.services.pipeline import Outcome, event_dispatch, event_process, outbox_flush
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=TZ)


def event(user, task_type="post", when=None, business_id="", event_id=None) -> Event:
    return Event(
        event_id=event_id or uuid.uuid4(),
        user_id=user.pk,
        task_type=task_type,
        occurred_at=when or at(2),
        business_id=business_id,
        location="10.0.0.1",
        country="CN",
        lang_type="zh-CN",
    )


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def post_task(db):
    return TaskConfigFactory(task_type="post")


def balance(user) -> int:
    return Account.objects.get(user=user).balance


@pytest.mark.django_db
class TestEventProcess:
    def test_award_is_written_with_balance_before_and_after(self, alice, post_task):
        ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
        assert event_process(event=event(alice)) == Outcome.PROCESSED
        assert event_process(event=event(alice)) == Outcome.PROCESSED
        entries = list(ScoreRecord.objects.filter(user=alice).order_by("seq"))
        assert [(e.seq, e.amount_before_trade, e.trade_amount, e.amount_after_trade) for e in entries] == [
            (1, 0, 5, 5),
            (2, 5, 5, 10),
        ]
        assert entries[0].business_type == "post-each"
        assert (entries[0].location, entries[0].country, entries[0].lang_type) == ("10.0.0.1", "CN", "zh-CN")
        assert balance(alice) == 10

    def test_the_same_event_twice_adds_nothing(self, alice, post_task):
        ScoreRuleFactory(task_type="post", points=5)
        same = event(alice)
        assert event_process(event=same) == Outcome.PROCESSED
        assert event_process(event=same) == Outcome.DUPLICATE
        assert UserTaskRecord.objects.count() == 1
        assert ScoreRecord.objects.count() == 1

    def test_every_n_completions_in_a_period_awards_once(self, alice, post_task):
        ScoreRuleFactory(task_type="post", points=3, required_number_of_times=3)
        for hour in range(9, 16):
            event_process(event=event(alice, when=at(2, hour)))
        # 7 completions: awards at the 3rd and 6th.
        assert ScoreRecord.objects.filter(user=alice).count() == 2
        info = UserScoreInfo.objects.get(user=alice)
        assert (info.achievement_amount_now, info.required_number, info.achieved, info.awards_in_period) == (7, 3, True, 2)

    def test_award_limit_per_period_and_a_new_period(self, alice, post_task):
        ScoreRuleFactory(task_type="post", points=1, award_limit_per_period=2)
        for hour in (9, 10, 11):
            event_process(event=event(alice, when=at(2, hour)))
        event_process(event=event(alice, when=at(3, 9)))
        assert balance(alice) == 3
        reasons = [r.decisions[0]["reason"] for r in UserTaskRecord.objects.order_by("occurred_at")]
        assert reasons == ["awarded", "awarded", "limit_reached", "awarded"]

    def test_period_is_the_local_calendar_day(self, alice, post_task, settings):
        settings.TIME_ZONE = "Asia/Shanghai"
        ScoreRuleFactory(task_type="post", points=1, award_limit_per_period=1)
        # 23:30 and 00:30 local time are two days, though 1 hour apart.
        event_process(event=event(alice, when=at(2, 23) + timedelta(minutes=30)))
        event_process(event=event(alice, when=at(3, 0) + timedelta(minutes=30)))
        assert balance(alice) == 2
        deadlines = sorted(info.deadline for info in UserScoreInfo.objects.all())
        assert deadlines == [at(3, 0), at(4, 0)]

    def test_rules_of_other_tasks_and_inactive_rules_do_not_apply(self, alice, post_task):
        TaskConfigFactory(task_type="comment")
        ScoreRuleFactory(task_type="comment", points=2)
        ScoreRuleFactory(task_type="post", points=9, status="editing")
        ScoreRuleFactory(task_type="post", points=7, status="retired")
        event_process(event=event(alice))
        assert ScoreRecord.objects.count() == 0
        assert UserTaskRecord.objects.get().decisions == []

    def test_several_rules_each_decide_on_their_own_in_id_order(self, alice, post_task):
        first = ScoreRuleFactory(task_type="post", score_type="each", points=5)
        second = ScoreRuleFactory(task_type="post", score_type="first-ever", points=10, statistical_period="none")
        event_process(event=event(alice))
        assert [e.rule_id for e in ScoreRecord.objects.order_by("seq")] == [first.pk, second.pk]
        assert balance(alice) == 15

    def test_unknown_task_or_user_is_skipped(self, alice, post_task):
        assert event_process(event=event(alice, task_type="nope")) == Outcome.UNKNOWN_TASK
        ghost = Event(event_id=uuid.uuid4(), user_id=alice.pk + 1000, task_type="post", occurred_at=at(2))
        assert event_process(event=ghost) == Outcome.UNKNOWN_USER
        assert UserTaskRecord.objects.count() == 0

    def test_reversal_takes_back_the_award(self, alice, post_task):
        TaskConfigFactory(task_type="post-delete", reverses="post")
        ScoreRuleFactory(task_type="post", points=5)
        event_process(event=event(alice, business_id="", when=at(2, 9)))
        event_process(event=event(alice, task_type="post-delete", when=at(2, 10)))
        entries = list(ScoreRecord.objects.order_by("seq"))
        assert [(e.kind, e.trade_amount, e.amount_after_trade) for e in entries] == [("award", 5, 5), ("reversal", -5, 0)]
        assert entries[1].reverses_id == entries[0].pk
        assert UserTaskRecord.objects.get(task__task_type="post").reversed_at is not None
        assert UserScoreInfo.objects.get().achievement_amount_now == 0


class TestEventPayload:
    def test_round_trip(self):
        original = Event(event_id=uuid.uuid4(), user_id=3, task_type="post", occurred_at=at(2), business_id="7")
        assert Event.from_payload(original.to_payload()) == original

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"event_id": "nope"}, "event_id"),
            ({"user_id": "3"}, "user_id"),
            ({"task_type": ""}, "task_type"),
            ({"occurred_at": "2026-11-02T12:00:00"}, "occurred_at"),
        ],
    )
    def test_bad_payload_names_the_field(self, change, field):
        from apps.tracking.events import EventError

        payload = Event(event_id=uuid.uuid4(), user_id=3, task_type="post", occurred_at=at(2)).to_payload()
        with pytest.raises(EventError, match=field):
            Event.from_payload({**payload, **change})


class FakeHandoff:
    """Stands in for the broker: takes events while `up`, else refuses like an open circuit."""

    def __init__(self):
        self.up = True
        self.sent: list[dict] = []

    def send(self, payloads):
        if not self.up:
            raise HandoffUnavailable("broker down")
        self.sent.extend(payloads)


@pytest.fixture
def broker(monkeypatch):
    fake = FakeHandoff()
    monkeypatch.setattr(services, "handoff", lambda: fake)
    return fake


@pytest.mark.django_db
class TestOutbox:
    def test_broker_failure_keeps_the_event_in_the_outbox_until_it_is_back(self, alice, broker):
        broker.up = False
        waiting = event(alice)
        event_dispatch(event=waiting)
        assert OutboxEvent.objects.get().event_id == waiting.event_id

        assert outbox_flush() == 0
        assert OutboxEvent.objects.get().attempts == 1

        broker.up = True
        assert outbox_flush() == 1
        assert OutboxEvent.objects.count() == 0
        assert [p["event_id"] for p in broker.sent] == [str(waiting.event_id)]

    def test_dispatch_while_the_broker_is_up_writes_no_outbox_row(self, alice, broker):
        event_dispatch(event=event(alice))
        assert len(broker.sent) == 1
        assert not OutboxEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestLockOrder:
    """Issue: two capped rules deadlocked batches, which took their rule rows in event order."""

    def test_two_batches_awarding_two_capped_rules_in_opposite_orders_do_not_deadlock(self, monkeypatch):
        import threading

        from django.db import connection

        from apps.rules.services import scoring

        TaskConfigFactory(task_type="t1")
        TaskConfigFactory(task_type="t2")
        first = ScoreRuleFactory(task_type="t1", points=1, statistical_period="none", number_limit_all=1000)
        second = ScoreRuleFactory(task_type="t2", points=1, statistical_period="none", number_limit_all=1000)
        assert first.pk < second.pk
        # A deadlock must not happen at all, not be retried away.
        monkeypatch.setattr(services, "_RACE_RETRIES", 1, raising=False)
        real_take = scoring.recipient_place_take

        def slow_take(**kwargs):
            won = real_take(**kwargs)
            time.sleep(0.2)  # hold the rule row while the other batch takes its first one
            return won

        monkeypatch.setattr(scoring, "recipient_place_take", slow_take)
        errors: list[BaseException] = []
        when = datetime(2026, 11, 2, 12, tzinfo=TZ)

        def batch(tasks: tuple[str, str], prefix: str, start: threading.Barrier) -> None:
            users = [UserFactory(username=f"{prefix}-{i}") for i in range(2)]  # ascending ids: events in this order
            payloads = [
                Event(event_id=uuid.uuid4(), user_id=user.pk, task_type=task, occurred_at=when).to_payload()
                for user, task in zip(users, tasks, strict=True)
            ]
            start.wait()
            try:
                services.events_process_batch(payloads=payloads)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            finally:
                connection.close()

        start = threading.Barrier(2)
        threads = [
            threading.Thread(target=batch, args=(("t2", "t1"), "a", start)),  # second rule, then first
            threading.Thread(target=batch, args=(("t1", "t2"), "b", start)),  # first rule, then second
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        assert RuleRecipient.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_loses_a_race_is_tried_again_at_once(monkeypatch, caplog):
    """A deadlock or serialization failure: the batch is tried again within a second, not left for the sweep (G7)."""
    from django.db import OperationalError
    from psycopg import errors as pg_errors

    alice = UserFactory(username="alice")
    TaskConfigFactory(task_type="post")
    ScoreRuleFactory(task_type="post", points=5)
    real_apply = services._apply
    calls = []

    def deadlocks_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("deadlock detected") from pg_errors.DeadlockDetected("deadlock detected")
        return real_apply(*args)

    monkeypatch.setattr(services, "_apply", deadlocks_once)
    payload = Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="post", occurred_at=datetime(2026, 11, 2, 12, tzinfo=TZ))
    assert services.events_process_batch(payloads=[payload.to_payload()]) == {"processed": 1}
    assert len(calls) == 2
    assert "trying again" in caplog.text

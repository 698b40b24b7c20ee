"""The Redis inbox, batches, poison events, the sweeper and the circuit breaker (SPEC G1-G4, G7)."""

import json
import socket
import threading
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import OperationalError

from apps.ledger.models import ScoreRecord
from apps.rules import replay
from apps.rules.services import scoring
from apps.tasks.models import UserTaskRecord
from apps.tracking.breaker import CircuitBreaker
from apps.tracking.events import Event
from apps.tracking.handoff import Handoff, HandoffUnavailable, worker_inbox
from apps.tracking.models import FailedEvent, OutboxEvent
from apps.tracking.services import pipeline as services
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

TZ = ZoneInfo("Asia/Shanghai")


def payload(user, business_id: str = "", task_type: str = "post") -> dict:
    return Event(
        event_id=uuid.uuid4(),
        user_id=user.pk,
        task_type=task_type,
        occurred_at=datetime(2026, 11, 2, 12, tzinfo=TZ),
        business_id=business_id,
    ).to_payload()


def nested(depth: int) -> list:
    """A list nested `depth` deep (deeper than repr or json.dumps can go)."""
    outer = inner = []
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


@pytest.fixture
def inbox():
    box = worker_inbox()
    box.client.delete(box.key, box.wake_key, box.queue, box.batches_key, box.template_key)
    services._inbox = None
    yield box
    for key in box.client.zrange(box.batches_key, 0, -1):
        box.client.delete(key)
    box.client.delete(box.key, box.wake_key, box.queue, box.batches_key, box.template_key)


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice")
    TaskConfigFactory(task_type="post")
    ScoreRuleFactory(task_type="post", points=5)
    return user


@pytest.mark.redis
class TestInbox:
    def test_push_is_one_event_and_at_most_one_pending_wake_up(self, inbox, alice):
        for _ in range(3):
            inbox.push(payload(alice))
        assert inbox.client.llen(inbox.key) == 3
        assert inbox.client.llen(inbox.queue) == 1
        wake = json.loads(inbox.client.lindex(inbox.queue, 0))
        assert wake["headers"]["task"] == "apps.tracking.tasks.drain_inbox"
        inbox.clear_wake()
        inbox.push(payload(alice))
        assert inbox.client.llen(inbox.queue) == 2

    def test_wake_messages_have_their_own_ids_and_survive_a_lost_template(self, inbox, alice):
        first, second = payload(alice), payload(alice)
        inbox.push(first)
        inbox.clear_wake()
        inbox.client.delete(inbox.template_key)  # as after a Redis restart without persistence
        inbox.push(second)
        assert inbox.client.llen(inbox.key) == 2  # the retry did not push the event twice
        wakes = [json.loads(raw) for raw in inbox.client.lrange(inbox.queue, 0, -1)]
        assert [w["properties"]["delivery_tag"] for w in wakes] == [second["event_id"], first["event_id"]]
        assert [w["headers"]["id"] for w in wakes] == [second["event_id"], first["event_id"]]
        assert inbox.client.exists(inbox.template_key)

    def test_push_survives_redis_forgetting_the_script(self, inbox, alice):
        inbox.push(payload(alice))
        inbox.client.script_flush()
        inbox.push(payload(alice))
        assert inbox.client.llen(inbox.key) == 2

    def test_claim_takes_the_oldest_first_and_finish_forgets_the_batch(self, inbox, alice):
        sent = [payload(alice) for _ in range(5)]
        for item in sent:
            inbox.push(item)
        batch = inbox.claim(limit=3)
        assert [p["event_id"] for p in batch.payloads] == [p["event_id"] for p in sent[:3]]
        assert inbox.backlog() == 5
        inbox.finish(batch)
        assert inbox.backlog() == 2

    def test_events_put_back_at_finish_are_claimed_next(self, inbox, alice):
        sent = [payload(alice) for _ in range(4)]
        for item in sent:
            inbox.push(item)
        batch = inbox.claim(limit=2)
        inbox.finish(batch, put_back=batch.payloads[1:])
        assert inbox.backlog() == 3
        assert [p["event_id"] for p in inbox.claim(limit=2).payloads] == [sent[1]["event_id"], sent[2]["event_id"]]

    def test_a_batch_left_by_a_dead_worker_is_put_back(self, inbox, alice):
        inbox.push(payload(alice))
        assert inbox.claim(limit=10) is not None
        assert inbox.client.llen(inbox.key) == 0
        assert inbox.restore_stale(older_than_s=3600) == 0
        assert inbox.restore_stale(older_than_s=0) == 1
        assert inbox.client.llen(inbox.key) == 1


def timed(user, day: int, hour: int = 12, task_type: str = "post") -> dict:
    return Event(
        event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=datetime(2026, 11, day, hour, tzinfo=TZ)
    ).to_payload()


@pytest.mark.redis
class TestPutBackKeepsOrder:
    """Every path that puts events back hands them out again oldest first (SPEC §6): a put-back that
    reversed them once made a deletion run before its post and broke streaks."""

    def test_events_of_busy_accounts_come_back_in_their_order(self, inbox, alice):
        sent = [payload(alice, business_id=str(i)) for i in range(5)]
        for item in sent:
            inbox.push(item)
        batch = inbox.claim(limit=5)
        inbox.finish(batch, put_back=batch.payloads[1:])
        assert [p["business_id"] for p in inbox.claim(limit=5).payloads] == ["1", "2", "3", "4"]

    def test_a_dead_workers_batch_comes_back_in_its_order_before_newer_events(self, inbox, alice):
        sent = [payload(alice, business_id=str(i)) for i in range(4)]
        for item in sent[:3]:
            inbox.push(item)
        assert inbox.claim(limit=3) is not None
        inbox.push(sent[3])
        assert inbox.restore_stale(older_than_s=0) == 3
        assert [p["business_id"] for p in inbox.claim(limit=10).payloads] == ["0", "1", "2", "3"]

    @pytest.mark.django_db
    def test_the_outbox_flush_hands_events_over_oldest_first(self, inbox, alice):
        sent = [timed(alice, day) for day in (3, 4, 5)]
        for item in sent:
            OutboxEvent.objects.create(event_id=item["event_id"], payload=item)
        assert services.outbox_flush() == 3
        assert [p["event_id"] for p in inbox.claim(limit=10).payloads] == [p["event_id"] for p in sent]

    @pytest.mark.django_db
    def test_a_failed_batch_processes_each_users_events_alone_in_time_order(self, inbox, alice, monkeypatch):
        real = services._apply

        def fails_on_batches(events, *args):
            if len(events) > 1:
                raise RuntimeError("this batch fails")
            return real(events, *args)

        monkeypatch.setattr(services, "_apply", fails_on_batches)
        sent = [timed(alice, day) for day in (5, 4, 3)]  # arriving newest first
        assert services.events_process_batch(payloads=sent)["processed"] == 3
        recorded = UserTaskRecord.objects.order_by("pk").values_list("occurred_at", flat=True)
        assert list(recorded) == sorted(recorded)


@pytest.mark.redis
@pytest.mark.django_db
class TestDrain:
    def test_drain_processes_everything_once(self, inbox, alice):
        for _ in range(7):
            inbox.push(payload(alice))
        assert dict(services.inbox_drain()) == {"processed": 7}
        assert ScoreRecord.objects.count() == 7
        assert inbox.backlog() == 0

    def test_a_batch_the_pipeline_fails_on_is_parked_not_left_claimed(self, inbox, alice, monkeypatch):
        def broken(*, payloads, put_back):
            raise TypeError("a bug in the pipeline")

        monkeypatch.setattr(services, "events_process_batch", broken)
        for business_id in ("a", "b"):
            inbox.push(payload(alice, business_id))
        assert dict(services.inbox_drain()) == {"parked": 2}
        assert FailedEvent.objects.count() == 2
        assert "batch failed: TypeError: a bug in the pipeline" in FailedEvent.objects.first().error
        assert inbox.backlog() == 0 and inbox.client.zcard(inbox.batches_key) == 0

    def test_an_item_that_is_no_json_object_is_parked_and_the_rest_flow(self, inbox, alice):
        inbox.push(payload(alice, "a"))
        inbox.client.lpush(inbox.key, b"\xff not json", b"[1, 2]")
        inbox.push(payload(alice, "b"))
        assert dict(services.inbox_drain()) == {"processed": 2, "parked": 2}
        assert {row.payload["unreadable"] for row in FailedEvent.objects.all()} == {"\\xff not json", "[1, 2]"}
        assert inbox.backlog() == 0

    def test_killed_worker_batch_is_processed_exactly_once_after_the_sweep(self, inbox, alice, settings):
        settings.JIFEN_BATCH_VISIBILITY_S = 0.0
        sent = [payload(alice) for _ in range(4)]
        for item in sent:
            inbox.push(item)
        inbox.push(sent[0])  # the same event delivered again
        half_done = inbox.claim(limit=2)
        services.events_process_batch(payloads=half_done.payloads[:1])  # then the worker "dies"
        assert services.inbox_sweep() == 2
        services.inbox_drain()
        assert UserTaskRecord.objects.count() == 4
        assert ScoreRecord.objects.count() == 4


@pytest.mark.django_db
class TestPoison:
    def test_a_poison_event_is_parked_and_the_rest_flow(self, alice, monkeypatch, caplog):
        real = scoring.evaluate

        def explode(rule, completion, progress, tz):
            if completion.business_id == "poison":
                raise ZeroDivisionError("rule blew up")
            return real(rule, completion, progress, tz)

        monkeypatch.setattr(scoring, "evaluate", explode)
        monkeypatch.setattr(replay, "evaluate", explode)  # a re-score decides through the replay
        batch = [payload(alice, "a"), payload(alice, "poison"), payload(alice, "b")]
        counts = services.events_process_batch(payloads=batch)
        assert counts == {"processed": 2, "parked": 1}
        parked = FailedEvent.objects.get()
        assert str(parked.event_id) == batch[1]["event_id"]
        assert parked.attempts == settings.JIFEN_MAX_ATTEMPTS
        assert "ZeroDivisionError: rule blew up" in parked.error
        assert ScoreRecord.objects.count() == 2
        assert f"event {batch[1]['event_id']} for user {alice.pk} (task post) parked" in caplog.text

    def test_an_unreadable_payload_is_parked_at_once(self, alice):
        counts = services.events_process_batch(payloads=[{"event_id": "x"}, payload(alice)])
        assert counts == {"processed": 1, "parked": 1}
        assert FailedEvent.objects.get().error.startswith("malformed: event_id")

    def test_a_nul_byte_is_parked_and_the_rest_flow(self, alice):
        # Before: the batch's insert failed on NUL, then parking failed too (jsonb refuses it), and the
        # batch stayed claimed for ever, holding back every event behind it (G7).
        poison = {**payload(alice), "business_id": "A\u00001", "location": "\x00"}
        counts = services.events_process_batch(payloads=[payload(alice, "a"), poison, payload(alice, "b")])
        assert counts == {"processed": 2, "parked": 1}
        parked = FailedEvent.objects.get()
        assert str(parked.event_id) == poison["event_id"]
        assert parked.error.startswith("malformed: business_id: holds a control character")
        assert parked.payload["escaped"]["business_id"] == "A\\x001"  # escaped to be storable
        assert "'A\\x001'" in parked.error  # and the repr of what came
        # The escaped copy is not the event: sending it again would record business id "A\x001".
        assert services.failed_event_retry(failed=parked) is False
        assert FailedEvent.objects.get().status == FailedEvent.Status.FAILED

    @pytest.mark.parametrize(
        "hostile",
        [
            {"business_id": "\x00"},
            {"business_id": "\ud800", "\udc00": "key"},
            {"status": float("nan"), "user_id": float("inf")},
            {"user_id": 10**5000},
            {"occurred_at": object(), (1, 2): "tuple key", 3: "int key"},
            {"nested": nested(50_000)},
        ],
    )
    def test_parking_stores_any_payload(self, alice, hostile):
        sent = {**payload(alice), **hostile}
        parked = services.event_park(payload=sent, error="boom \x00 \ud800", attempts=1)
        parked.refresh_from_db()
        assert str(parked.event_id) == sent["event_id"]
        assert parked.error.startswith("boom \\x00 \\ud800")
        assert "as received" in parked.error

    @pytest.mark.parametrize("hostile", ["\x00", ["\ud800"], 1.5, None, [[[[["x"]]]]]])
    def test_parking_stores_what_is_no_object_at_all(self, db, hostile):
        assert services.event_park(payload=hostile, error="malformed", attempts=1).event_id is None
        assert FailedEvent.objects.count() == 1

    def test_any_failure_of_one_event_in_the_worker_is_parked(self, alice, monkeypatch):
        from apps.tracking.tasks import process_event

        def overflow(*, event):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")

        monkeypatch.setattr(services, "event_process", overflow)
        assert process_event(payload(alice)) == "parked"
        assert "OverflowError" in FailedEvent.objects.get().error

    def test_an_operational_error_the_event_causes_is_parked_while_the_database_answers(self, alice, monkeypatch):
        # SQLite reports an integer overflow in SUM() as an OperationalError; raised, the batch would come back for ever.
        real = scoring.evaluate

        def overflow(rule, completion, progress, tz):
            if completion.business_id == "poison":
                raise OperationalError("integer overflow")
            return real(rule, completion, progress, tz)

        monkeypatch.setattr(scoring, "evaluate", overflow)
        monkeypatch.setattr(replay, "evaluate", overflow)  # a re-score decides through the replay
        counts = services.events_process_batch(payloads=[payload(alice, "a"), payload(alice, "poison")])
        assert counts == {"processed": 1, "parked": 1}
        assert "OperationalError: integer overflow" in FailedEvent.objects.get().error

    def test_an_operational_error_with_the_database_gone_is_raised_for_a_later_try(self, alice, monkeypatch):
        def gone(*, event):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(services, "event_process", gone)
        monkeypatch.setattr(services, "_database_answers", lambda: False)
        with pytest.raises(OperationalError):
            services.event_payload_process(payload=payload(alice))
        assert not FailedEvent.objects.exists()

    def test_a_parked_event_can_be_sent_again(self, alice, monkeypatch):
        sent = []

        class Broker:
            def send(self, payloads):
                sent.extend(payloads)

        monkeypatch.setattr(services, "handoff", Broker)
        parked = services.event_park(payload=payload(alice), error="boom", attempts=3)
        services.failed_event_retry(failed=parked)
        assert sent == [parked.payload]
        assert FailedEvent.objects.get().status == FailedEvent.Status.RETRIED


class TestCircuitBreaker:
    def test_opens_on_failure_and_only_its_own_thread_probes_until_the_broker_answers(self):
        answers = [ConnectionError("down"), ConnectionError("still down"), None]
        probed_from = []

        def probe():
            probed_from.append(threading.current_thread())
            answer = answers.pop(0)
            if answer is not None:
                raise answer

        breaker = CircuitBreaker(probe=probe, probe_every_s=0.02)
        assert breaker.allow()
        breaker.failed()
        started = time.perf_counter()
        while breaker.is_open and time.perf_counter() - started < 2:
            assert not breaker.allow()  # never a probe in the caller's thread, however long it waits
            time.sleep(0.005)
        assert breaker.allow()
        assert len(probed_from) == 3 and threading.current_thread() not in probed_from

    def test_a_stopped_breaker_probes_no_more(self):
        probes = []
        breaker = CircuitBreaker(probe=lambda: probes.append(1) or 1 / 0, probe_every_s=0.01)
        breaker.failed()
        time.sleep(0.05)
        breaker.stop()
        time.sleep(0.03)
        count = len(probes)
        time.sleep(0.05)
        assert len(probes) == count and not breaker.allow()


@pytest.fixture
def black_hole():
    """A loopback listener that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def closed_port_url() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.parametrize("broken", ["stopped", "black-holed"])
def test_a_broken_broker_costs_one_timeout_then_nothing(broken, black_hole, settings):
    settings.CELERY_BROKER_URL = closed_port_url() if broken == "stopped" else black_hole
    settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
    settings.JIFEN_BREAKER_OPEN_S = 60
    handoff = Handoff()
    started = time.perf_counter()
    with pytest.raises(HandoffUnavailable):
        handoff.send([{"event_id": str(uuid.uuid4()), "occurred_at": "2026-11-02T12:00:00+08:00"}])
    first = time.perf_counter() - started
    assert first < 0.5
    started = time.perf_counter()
    for _ in range(100):
        with pytest.raises(HandoffUnavailable, match="circuit open"):
            handoff.send([{"event_id": str(uuid.uuid4())}])
    assert (time.perf_counter() - started) / 100 < 0.001


@pytest.mark.parametrize("broken", ["stopped", "black-holed"])
def test_while_the_breaker_is_open_no_call_waits_on_a_probe(broken, black_hole, settings):
    """G2: probes come due every 20 ms and calls arrive every 30 ms; none of them pays the 100 ms timeout."""
    settings.CELERY_BROKER_URL = closed_port_url() if broken == "stopped" else black_hole
    settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
    settings.JIFEN_BREAKER_OPEN_S = 0.02
    handoff = Handoff()
    try:
        with pytest.raises(HandoffUnavailable):
            handoff.send([{"event_id": str(uuid.uuid4()), "occurred_at": "2026-11-02T12:00:00+08:00"}])
        slowest = 0.0
        for _ in range(30):
            time.sleep(0.03)
            started = time.perf_counter()
            with pytest.raises(HandoffUnavailable, match="circuit open"):
                handoff.send([{"event_id": str(uuid.uuid4())}])
            slowest = max(slowest, time.perf_counter() - started)
        assert slowest < 0.01
    finally:
        handoff.close()

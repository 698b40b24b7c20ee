"""Following one event by its id through the JSON logs: hand-off, processing, ledger entries, re-scores."""

import io
import json
import logging
import uuid
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from apps.core.log_context import LogContextFilter, log_context
from apps.core.log_format import JsonFormatter
from apps.ledger.models import ScoreRecord
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.handoff import uses_inbox
from apps.tracking.services.pipeline import events_process_batch
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.tracking.test_api_worker import post, purchase
from tests.workers import WorkerProcess, wait_until

TZ = ZoneInfo("Asia/Shanghai")


@contextmanager
def json_lines(level: int = logging.INFO):
    """Jifen's log lines (`apps.*`) as LOG_FORMAT=json writes them, parsed; `level` as LOG_LEVEL sets it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("apps")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def about(lines: list[dict], event_id) -> list[dict]:
    return [line for line in lines if line.get("event_id") == str(event_id)]


@pytest.fixture
def json_worker(transactional_db):
    process = WorkerProcess(env={"LOG_FORMAT": "json"})
    yield process
    process.stop()


def worker_lines(worker: WorkerProcess) -> list[dict]:
    lines = []
    for text in worker.output:
        if text.startswith("{"):
            lines.append(json.loads(text))
    return lines


@pytest.mark.worker
def test_one_request_is_followed_by_its_event_id_to_its_ledger_entry_through_a_real_worker(client, json_worker):
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", success_json_field="code", success_json_value="0")
    ScoreRuleFactory(task_type="sign-in", score_type="sign-in-daily", points=1, award_limit_per_period=1)
    alice = UserFactory(username="alice")
    client.force_login(alice)

    # The web side's hand-off line is at DEBUG (the request path's budget, docs/production.md#logs).
    with json_lines(logging.DEBUG) as web:
        assert client.post(reverse("checkin")).json()["code"] == 0
    entry = wait_until(lambda: ScoreRecord.objects.filter(user=alice).first(), timeout_s=20)
    assert entry is not None, "no ledger entry within 20 s; worker log:\n" + json_worker.log()
    event_id = UserTaskRecord.objects.get(user=alice).event_id

    [handed] = about(web, event_id)
    assert (handed["level"], handed["source"], handed["user_id"]) == ("DEBUG", "middleware", alice.pk)
    assert handed["task_type"] == "sign-in"
    assert "handed to the broker" in handed["message"]

    def processing() -> list[dict]:
        return [line for line in about(worker_lines(json_worker), event_id) if "processed" in line["message"]]

    processed = wait_until(processing)
    assert processed, "no processing line for the event; worker log:\n" + json_worker.log()
    [line] = processed
    assert (line["level"], line["user_id"], line["task_type"]) == ("INFO", alice.pk, "sign-in")
    assert "sign-in-daily awarded +1" in line["message"]
    assert entry.idempotency_key in line["message"]
    if uses_inbox():  # drained from the Redis inbox in batches, each with its id
        assert line["batch_id"]
        batch = [other for other in worker_lines(json_worker) if other.get("batch_id") == line["batch_id"]]
        assert any("batch of 1 events done: processed 1" in other["message"] for other in batch)
    # Celery's own lines are JSON too.
    assert any(other["logger"].startswith("celery") for other in worker_lines(json_worker))


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=TZ)


def payload(user, when: datetime, event_id=None) -> dict:
    return Event(event_id=event_id or uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=when).to_payload()


@pytest.mark.django_db
def test_a_batch_says_per_event_what_it_earned_and_a_late_event_names_its_re_score(django_capture_on_commit_callbacks):
    TaskConfigFactory(task_type="post")
    rule = ScoreRuleFactory(task_type="post", score_type="post-each", points=5, statistical_period="day")
    alice = UserFactory(username="alice")
    first, second, late = payload(alice, at(2)), payload(alice, at(3)), payload(alice, at(2, 8))
    with json_lines() as lines, django_capture_on_commit_callbacks(execute=True):
        with log_context(batch_id="b-1"):
            events_process_batch(payloads=[first, second])
        events_process_batch(payloads=[first])  # delivered again
        events_process_batch(payloads=[late])  # before `first` on its day: re-scores alice and the rule

    one = about(lines, first["event_id"])
    assert [line["message"].split(") ", 1)[1] for line in one] == [
        f"processed: post-each awarded +5; ledger entries: award:{first['event_id']}:{rule.pk}",
        "already recorded; skipped",
    ]
    assert one[0]["batch_id"] == "b-1" and "batch_id" not in one[1]
    assert ScoreRecord.objects.filter(idempotency_key=f"award:{first['event_id']}:{rule.pk}").exists()
    rescored = [line for line in about(lines, late["event_id"]) if "re-scored" in line["message"]]
    assert [(line["user_id"], line["rule"]) for line in rescored] == [(alice.pk, "post-each")]


@pytest.mark.django_db
def test_a_rolled_back_batch_logs_no_processing(django_capture_on_commit_callbacks):
    TaskConfigFactory(task_type="post")
    ScoreRuleFactory(task_type="post", points=5)
    alice = UserFactory(username="alice")
    event = payload(alice, at(2))
    with json_lines() as lines, django_capture_on_commit_callbacks(execute=False) as callbacks:
        events_process_batch(payloads=[event])
    assert callbacks  # the line waits for the commit
    assert about(lines, event["event_id"]) == []


@pytest.mark.django_db
def test_the_api_logs_each_events_hand_off_with_its_source(client):
    TaskConfigFactory(task_type="purchase", interface_name=r"^/orders/(?P<order>\d+)/pay/$", id_group_name="order")
    UserFactory(username="alice")
    key, secret = service_key_create(name="shop", task_types="purchase")
    with json_lines() as lines:
        assert post(client, key.key_id, secret, {"events": [purchase(1, "alice", "100")]}).status_code == 202
    [line] = about(lines, uuid.UUID(int=1))
    assert (line["level"], line["source"], line["task_type"]) == ("INFO", "api", "purchase")
    assert f"from key {key.key_id} handed to the " in line["message"]

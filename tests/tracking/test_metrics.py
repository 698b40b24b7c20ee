"""The pipeline's counters and histogram move by what happened, once, and not for a batch that rolled back."""

import io
import json
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from apps.ledger.models import ScoreRecord
from apps.tracking import handoff as handoff_module
from apps.tracking.events import Event
from apps.tracking.services import pipeline as services
from apps.tracking.services.pipeline import event_dispatch, event_process, events_process_batch
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.metrics import Reading
from tests.tracking.test_api_events import Service
from tests.tracking.test_pipeline import FakeHandoff

pytestmark = pytest.mark.django_db

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=TZ)


def event(user, task_type="post", when=None, business_id="", accepted_at=None) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        user_id=user.pk,
        task_type=task_type,
        occurred_at=when or at(2),
        business_id=business_id,
        accepted_at=accepted_at,
    )


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def post_rule(db):
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="post-each", points=5)


@pytest.fixture
def broker(monkeypatch):
    fake = FakeHandoff()
    monkeypatch.setattr(services, "handoff", lambda: fake)
    return fake


def committed(django_capture_on_commit_callbacks):
    """Run what the block registers for its commit, as a real commit would (the test's transaction never commits)."""
    return django_capture_on_commit_callbacks(execute=True)


class TestAccepted:
    def test_the_middleware_counts_each_event_handed_off_and_stamps_when(self, alice, broker):
        accepted = Reading("jifen_events_accepted_total", source="middleware")
        before = time.time()
        event_dispatch(event=event(alice))
        assert accepted.moved() == 1
        assert before <= broker.sent[0]["accepted_at"] <= time.time()

    def test_an_event_kept_in_the_outbox_is_accepted_too(self, alice, broker):
        broker.up = False
        accepted = Reading("jifen_events_accepted_total", source="middleware")
        event_dispatch(event=event(alice))
        assert accepted.moved() == 1

    def test_the_api_counts_accepted_events_and_refused_requests_by_code(
        self, client, alice, post_rule, monkeypatch, django_capture_on_commit_callbacks
    ):
        monkeypatch.setattr(handoff_module.Handoff, "_publish", lambda self, batch: None)
        key, secret = service_key_create(name="shop")
        shop = Service(client, key, secret)
        accepted = Reading("jifen_events_accepted_total", source="api")
        invalid = Reading("jifen_events_refused_total", source="api", reason="invalid_events")
        bad_signature = Reading("jifen_events_refused_total", source="api", reason="bad_signature")
        replayed = Reading("jifen_events_refused_total", source="api", reason="replayed")
        body = {"events": [_api_event(1), _api_event(2), _api_event(2)]}
        with committed(django_capture_on_commit_callbacks):
            assert shop.post(body).status_code == 202
        assert accepted.moved() == 2  # the repeated event_id is handed off once

        with committed(django_capture_on_commit_callbacks):
            assert shop.post({"events": [_api_event(3), {**_api_event(4), "user": "nobody"}]}).status_code == 422
            bad = {"X-Jifen-Signature": "0" * 64}
            assert shop.post(_api_event(5), headers=bad).status_code == 401
        assert (invalid.moved(), bad_signature.moved(), replayed.moved(), accepted.moved()) == (1, 1, 0, 2)

    def test_a_replayed_request_counts_refused_and_nothing_accepted(
        self, client, alice, post_rule, monkeypatch, django_capture_on_commit_callbacks
    ):
        monkeypatch.setattr(handoff_module.Handoff, "_publish", lambda self, batch: None)
        key, secret = service_key_create(name="shop")
        shop = Service(client, key, secret)
        stamp = time.time()
        with committed(django_capture_on_commit_callbacks):
            assert shop.post(_api_event(1), timestamp=stamp).status_code == 202
        accepted = Reading("jifen_events_accepted_total", source="api")
        replayed = Reading("jifen_events_refused_total", source="api", reason="replayed")
        with committed(django_capture_on_commit_callbacks):
            assert shop.post(_api_event(1), timestamp=stamp).status_code == 409
        assert (replayed.moved(), accepted.moved()) == (1, 0)

    def test_ingest_counts_lines_accepted_and_refused_by_reason(
        self, tmp_path, alice, post_rule, django_capture_on_commit_callbacks
    ):
        accepted = Reading("jifen_events_accepted_total", source="ingest")
        bad_line = Reading("jifen_events_refused_total", source="ingest", reason="bad_line")
        bad_user = Reading("jifen_events_refused_total", source="ingest", reason="bad_user")
        processed = Reading("jifen_events_processed_total")
        lines = [
            json.dumps(
                {"event_id": str(uuid.uuid4()), "user": "alice", "task_type": "post", "occurred_at": "2026-11-20T09:00:00"}
            ),
            "{not json",
            json.dumps(
                {"event_id": str(uuid.uuid4()), "user": "nobody", "task_type": "post", "occurred_at": "2026-11-20T09:00:00"}
            ),
            json.dumps(
                {"event_id": str(uuid.uuid4()), "user": "alice", "task_type": "retired", "occurred_at": "2026-11-20T09:00:00"}
            ),
        ]
        path = tmp_path / "events.jsonl"
        path.write_text("\n".join(lines) + "\n")
        with committed(django_capture_on_commit_callbacks), pytest.raises(CommandError, match="2 bad line"):
            call_command("ingest_events", str(path), stdout=io.StringIO(), stderr=io.StringIO())
        # The skipped line (a task not in use) is neither.
        assert (accepted.moved(), bad_line.moved(), bad_user.moved(), processed.moved()) == (1, 1, 1, 1)


def _api_event(n: int) -> dict:
    return {"event_id": str(uuid.UUID(int=n)), "user": "alice", "task_type": "post", "occurred_at": "2026-11-20T09:00:00+08:00"}


class TestProcessed:
    def test_a_batch_counts_processed_duplicates_and_each_events_time_to_the_ledger(
        self, alice, post_rule, django_capture_on_commit_callbacks
    ):
        processed, duplicate = Reading("jifen_events_processed_total"), Reading("jifen_events_duplicate_total")
        latency = Reading("jifen_event_to_ledger_seconds_count")
        latency_sum = Reading("jifen_event_to_ledger_seconds_sum")
        within_5s = Reading("jifen_event_to_ledger_seconds_bucket", le="5.0")
        within_2_5s = Reading("jifen_event_to_ledger_seconds_bucket", le="2.5")
        three_s_ago = time.time() - 3
        payloads = [event(alice, when=at(2, hour), accepted_at=three_s_ago).to_payload() for hour in (9, 10)]
        payloads.append(event(alice, when=at(2, 11)).to_payload())  # queued by an older version: no acceptance time
        with committed(django_capture_on_commit_callbacks):
            assert events_process_batch(payloads=payloads) == {"processed": 3}
        assert (processed.moved(), duplicate.moved()) == (3, 0)
        assert (latency.moved(), within_5s.moved(), within_2_5s.moved()) == (2, 2, 0)
        assert 6 <= latency_sum.moved() < 6 + 60

        with committed(django_capture_on_commit_callbacks):
            assert events_process_batch(payloads=payloads[:2]) == {"duplicate": 2}
        assert (processed.moved(), duplicate.moved(), latency.moved()) == (3, 2, 2)

    def test_a_batch_that_rolls_back_counts_nothing_but_what_parks(
        self, alice, post_rule, monkeypatch, django_capture_on_commit_callbacks, settings
    ):
        settings.JIFEN_MAX_ATTEMPTS = 1
        processed, parked = Reading("jifen_events_processed_total"), Reading("jifen_events_parked_total")
        awards = Reading("jifen_awards_total", rule="post-each", point_type=_type_code())
        latency = Reading("jifen_event_to_ledger_seconds_count")
        real = services.scoring_plan_write

        def fails_after_writing(**kwargs):
            real(**kwargs)  # the awards are written, and announced, then the transaction fails
            raise RuntimeError("boom")

        monkeypatch.setattr(services, "scoring_plan_write", fails_after_writing)
        payloads = [event(alice, when=at(2, hour), accepted_at=time.time()).to_payload() for hour in (9, 10)]
        with committed(django_capture_on_commit_callbacks):
            assert events_process_batch(payloads=payloads) == {"parked": 2}
        assert not ScoreRecord.objects.exists()
        assert (processed.moved(), awards.moved(), latency.moved(), parked.moved()) == (0, 0, 0, 2)

    def test_nothing_counts_until_the_callers_transaction_commits(self, alice, post_rule, django_capture_on_commit_callbacks):
        processed = Reading("jifen_events_processed_total")
        with committed(django_capture_on_commit_callbacks), pytest.raises(RuntimeError), transaction.atomic():
            event_process(event=event(alice))
            raise RuntimeError("the caller changed its mind")
        assert processed.moved() == 0


def _type_code() -> str:
    from apps.ledger.models import PointType

    return PointType.objects.get(is_default=True).code


class TestRescoredAndAwards:
    def test_awards_and_a_reversal_count_by_rule_and_type(self, alice, post_rule, django_capture_on_commit_callbacks):
        TaskConfigFactory(task_type="post-delete", reverses="post")
        code = _type_code()
        awards = Reading("jifen_awards_total", rule="post-each", point_type=code)
        points = Reading("jifen_points_awarded_total", rule="post-each", point_type=code)
        reversed_points = Reading("jifen_points_reversed_total", rule="post-each", point_type=code)
        rescored = Reading("jifen_events_rescored_total", cause="reversal")
        with committed(django_capture_on_commit_callbacks):
            event_process(event=event(alice, when=at(2, 9)))
            event_process(event=event(alice, when=at(2, 10)))
        assert (awards.moved(), points.moved(), reversed_points.moved(), rescored.moved()) == (2, 10, 0, 0)
        with committed(django_capture_on_commit_callbacks):
            event_process(event=event(alice, task_type="post-delete", when=at(2, 11)))
        assert (awards.moved(), points.moved(), reversed_points.moved(), rescored.moved()) == (2, 10, 5, 1)

    def test_a_late_completion_counts_one_rescore(self, alice, django_capture_on_commit_callbacks):
        TaskConfigFactory(task_type="post")
        ScoreRuleFactory(task_type="post", score_type="every-second", points=3, required_number_of_times=2)
        late = Reading("jifen_events_rescored_total", cause="late")
        with committed(django_capture_on_commit_callbacks):
            event_process(event=event(alice, when=at(2, 12)))
            event_process(event=event(alice, when=at(2, 13)))
        assert late.moved() == 0
        with committed(django_capture_on_commit_callbacks):
            event_process(event=event(alice, when=at(2, 9)))
        assert late.moved() == 1

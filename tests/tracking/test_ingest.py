"""`manage.py ingest_events` (SPEC §2): JSON Lines through the same pipeline as the middleware."""

import io
import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.ledger.models import Account, ScoreRecord
from apps.tasks.models import TaskConfig, UserTaskRecord
from apps.tracking.services import pipeline as services
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


def line(n: int, **fields) -> str:
    return json.dumps({"event_id": str(uuid.UUID(int=n)), "user": "alice", "occurred_at": "2026-11-20T09:00:00", **fields})


def ingest(tmp_path, lines: list[str], *extra: str) -> tuple[str, str]:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest_events", str(path), *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def site():
    UserFactory(username="alice")
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$")
    TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<post_id>\d+)/share/$", id_group_name="post_id")
    TaskConfigFactory(task_type="old", interface_name=r"^/old/$", status=TaskConfig.Status.DEPRECATED)
    ScoreRuleFactory(task_type="sign-in", score_type="daily", points=1, award_limit_per_period=1)
    ScoreRuleFactory(task_type="share", score_type="share", points=3)


def test_events_are_processed_in_order_and_again_change_nothing(tmp_path, site):
    lines = [
        line(1, task_type="sign-in"),
        line(2, task_type="sign-in", occurred_at="2026-11-21T09:00:00"),
        line(3, method="post", path="/posts/7/share/"),
    ]
    out, _ = ingest(tmp_path, lines)
    assert "processed 3" in out
    assert Account.objects.get().balance == 5
    assert UserTaskRecord.objects.get(task__task_type="share").business_id == "7"
    out, _ = ingest(tmp_path, lines)
    assert "duplicate 3" in out
    assert ScoreRecord.objects.count() == 3


def test_naive_times_are_local(tmp_path, site, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    ingest(tmp_path, [line(1, task_type="sign-in", occurred_at="2026-11-20T00:30:00")])
    assert UserTaskRecord.objects.get().occurred_at == datetime(2026, 11, 20, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_not_completions_are_skipped_not_bad(tmp_path, site):
    out, _ = ingest(
        tmp_path,
        [
            line(1, task_type="old"),
            line(2, task_type="never-heard-of"),
            line(3, method="GET", path="/posts/7/share/"),
            line(4, method="POST", path="/posts/7/share/", status=500),
        ],
    )
    assert "line 1: skipped: task 'old' is not in use" in out
    assert "line 2: skipped: task 'never-heard-of' is unknown" in out
    assert "line 3: skipped: GET /posts/7/share/ routes to no task in use" in out
    assert "line 4: skipped: status 500 is not a success for task 'share'" in out
    assert "skipped 4" in out
    assert not UserTaskRecord.objects.exists()


def test_bad_lines_are_named_skipped_and_fail_the_command(tmp_path, site):
    lines = [
        line(1, task_type="sign-in"),
        "{not json",
        line(3, user="mallory", task_type="sign-in"),
        line(4, occurred_at="yesterday", task_type="sign-in"),
        json.dumps({"user": "alice", "occurred_at": "2026-11-20T09:00:00", "task_type": "sign-in"}),
        line(6),
        line(7, method="POST", path="/checkin/", status="ok"),
        "[1, 2]",
    ]
    with pytest.raises(CommandError, match="7 bad line"):
        ingest(tmp_path, lines)
    assert ScoreRecord.objects.count() == 1  # the good line still went through


def test_bad_lines_messages(tmp_path, site):
    err = io.StringIO()
    path = tmp_path / "e.jsonl"
    path.write_text("{not json\n" + line(2, user="mallory", task_type="sign-in") + "\n", encoding="utf-8")
    with pytest.raises(CommandError):
        call_command("ingest_events", str(path), stdout=io.StringIO(), stderr=err)
    assert "line 1: not valid JSON" in err.getvalue()
    assert "line 2: user: no user named 'mallory'" in err.getvalue()


def test_async_enqueues_through_the_broker(tmp_path, site, monkeypatch):
    sent = []

    class Broker:
        def send(self, payloads):
            sent.extend(payloads)

    monkeypatch.setattr(services, "handoff", Broker)
    out, _ = ingest(tmp_path, [line(1, task_type="sign-in")], "--async")
    assert "enqueued 1" in out
    assert sent[0]["task_type"] == "sign-in"
    assert not UserTaskRecord.objects.exists()


def test_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("ingest_events", str(tmp_path / "nope.jsonl"))


def test_every_odd_line_is_reported_with_its_number_and_the_rest_goes_on(tmp_path, site):
    future = (datetime.now(ZoneInfo("UTC")) + timedelta(hours=1)).isoformat()
    lines = [
        line(1, task_type="share", business_id="7\u0000"),  # json.dumps writes \u0000, as a producer would
        line(2, task_type="sign-in", occurred_at="0001-01-01T00:00:00+08:00"),
        line(3, task_type="sign-in", occurred_at="9999-12-31T23:59:59-08:00"),
        line(4, task_type="share", business_id="\ud800"),
        '{"event_id": ' + "[" * 100_000 + "]" * 100_000 + "}",
        line(6, method="POST", path=f"/posts/{'1' * 300}/share/"),
        line(7, task_type="sign-in", location="\x07"),
        '{"event_id": 1' + "0" * 5000 + "}",
        line(9, task_type="sign-in", occurred_at=future),
        line(10, task_type="sign-in", user="al\u0000ice"),
    ]
    path = tmp_path / "events.jsonl"
    raw = "\n".join(lines).encode() + b'\n{"event_id": "\xff\xfe"}\n' + line(12, task_type="sign-in").encode() + b"\n"
    path.write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="11 bad line"):
        call_command("ingest_events", str(path), stdout=out, stderr=err)
    reported = err.getvalue()
    expected = {
        1: "business_id: holds a control character ('\\x00')",
        2: "occurred_at: the year must be between 1900 and 2200, not 1",
        3: "occurred_at: the year must be between 1900 and 2200, not 9999",
        4: "business_id: holds a lone surrogate",
        5: "nested too deep",
        6: "business_id: longer than 255 characters",
        7: "location: holds a control character",
        8: "not valid JSON",
        9: "occurred_at: later than the server's clock",
        10: "user: holds a control character",
        11: "not UTF-8",
    }
    by_line = dict(entry.removeprefix("line ").split(": ", 1) for entry in reported.splitlines() if entry.startswith("line "))
    assert {int(number): message for number, message in by_line.items()}.keys() == expected.keys(), reported
    for number, message in expected.items():
        assert message in by_line[str(number)], (number, by_line[str(number)])
    assert "Traceback" not in reported
    assert UserTaskRecord.objects.get().event_id == uuid.UUID(int=12)
    assert Account.objects.get().balance == 1


def test_a_line_that_fails_in_the_pipeline_is_reported_and_the_rest_goes_on(tmp_path, site, monkeypatch):
    real = services.event_process

    def overflow_on_share(*, event):
        if event.task_type == "share":
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return real(event=event)

    monkeypatch.setattr("apps.tracking.ingest.event_process", overflow_on_share)
    path = tmp_path / "events.jsonl"
    path.write_text(line(1, task_type="share", business_id="7") + "\n" + line(2, task_type="sign-in") + "\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 bad line"):
        call_command("ingest_events", str(path), stdout=io.StringIO(), stderr=err)
    assert "line 1: not processed: OverflowError" in err.getvalue()
    assert UserTaskRecord.objects.get().event_id == uuid.UUID(int=2)

"""The JSON log lines (LOG_FORMAT=json) and the fields a block of code sets on them."""

import io
import json
import logging
import subprocess
import sys
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core.log_context import LogContextFilter, log_context, log_fields
from apps.core.log_format import JsonFormatter
from config.env import env_choice
from tests.test_settings import PRODUCTION_ENV, ROOT, manage


@pytest.fixture
def capture():
    """A logger writing JSON lines into a buffer, as the console handler does with LOG_FORMAT=json."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("apps.tests.log_format")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    def lines() -> list[str]:
        return stream.getvalue().splitlines()

    yield logger, lines
    logger.removeHandler(handler)


def test_a_record_is_one_line_of_json_with_its_fields(capture):
    logger, lines = capture
    logger.warning("user %s: %d points", "alice", 5)
    [line] = lines()
    record = json.loads(line)
    assert set(record) == {"time", "level", "logger", "message", "process"}
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "apps.tests.log_format", "user alice: 5 points")
    assert record["time"].endswith("Z") and record["time"][10] == "T"  # ISO 8601, UTC
    assert record["process"] > 0


def test_newlines_and_non_ascii_text_stay_on_one_readable_line(capture):
    logger, lines = capture
    logger.info("签到\n积分 +5\r\nend")
    [line] = lines()
    assert "签到" in line and "\\u" not in line  # readable UTF-8, not escapes
    assert json.loads(line)["message"] == "签到\n积分 +5\r\nend"


def test_an_exception_is_written_as_text_within_the_line(capture):
    logger, lines = capture
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("it failed")
    [line] = lines()
    record = json.loads(line)
    assert record["message"] == "it failed"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad\nvalue" in record["exception"]


def test_context_fields_nest_and_end_with_their_block(capture):
    logger, lines = capture
    event_id = uuid.uuid4()
    with log_context(batch_id="b1", source="api"):
        with log_context(event_id=event_id, user_id=7, task_type="sign-in", source="ingest", rule=None):
            logger.info("inner")
            assert dict(log_fields()) == {
                "batch_id": "b1",
                "source": "ingest",
                "event_id": event_id,
                "user_id": 7,
                "task_type": "sign-in",
            }
        logger.info("outer")
        logger.info("own", extra={"rule": "daily", "source": "middleware"})  # a call's extra wins
    logger.info("none")
    inner, outer, own, none = (json.loads(line) for line in lines())
    assert inner | {"time": 0, "process": 0} == {
        "time": 0,
        "process": 0,
        "level": "INFO",
        "logger": "apps.tests.log_format",
        "message": "inner",
        "event_id": str(event_id),
        "user_id": 7,
        "task_type": "sign-in",
        "batch_id": "b1",
        "source": "ingest",
    }
    assert (outer["source"], outer["batch_id"], "event_id" in outer) == ("api", "b1", False)
    assert (own["rule"], own["source"], own["batch_id"]) == ("daily", "middleware", "b1")
    assert not set(none) & {"event_id", "batch_id", "source", "rule"}


def test_a_field_outside_the_fixed_set_is_refused():
    with pytest.raises(TypeError, match="unknown log field"):
        log_context(request_id="x")


def test_log_format_is_text_or_json_and_anything_else_stops_start_up(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert env_choice("LOG_FORMAT", "text", choices=("text", "json")) == "text"
    monkeypatch.setenv("LOG_FORMAT", " JSON ")
    assert env_choice("LOG_FORMAT", "text", choices=("text", "json")) == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT='xml' is not one of: text, json"):
        env_choice("LOG_FORMAT", "text", choices=("text", "json"))

    result = manage("check", env={**PRODUCTION_ENV, "LOG_FORMAT": "yaml"})
    assert result.returncode != 0
    assert "LOG_FORMAT='yaml' is not one of: text, json" in result.stderr


def test_with_json_djangos_own_lines_are_json_too():
    code = (
        "import logging, django; django.setup(); "
        "logging.getLogger('django.request').warning('Not Found: /x'); "
        "logging.getLogger('apps.tracking').info('积分'); logging.getLogger('celery').warning('from celery')"
    )
    env = {"PATH": "/usr/bin:/bin", **PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_FORMAT": "json"}
    env["JIFEN_VAR_DIR"] = str(ROOT / "var" / "test" / "settings-check")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(r["logger"], r["message"]) for r in records] == [
        ("django.request", "Not Found: /x"),
        ("apps.tracking", "积分"),
        ("celery", "from celery"),
    ]

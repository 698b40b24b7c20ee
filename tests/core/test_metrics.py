"""apps/core/metrics.py: the names issue 17 fixed, created once, and counting that cannot fail a commit."""

import math
import uuid
from datetime import UTC, datetime

import pytest
from django.db import transaction
from prometheus_client import REGISTRY

from apps.core import metrics
from apps.tracking.events import Event, accepted_at_read
from tests.metrics import Reading

# The names and labels every helper of issue 17 uses (the scrape-time gauges are /metrics' own).
WANTED = {
    "jifen_events_accepted": ("counter", ("source",)),
    "jifen_events_refused": ("counter", ("source", "reason")),
    "jifen_events_processed": ("counter", ()),
    "jifen_events_duplicate": ("counter", ()),
    "jifen_events_rescored": ("counter", ("cause",)),
    "jifen_events_parked": ("counter", ()),
    "jifen_event_to_ledger_seconds": ("histogram", ()),
    "jifen_awards": ("counter", ("rule", "point_type")),
    "jifen_points_awarded": ("counter", ("rule", "point_type")),
    "jifen_points_reversed": ("counter", ("rule", "point_type")),
    "jifen_redemptions": ("counter", ("outcome",)),
    "jifen_holds": ("counter", ("outcome",)),
    "jifen_expiry_runs": ("counter", ()),
    "jifen_points_expired": ("counter", ("point_type",)),
    "jifen_webhook_deliveries": ("counter", ("outcome",)),
}


def test_every_metric_of_the_list_with_its_labels_and_no_other():
    defined = {
        value._name: (value._type, tuple(value._labelnames))
        for value in vars(metrics).values()
        if hasattr(value, "_type") and hasattr(value, "_labelnames") and value._name.startswith("jifen_")
    }
    assert defined == WANTED
    for metric in REGISTRY.collect():  # in the default registry, documented
        if metric.name in WANTED:
            assert metric.documentation


def test_the_histograms_buckets_run_from_50_ms_to_ten_minutes():
    assert metrics.EVENT_TO_LEDGER_BUCKETS_S[0] == 0.05 and metrics.EVENT_TO_LEDGER_BUCKETS_S[-1] == 600
    assert list(metrics.EVENT_TO_LEDGER_BUCKETS_S) == sorted(metrics.EVENT_TO_LEDGER_BUCKETS_S)


@pytest.mark.django_db
def test_after_commit_waits_for_the_commit_and_a_failing_count_does_not_fail_it(django_capture_on_commit_callbacks, caplog):
    runs = Reading("jifen_expiry_runs_total")

    def broken() -> None:
        raise ValueError("a counter asked to go down")

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            metrics.after_commit(metrics.EXPIRY_RUNS.inc)
            metrics.after_commit(broken)
            assert runs.moved() == 0
        with pytest.raises(RuntimeError), transaction.atomic():
            metrics.after_commit(metrics.EXPIRY_RUNS.inc)
            raise RuntimeError("rolled back")
    assert runs.moved() == 1
    assert "a counter asked to go down" in caplog.text


class TestAcceptedAt:
    def test_it_travels_in_the_payload_and_is_no_part_of_the_events_identity(self):
        event = Event(event_id=uuid.uuid4(), user_id=3, task_type="post", occurred_at=datetime(2026, 11, 2, tzinfo=UTC))
        assert "accepted_at" not in event.to_payload()
        stamped = Event.from_payload({**event.to_payload(), "accepted_at": 1_790_000_000.25})
        assert stamped.accepted_at == 1_790_000_000.25
        assert stamped == event
        assert stamped.to_payload()["accepted_at"] == 1_790_000_000.25

    @pytest.mark.parametrize("raw", [None, "1790000000", True, -5, 0, math.nan, math.inf, [1]])
    def test_a_missing_or_senseless_one_is_none_never_a_refusal(self, raw):
        assert accepted_at_read(raw) is None

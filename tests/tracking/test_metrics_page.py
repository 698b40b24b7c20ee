"""GET /metrics: the Prometheus text format of this host's processes and the pipeline's shared state, for the monitoring only."""

import json
import re
import socket
import subprocess
import sys
import textwrap
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.tracking.handoff import handoff, uses_inbox
from apps.tracking.models import FailedEvent, Heartbeat, OutboxEvent
from config.prometheus import empty_metrics_dir, start_worker_exporter
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-the-tests-0123456789"

# The metric names of issue 17 (helper_common17.md) and django-prometheus's that the dashboard uses.
COUNTERS = {
    "jifen_events_accepted_total",
    "jifen_events_refused_total",
    "jifen_events_processed_total",
    "jifen_events_duplicate_total",
    "jifen_events_rescored_total",
    "jifen_events_parked_total",
    "jifen_awards_total",
    "jifen_points_awarded_total",
    "jifen_points_reversed_total",
    "jifen_redemptions_total",
    "jifen_holds_total",
    "jifen_expiry_runs_total",
    "jifen_points_expired_total",
    "jifen_webhook_deliveries_total",
}
HISTOGRAMS = {"jifen_event_to_ledger_seconds", "django_http_requests_latency_seconds_by_view_method"}
GAUGES = {
    "jifen_inbox_backlog",
    "jifen_outbox_backlog",
    "jifen_oldest_waiting_event_age_seconds",
    "jifen_parked_events",
    "jifen_webhook_deliveries_waiting",
    "jifen_webhook_endpoints_disabled",
    "jifen_worker_heartbeat_age_seconds",
    "jifen_broker_up",
    "jifen_database_up",
}
DJANGO = {
    "django_http_requests_total_by_method_total",
    "django_http_responses_total_by_status_view_method_total",
    "django_db_execute_total",
    "django_db_errors_total",
}
KNOWN = COUNTERS | GAUGES | DJANGO | {f"{name}_{part}" for name in HISTOGRAMS for part in ("bucket", "sum", "count")}


def scrape(client, **headers) -> dict:
    """{sample name: [(labels, value)]} of an allowed GET /metrics, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", headers=headers or {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict, name: str, **labels) -> float:
    found = [v for sample_labels, v in samples.get(name, []) if labels.items() <= sample_labels.items()]
    assert found, f"{name}{labels} not on the page: {sorted(samples)}"
    return sum(found)


@pytest.fixture(autouse=True)
def token(settings):
    settings.JIFEN_HEALTH_TOKEN = TOKEN
    settings.JIFEN_MONITORING_NETWORKS = []


class TestWhoMayScrape:
    def test_anyone_else_is_refused(self, client):
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all-000000"}).status_code == 403
        client.force_login(UserFactory(username="member"))
        assert client.get("/metrics").status_code == 403

    def test_the_token_as_bearer_or_in_the_health_header(self, client):
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert client.get("/metrics", headers={"X-Jifen-Health-Token": TOKEN}).status_code == 200

    def test_no_token_configured_lets_no_empty_bearer_through(self, client, settings):
        settings.JIFEN_HEALTH_TOKEN = ""
        assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403

    def test_staff(self, client):
        client.force_login(UserFactory(username="op", is_staff=True))
        assert client.get("/metrics").status_code == 200

    def test_an_allowed_network(self, client, settings):
        settings.JIFEN_MONITORING_NETWORKS = ["10.1.0.0/16", "::1/128"]
        assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403

    def test_the_forwarded_address_counts_only_behind_a_trusted_proxy(self, client, settings):
        settings.JIFEN_MONITORING_NETWORKS = ["10.1.0.0/16"]
        forwarded = {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "10.1.2.3"}
        assert client.get("/metrics", **forwarded).status_code == 403
        settings.JIFEN_TRUST_X_FORWARDED_FOR = True
        assert client.get("/metrics", **forwarded).status_code == 200

    def test_an_allowed_network_sees_healthz_details_too(self, client, settings):
        settings.JIFEN_MONITORING_NETWORKS = ["10.1.0.0/16"]
        assert "database" in client.get("/healthz", REMOTE_ADDR="10.1.2.3").json()
        assert "database" not in client.get("/healthz", REMOTE_ADDR="10.2.0.1").json()


def test_the_page_parses_and_holds_the_request_and_database_metrics(client):
    client.get("/healthz")
    samples = scrape(client)
    assert value(samples, "django_http_responses_total_by_status_view_method_total", view="healthz") >= 1
    assert value(samples, "django_http_requests_latency_seconds_by_view_method_count", view="healthz") >= 1
    assert value(samples, "django_db_execute_total") >= 1
    assert {"jifen_outbox_backlog", "jifen_parked_events", "jifen_database_up"} <= set(samples)


def test_the_database_backend_is_the_instrumented_one_of_the_same_vendor():
    from django.db import connection, connections

    assert connections["default"].__class__.__module__.startswith("django_prometheus.db.backends.")
    assert connection.vendor in ("postgresql", "sqlite")
    assert connection.vendor in settings.DATABASES["default"]["ENGINE"].replace("sqlite3", "sqlite")


def test_the_gauges_follow_the_outbox_the_parked_events_and_the_heartbeat(client):
    # Tests before this one with a real worker may have left a heartbeat, and events in this run's
    # Redis inbox (which the oldest-event age reads too): start from none of either.
    Heartbeat.objects.all().delete()
    if uses_inbox():
        inbox = handoff().inbox
        for key in (inbox.key, inbox.wake_key, inbox.queue):
            inbox.client.delete(key)
    before = scrape(client)
    assert value(before, "jifen_outbox_backlog") == 0
    assert value(before, "jifen_oldest_waiting_event_age_seconds") == 0
    assert value(before, "jifen_worker_heartbeat_age_seconds") == float("inf")

    row = OutboxEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000001", payload={})
    OutboxEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000002", payload={})
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    FailedEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000003", payload={}, error="boom")
    Heartbeat.objects.create(name="worker", seen_at=timezone.now() - timedelta(seconds=30))

    after = scrape(client)
    assert value(after, "jifen_outbox_backlog") == 2
    assert value(after, "jifen_oldest_waiting_event_age_seconds") >= 180
    assert value(after, "jifen_parked_events") == 1
    assert 30 <= value(after, "jifen_worker_heartbeat_age_seconds") < 60
    assert value(after, "jifen_webhook_deliveries_waiting") == 0
    assert value(after, "jifen_webhook_endpoints_disabled") == 0


@pytest.mark.redis
def test_the_inbox_backlog_counts_events_waiting_in_redis(client):
    inbox = handoff().inbox
    inbox.client.delete(inbox.key)
    try:
        assert value(scrape(client), "jifen_inbox_backlog") == 0
        user = UserFactory(username="alice")
        for n in range(3):
            inbox.push({"event_id": f"7f0c4a52-1a43-4b0e-9a57-00000000001{n}", "user_id": user.pk, "occurred_at": ""})
        samples = scrape(client)
        assert value(samples, "jifen_inbox_backlog") == 3
        assert value(samples, "jifen_broker_up") == 1
    finally:
        for key in (inbox.key, inbox.wake_key, inbox.queue):
            inbox.client.delete(key)


def test_a_broker_outage_leaves_the_backlog_gauges_on_the_page(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
    OutboxEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000001", payload={})
    samples = scrape(client)
    assert value(samples, "jifen_broker_up") == 0
    assert "jifen_inbox_backlog" not in samples  # unknown, not 0
    assert value(samples, "jifen_outbox_backlog") == 1
    assert value(samples, "jifen_database_up") == 1


def test_a_counter_of_another_process_on_this_host_is_on_the_page(client):
    """Multiprocess mode: a process that counted and exited (as a Celery pool process does) still counts."""
    child = textwrap.dedent(
        """
        import os, sys
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
        from prometheus_client import Counter
        Counter("jifen_test_other_process", "A counter of another process.", ["source"]).labels("child").inc(3)
        """
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", child, str(settings.JIFEN_METRICS_DIR)], check=True, timeout=60)
    assert value(scrape(client), "jifen_test_other_process_total", source="child") == 6


def test_a_worker_host_serves_its_processes_metrics_on_its_own_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_worker_exporter(port, address="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310 - a local test server
            names = {family.name for family in text_string_to_metric_families(response.read().decode())}
    finally:
        server.shutdown()
    assert "django_db_execute" in names  # the host's processes' counters (this one's database queries)
    assert "jifen_outbox_backlog" not in names  # the cluster-wide gauges are the web's /metrics alone


def test_emptying_the_directory_removes_prometheus_files_only(tmp_path):
    for name in ("counter_12.db", "histogram_345.db", "gauge_livesum_6.db", "jifen.sqlite3", "other.db"):
        (tmp_path / name).write_text("x")
    empty_metrics_dir(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["jifen.sqlite3", "other.db"]


# --- The dashboard and the alert rules a user loads (docs/monitoring/) -----------------------

_NAME = re.compile(r"\b((?:jifen|django)_[a-z_]+)\b")


def test_the_alert_rules_parse_and_use_only_metrics_that_exist():
    rules = yaml.safe_load((ROOT / "docs" / "monitoring" / "alerts.yml").read_text(encoding="utf-8"))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"JifenBacklogGrowing", "JifenOldestEventOverAMinute", "JifenEventsParked", "JifenWebhookEndpointDisabled"} <= {
        rule["alert"] for rule in alerts
    }
    for rule in alerts:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        unknown = set(_NAME.findall(rule["expr"])) - KNOWN
        assert not unknown, f"{rule['alert']} uses {unknown}"


def test_the_dashboard_is_grafana_json_using_only_metrics_that_exist():
    dashboard = json.loads((ROOT / "docs" / "monitoring" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 8
    used = {name for expr in exprs for name in _NAME.findall(expr)}
    assert not used - KNOWN, used - KNOWN
    assert {"jifen_inbox_backlog", "jifen_outbox_backlog", "jifen_event_to_ledger_seconds_bucket"} <= used

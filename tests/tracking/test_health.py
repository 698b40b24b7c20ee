"""GET /healthz: 200 with every check when healthy, 503 naming what is not."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tracking.models import Heartbeat, OutboxEvent

pytestmark = pytest.mark.django_db


def test_healthy(client):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["database"], body["broker"], body["outbox_backlog"]) == ("ok", "ok", 0)
    assert body["worker_heartbeat_age_s"] < 5


def test_no_worker_heartbeat_is_unhealthy(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["worker_heartbeat_age_s"]


def test_an_old_outbox_backlog_is_unhealthy(client, settings):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    row = OutboxEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000001", payload={})
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    body = client.get("/healthz").json()
    assert body["outbox_backlog"] == 1
    assert body["oldest_unprocessed_age_s"] >= 600
    assert "oldest_unprocessed_age_s" in body["problems"]


def test_broker_down_is_unhealthy(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["broker"]

"""GET /healthz: 200 when healthy, 503 naming what is not; the checks' values for staff or a token only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tracking.models import Heartbeat, OutboxEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKEN = "health-token-for-the-tests-0123456789"


@pytest.fixture
def monitor(client, settings):
    """A caller allowed to see the checks' values: the monitoring, with the token."""
    settings.JIFEN_HEALTH_TOKEN = TOKEN
    client.defaults["HTTP_X_JIFEN_HEALTH_TOKEN"] = TOKEN
    return client


def test_healthy(monitor):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    response = monitor.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert (body["database"], body["broker"], body["outbox_backlog"]) == ("ok", "ok", 0)
    assert body["worker_heartbeat_age_s"] < 5


def test_no_worker_heartbeat_is_unhealthy(monitor):
    response = monitor.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["worker_heartbeat_age_s"]


def test_an_old_outbox_backlog_is_unhealthy(monitor, settings):
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    row = OutboxEvent.objects.create(event_id="7f0c4a52-1a43-4b0e-9a57-000000000001", payload={})
    OutboxEvent.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    body = monitor.get("/healthz").json()
    assert body["outbox_backlog"] == 1
    assert body["oldest_unprocessed_age_s"] >= 600
    assert "oldest_unprocessed_age_s" in body["problems"]


def test_broker_down_is_unhealthy(monitor, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    response = monitor.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["broker"]


class TestWhoSeesWhat:
    """The checks' values carry error text (host names, ports, user names): staff or the token only."""

    @pytest.fixture(autouse=True)
    def broker_down(self, settings):
        settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
        settings.JIFEN_HANDOFF_TIMEOUT_S = 0.1
        settings.JIFEN_HEALTH_TOKEN = TOKEN
        Heartbeat.objects.create(name="worker", seen_at=timezone.now())

    def test_anyone_gets_the_status_and_the_checks_names_only(self, client):
        response = client.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body == {"status": "unhealthy", "problems": ["broker"], "checks": body["checks"]}
        assert {"database", "broker", "outbox_backlog", "worker_heartbeat_age_s"} <= set(body["checks"])
        assert "127.0.0.1" not in response.content.decode() and "rror" not in response.content.decode()

    @pytest.mark.parametrize("offered", ["", "wrong-token-of-the-same-length-0123", TOKEN[:-1]])
    def test_a_wrong_token_or_a_signed_in_member_gets_no_more(self, client, offered):
        client.force_login(UserFactory(username="member"))
        body = client.get("/healthz", headers={"X-Jifen-Health-Token": offered}).json()
        assert "broker" not in body and body["problems"] == ["broker"]

    def test_no_token_configured_lets_no_empty_header_through(self, client, settings):
        settings.JIFEN_HEALTH_TOKEN = ""
        assert "broker" not in client.get("/healthz", headers={"X-Jifen-Health-Token": ""}).json()

    def test_the_token_shows_the_error_text(self, client):
        body = client.get("/healthz", headers={"X-Jifen-Health-Token": TOKEN}).json()
        assert body["broker"].startswith("error: ") and body["database"] == "ok"

    def test_staff_see_the_error_text(self, client):
        client.force_login(UserFactory(username="op", is_staff=True))
        assert client.get("/healthz").json()["broker"].startswith("error: ")

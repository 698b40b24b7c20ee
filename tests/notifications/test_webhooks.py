"""Sending webhooks (SPEC §12, G15): signed per Standard Webhooks, retried until a real receiver takes them.

The receiver is a real HTTP server on loopback, in a thread of the test process: first not there
at all (its port closed), then too slow to answer within the timeout, then answering 500, then
healthy. The backoff is compressed to nothing and the sender run by hand, so the whole outage
takes a second or two; a day of failing is a day-old `failing_since`, not a day of sleeping.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from apps.notifications import events
from apps.notifications.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from apps.notifications.services import deliveries
from apps.notifications.services.announce import Announcement, announce, message_id
from apps.notifications.services.deliveries import (
    webhook_deliveries_prune,
    webhook_deliveries_send,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_send_test,
    webhook_sign,
)
from tests.conftest import IN_CI
from tests.factories import UserFactory

try:
    import standardwebhooks
except ImportError:  # pragma: no cover - the tests section of requirements.txt installs it
    standardwebhooks = None

pytestmark = pytest.mark.django_db

TIMEOUT_S = 0.4
needs_library = pytest.mark.skipif(
    standardwebhooks is None and not IN_CI, reason="needs the standardwebhooks package: pip install -r requirements.txt"
)


# --- A receiver on loopback ------------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every request it got and answers as `mode` says.

    Modes: "ok" (204), "slow" (sleeps past the sender's timeout, then 200), "error" (500).
    Before `start()` and after `stop()` its port is closed: a connection is refused.
    """

    def __init__(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.mode = "ok"
        self.got: list[dict] = []  # {"headers", "body", "answered"}
        self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/jifen"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                mode = receiver.mode
                answer = {"ok": 204, "slow": 200, "error": 500}[mode]
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.got.append({"headers": headers, "body": body, "answered": answer})
                if mode == "slow":
                    time.sleep(TIMEOUT_S * 3)
                try:
                    self.send_response(answer)
                    self.send_header("content-type", "text/plain")
                    self.end_headers()
                    if answer != 204:
                        self.wfile.write(b"receiver says " + mode.encode() + b"x" * 1000)
                except OSError:
                    pass  # the sender gave up waiting and closed the connection

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def arrived(self) -> dict[str, list[dict]]:
        """The requests it answered with 2xx, by webhook-id."""
        by_id: dict[str, list[dict]] = {}
        for request in self.got:
            if 200 <= request["answered"] < 300:
                by_id.setdefault(request["headers"]["webhook-id"], []).append(request)
        return by_id


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def fast(settings):
    """Retries due at once, a short timeout, loopback allowed."""
    settings.JIFEN_WEBHOOK_BACKOFF_S = [0.0]
    settings.JIFEN_WEBHOOK_TIMEOUT_S = TIMEOUT_S
    settings.JIFEN_WEBHOOK_ALLOW_PRIVATE = True
    settings.JIFEN_WEBHOOK_ENDPOINTS_REFRESH_S = 0
    return settings


def endpoint_for(receiver, *types) -> WebhookEndpoint:
    types = types or (events.POINTS_AWARDED, events.LEVEL_REACHED, events.BADGE_EARNED)
    return webhook_endpoint_create(name="crm", url=receiver.url, event_types=types)[0]


def announce_some(user, count=5) -> list[str]:
    """`count` awards and a level reached, announced as a worker does: in one transaction. Returns their keys."""
    items = [
        Announcement(
            type=events.POINTS_AWARDED,
            user_id=user.pk,
            key=f"award:{n}:{uuid.uuid4()}",
            data={"entry_id": n, "user_id": user.pk, "point_type": "default", "amount": 5, "balance": 5 * (n + 1)},
        )
        for n in range(count)
    ]
    items.append(
        Announcement(
            type=events.LEVEL_REACHED,
            user_id=user.pk,
            key=f"level:{uuid.uuid4()}",
            data={"user_id": user.pk, "point_type": "default", "level": "Silver", "level_id": 2, "threshold": 20, "earned": 25},
        )
    )
    with transaction.atomic():
        announce(items)
    return [item.key for item in items]


def verify_by_hand(secret: str, headers: dict, body: str) -> bool:
    """The receiver's check as docs/api.md shows it, written independently of the sender's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = [sig.split(",", 1)[1] for sig in headers["webhook-signature"].split() if sig.startswith("v1,")]
    return any(hmac.compare_digest(expected, sig) for sig in signatures)


# --- Signing -------------------------------------------------------------------------------


class TestSigning:
    # The example of the Standard Webhooks specification (and of its libraries' tests).
    SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    TIMESTAMP = 1614265330
    BODY = '{"test": 2432232314}'
    EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    def test_the_specifications_example(self):
        signature = webhook_sign(secret=self.SECRET, message_id=self.MSG_ID, timestamp=self.TIMESTAMP, body=self.BODY)
        assert signature == self.EXPECTED

    def test_a_hand_written_verifier_agrees_and_a_changed_body_fails(self):
        headers = deliveries.webhook_headers(secret=self.SECRET, message_id=self.MSG_ID, body=self.BODY, timestamp=self.TIMESTAMP)
        assert verify_by_hand(self.SECRET, headers, self.BODY)
        assert not verify_by_hand(self.SECRET, headers, self.BODY.replace("2", "3"))
        assert headers["content-type"] == "application/json" and "Jifen" in headers["user-agent"]

    @needs_library
    def test_the_standardwebhooks_library_verifies_what_we_sign(self):
        secret = WebhookEndpoint().secret  # a freshly made one
        body = '{"type":"points.awarded","timestamp":"2026-11-02T04:00:00Z","data":{"amount":5}}'
        headers = deliveries.webhook_headers(secret=secret, message_id="msg_1", body=body, timestamp=int(time.time()))
        assert standardwebhooks.Webhook(secret).verify(body, headers) == json.loads(body)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(secret).verify(body + " ", headers)
        other = WebhookEndpoint().secret
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(other).verify(body, headers)


# --- G15 -----------------------------------------------------------------------------------


def test_g15_down_slow_failing_then_healthy_every_delivery_arrives_signed_with_its_id(fast, receiver):
    alice = UserFactory(username="alice")
    endpoint = endpoint_for(receiver)
    keys = announce_some(alice)
    wanted = {message_id(key) for key in keys}
    assert set(WebhookDelivery.objects.values_list("message_id", flat=True)) == wanted
    assert receiver.got == []  # announcing sends nothing

    # Down: nothing listens on the port.
    result = webhook_deliveries_send()
    assert (result.delivered, result.retrying) == (0, len(wanted))
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.active
    # Slow: the requests arrive, the answers come after the timeout.
    receiver.start()
    receiver.mode = "slow"
    assert webhook_deliveries_send().retrying == len(wanted)
    assert len(receiver.got) == len(wanted)
    # Answering 500.
    receiver.mode = "error"
    assert webhook_deliveries_send().retrying == len(wanted)
    # Healthy.
    receiver.mode = "ok"
    assert webhook_deliveries_send().delivered == len(wanted)
    assert webhook_deliveries_send().delivered == 0  # nothing is sent twice once delivered

    arrived = receiver.arrived()
    assert set(arrived) == wanted
    by_id: dict[str, list[dict]] = {}
    for request in receiver.got:
        by_id.setdefault(request["headers"]["webhook-id"], []).append(request)
    for msg, requests in by_id.items():
        assert len(requests) == 3  # slow, 500 and healthy: the same id, the same body every time
        assert len({r["body"] for r in requests}) == 1
        for request in requests:
            assert verify_by_hand(endpoint.secret, request["headers"], request["body"])
            if standardwebhooks is not None:
                standardwebhooks.Webhook(endpoint.secret).verify(request["body"], request["headers"])
        body = json.loads(requests[0]["body"])
        delivery = WebhookDelivery.objects.get(message_id=msg)
        assert body["type"] == delivery.event_type and requests[0]["body"] == delivery.payload
    for delivery in WebhookDelivery.objects.all():
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 4, 204)
        attempts = list(delivery.attempt_rows.order_by("id"))
        assert [a.status_code for a in attempts] == [None, None, 500, 204]
        assert "refused" in attempts[0].error.lower()
        assert "within" in attempts[1].error
        assert attempts[2].error and attempts[2].response.startswith("receiver says error")
        assert len(attempts[2].response) == deliveries.RESPONSE_KEEP_CHARS
        assert attempts[3].error == "" and not any(a.manual for a in attempts)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.active


def test_a_receiver_back_after_failing_gets_the_waiting_deliveries_at_once(fast, receiver):
    fast.JIFEN_WEBHOOK_BACKOFF_S = [3600.0]  # a real backoff: nothing would be due for an hour
    alice = UserFactory(username="alice")
    endpoint = endpoint_for(receiver)
    announce_some(alice, count=3)
    webhook_deliveries_send()  # down: all wait an hour
    assert webhook_deliveries_send().delivered == 0
    receiver.start()
    announce_some(alice, count=1)  # a new event finds the receiver up ...
    assert webhook_deliveries_send().delivered == 2
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
    # ... and what waited since the outage is due now, not in an hour.
    assert webhook_deliveries_send().delivered == 4
    assert len(receiver.arrived()) == 6


def test_a_delivery_is_given_up_a_day_after_its_first_attempt(fast, receiver):
    alice = UserFactory(username="alice")
    endpoint_for(receiver)
    announce_some(alice, count=1)
    webhook_deliveries_send()
    assert not WebhookDelivery.objects.exclude(status="pending").exists()
    WebhookAttempt.objects.update(at=timezone.now() - timedelta(days=1, seconds=1))  # the first attempts, a day ago
    result = webhook_deliveries_send()
    assert (result.failed, result.retrying) == (2, 0)
    assert set(WebhookDelivery.objects.values_list("status", "next_attempt_at")) == {("failed", None)}


def test_the_next_attempt_is_never_after_the_day_is_over(fast, receiver):
    fast.JIFEN_WEBHOOK_BACKOFF_S = [36000.0]
    UserFactory(username="alice")
    endpoint = endpoint_for(receiver)
    webhook_endpoint_send_test(endpoint=endpoint)
    webhook_deliveries_send()
    WebhookAttempt.objects.update(at=timezone.now() - timedelta(hours=20))
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    first = WebhookAttempt.objects.order_by("at").first().at
    assert delivery.status == "pending" and delivery.next_attempt_at <= first + timedelta(days=1)


def test_an_endpoint_failing_for_a_day_is_disabled_and_logged(fast, receiver, caplog):
    alice = UserFactory(username="alice")
    endpoint = endpoint_for(receiver)
    announce_some(alice, count=1)
    webhook_deliveries_send()
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since is not None
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=1, seconds=1))
    with caplog.at_level(logging.WARNING, logger="apps.notifications"):
        webhook_deliveries_send()
    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.disabled_at is not None
    assert "refused" in endpoint.disabled_reason.lower()
    assert any("disabled" in record.getMessage() and record.levelno == logging.WARNING for record in caplog.records)
    # Disabled: new events are not written for it, and what waits is not sent ...
    before = WebhookDelivery.objects.count()
    announce_some(alice, count=1)
    assert WebhookDelivery.objects.count() == before
    receiver.start()
    assert webhook_deliveries_send().delivered == 0
    # ... until an operator enables it: everything waiting goes.
    assert webhook_endpoint_enable(endpoint=endpoint)
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since is None and endpoint.disabled_at is None
    assert webhook_deliveries_send().delivered == before
    assert not webhook_endpoint_enable(endpoint=endpoint)  # active already


def test_a_success_between_failures_keeps_the_endpoint(fast, receiver):
    endpoint = endpoint_for(receiver)
    receiver.start()
    receiver.mode = "error"
    webhook_endpoint_send_test(endpoint=endpoint)
    webhook_deliveries_send()
    endpoint.refresh_from_db()
    failing = endpoint.failing_since
    assert failing is not None
    webhook_deliveries_send()
    endpoint.refresh_from_db()
    assert endpoint.failing_since == failing  # set at the first failure, not moved by later ones
    receiver.mode = "ok"
    webhook_deliveries_send()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_resend_sends_the_same_message_again_as_a_manual_attempt(fast, receiver):
    alice = UserFactory(username="alice")
    endpoint_for(receiver, events.POINTS_AWARDED)
    receiver.start()
    announce_some(alice, count=1)
    webhook_deliveries_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    webhook_delivery_resend(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert [a.manual for a in delivery.attempt_rows.order_by("id")] == [False, True]
    first, second = receiver.got
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == delivery.message_id
    assert first["body"] == second["body"]

    # A given-up delivery sent again and arriving is delivered.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    webhook_delivery_resend(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    # One that fails again stays given up.
    receiver.mode = "error"
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    assert webhook_delivery_resend(delivery=delivery).failed == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == ("failed", 500)


def test_a_rotated_secret_signs_every_attempt_after_it(fast, receiver):
    endpoint = endpoint_for(receiver)
    webhook_endpoint_send_test(endpoint=endpoint)
    webhook_deliveries_send()  # down
    old = endpoint.secret
    new = webhook_endpoint_rotate_secret(endpoint=endpoint)
    assert new != old and new.startswith("whsec_")
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == new
    receiver.start()
    webhook_deliveries_send()
    (request,) = receiver.got
    assert verify_by_hand(new, request["headers"], request["body"])
    assert not verify_by_hand(old, request["headers"], request["body"])


def test_a_test_event_goes_to_that_endpoint_only(fast, receiver):
    endpoint = endpoint_for(receiver)
    other = webhook_endpoint_create(name="other", url="http://127.0.0.1:9/", event_types=[events.POINTS_AWARDED])[0]
    delivery = webhook_endpoint_send_test(endpoint=endpoint, sent_by="op")
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [endpoint.pk]
    assert json.loads(delivery.payload)["type"] == events.ENDPOINT_TEST == "webhook.test"
    receiver.start()
    webhook_deliveries_send()
    (request,) = receiver.got
    assert json.loads(request["body"])["data"] == {"endpoint_id": endpoint.pk, "endpoint": "crm", "sent_by": "op"}
    WebhookEndpoint.objects.filter(pk=other.pk).update(active=False)
    with pytest.raises(deliveries.EndpointNotActive):
        webhook_endpoint_send_test(endpoint=other)


class TestAddresses:
    def test_internal_addresses_are_refused_unless_allowed(self, fast, receiver):
        fast.JIFEN_WEBHOOK_ALLOW_PRIVATE = False
        endpoint = endpoint_for(receiver)
        receiver.start()
        webhook_endpoint_send_test(endpoint=endpoint)
        webhook_deliveries_send()
        attempt = WebhookAttempt.objects.get()
        assert attempt.status_code is None and "internal address" in attempt.error
        assert receiver.got == []

    @pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost"])
    def test_only_http_and_https_urls(self, fast, url):
        endpoint = WebhookEndpoint.objects.create(name="odd", url=url, event_types=[events.POINTS_AWARDED])
        webhook_endpoint_send_test(endpoint=endpoint)
        webhook_deliveries_send()
        assert WebhookAttempt.objects.get().error.startswith("refused")

    def test_a_redirect_is_an_answer_not_followed(self, fast):
        hits = []

        class Redirect(BaseHTTPRequestHandler):
            def do_POST(self):
                hits.append(self.path)
                self.send_response(307)
                self.send_header("location", "/elsewhere")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            endpoint = WebhookEndpoint.objects.create(
                name="moved", url=f"http://127.0.0.1:{server.server_address[1]}/hook", event_types=[events.POINTS_AWARDED]
            )
            webhook_endpoint_send_test(endpoint=endpoint)
            webhook_deliveries_send()
        finally:
            server.shutdown()
            server.server_close()
        assert hits == ["/hook"]
        assert WebhookAttempt.objects.get().status_code == 307
        assert WebhookDelivery.objects.get().status == "pending"


def test_nothing_is_sent_on_a_request_or_by_the_worker_only_by_the_sender(fast, receiver, client):
    """A tracked request and the worker's award write a delivery; HTTP to receivers happens in the beat sender alone."""
    from apps.tracking.events import Event
    from apps.tracking.services.pipeline import event_process
    from tests.factories import ScoreRuleFactory, TaskConfigFactory

    alice = UserFactory(username="alice")
    endpoint = endpoint_for(receiver)
    receiver.start()
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$")
    ScoreRuleFactory(task_type="sign-in", score_type="daily", points=2)
    client.force_login(alice)
    client.post("/checkin/")  # the tracked request: its event goes to the broker or the outbox
    event_process(  # the worker's part: the award, announced in its transaction
        event=Event(
            event_id=uuid.uuid4(),
            user_id=alice.pk,
            task_type="sign-in",
            occurred_at=timezone.now(),
            method="POST",
            path="/checkin/",
        )
    )
    (delivery,) = WebhookDelivery.objects.filter(event_type=events.POINTS_AWARDED)
    assert delivery.status == "pending" and json.loads(delivery.payload)["data"]["amount"] == 2
    assert receiver.got == []
    assert webhook_deliveries_send().delivered == 1
    (request,) = receiver.got
    assert request["headers"]["webhook-id"] == delivery.message_id
    assert verify_by_hand(endpoint.secret, request["headers"], request["body"])


def test_claimed_deliveries_are_leased_and_come_back_if_the_sender_dies(fast, receiver, monkeypatch):
    endpoint = endpoint_for(receiver)
    webhook_endpoint_send_test(endpoint=endpoint)
    claimed = deliveries._claim(now=timezone.now(), limit=10)  # a sender claims, then is killed before posting
    assert len(claimed) == 1
    assert deliveries._claim(now=timezone.now(), limit=10) == []  # another sender does not take it meanwhile
    later = timezone.now() + timedelta(seconds=deliveries._lease_s(1) + 1)
    assert [job.delivery_id for job in deliveries._claim(now=later, limit=10)] == [claimed[0].delivery_id]


def test_prune_forgets_old_delivered_and_failed_deliveries_only(fast, receiver):
    endpoint = endpoint_for(receiver)
    receiver.start()
    for _ in range(3):
        webhook_endpoint_send_test(endpoint=endpoint)
    webhook_deliveries_send()
    old = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.update(created_at=old)
    first, second, third = WebhookDelivery.objects.order_by("pk")
    WebhookDelivery.objects.filter(pk=second.pk).update(status="failed")
    WebhookDelivery.objects.filter(pk=third.pk).update(status="pending")
    assert webhook_deliveries_prune() == 2
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [third.pk]
    assert not WebhookAttempt.objects.exclude(delivery_id=third.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_share_the_work_and_send_each_delivery_once(fast, receiver):
    """Four senders at once (SELECT … FOR UPDATE SKIP LOCKED): every delivery arrives, none twice."""
    from django.db import connection

    alice = UserFactory(username="alice")
    endpoint_for(receiver)
    for _ in range(4):
        announce_some(alice, count=9)  # 40 deliveries
    receiver.start()
    errors = []

    def sender():
        try:
            for _ in range(3):
                webhook_deliveries_send(limit=5)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    webhook_deliveries_send()  # whatever the four left
    ids = [request["headers"]["webhook-id"] for request in receiver.got]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_the_example_request_in_docs_api_md_verifies_with_its_example_secret():
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    section = text[text.index("## Webhooks") :]
    secret = re.search(r"example secret `(whsec_[^`]+)`", section).group(1)
    block = section[section.index("```http\n") + len("```http\n") :]
    head, body = block[: block.index("```")].split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines())
    body = body.rstrip("\n")
    assert verify_by_hand(secret, headers, body)
    assert (
        webhook_sign(secret=secret, message_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"]), body=body)
        == headers["webhook-signature"]
    )


def test_the_receiver_in_docs_api_md_accepts_our_deliveries_and_refuses_a_forgery():
    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    section = text[text.index("## Webhooks") :]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("@app.post")]  # the check itself, without the web framework around it
    secret = WebhookEndpoint().secret
    namespace: dict = {}
    exec(code.replace('"whsec_..."', repr(secret)), namespace)  # noqa: S102 - our own documentation's code
    body = '{"type":"webhook.test","data":{}}'
    stamp = int(time.time())
    headers = deliveries.webhook_headers(secret=secret, message_id="msg_1", body=body, timestamp=stamp)
    assert namespace["verified"](body.encode(), headers)
    assert not namespace["verified"](body.replace("test", "tost").encode(), headers)
    old = deliveries.webhook_headers(secret=secret, message_id="msg_1", body=body, timestamp=stamp - 3600)
    assert not namespace["verified"](body.encode(), old)


def test_the_beat_tasks_call_the_sender_and_the_pruner(fast, receiver, settings):
    from apps.notifications.tasks import prune_webhook_deliveries, send_webhooks

    assert settings.CELERY_BEAT_SCHEDULE["send-webhooks"]["task"] == "apps.notifications.tasks.send_webhooks"
    endpoint = endpoint_for(receiver)
    receiver.start()
    webhook_endpoint_send_test(endpoint=endpoint)
    assert send_webhooks() == "1 delivered, 0 to retry, 0 given up"
    WebhookDelivery.objects.update(created_at=timezone.now() - timedelta(days=31))
    assert prune_webhook_deliveries() == "1 deliveries pruned"

"""POST /api/events: signed batches from other systems; forged, stale, replayed or bad ones change nothing."""

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from apps.tasks.models import UserTaskRecord
from apps.tracking import handoff as handoff_module
from apps.tracking.handoff import HandoffUnavailable, worker_inbox
from apps.tracking.models import OutboxEvent, SeenSignature, ServiceKey
from apps.tracking.services.pipeline import events_process_batch
from apps.tracking.services.service_keys import seen_signatures_prune, service_key_create, service_key_revoke
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/events"


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The scheme as the README gives it to other systems, written out independently of the server's code."""
    message = timestamp.encode() + b"\n" + method.encode() + b"\n" + path.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Service:
    """Another system holding a key: posts bodies signed as the README says."""

    def __init__(self, client, key: ServiceKey, secret: str):
        self.client, self.key, self.secret = client, key, secret

    def post(self, body, *, timestamp: float | None = None, content_type: str = "application/json", headers=None, **kwargs):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        stamp = str(int(time.time() if timestamp is None else timestamp))
        signed = {
            "X-Jifen-Key": self.key.key_id,
            "X-Jifen-Timestamp": stamp,
            "X-Jifen-Signature": sign(self.secret, stamp, "POST", URL, raw),
            **(headers or {}),
        }
        return self.client.post(URL, data=raw, content_type=content_type, headers=signed, **kwargs)


def event(n: int, **fields) -> dict:
    return {"event_id": str(uuid.UUID(int=n)), "user": "alice", "occurred_at": "2026-11-20T09:00:00+08:00", **fields}


@pytest.fixture
def site(db):
    UserFactory(username="alice")
    UserFactory(username="bob")
    TaskConfigFactory(task_type="purchase", interface_name=r"^/orders/(?P<order>\d+)/pay/$", id_group_name="order")
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$")
    TaskConfigFactory(task_type="old", status="deprecated")
    ScoreRuleFactory(task_type="purchase", score_type="purchase", points=10)
    ScoreRuleFactory(task_type="sign-in", score_type="daily", points=1, award_limit_per_period=1)


@pytest.fixture
def shop(client, site):
    key, secret = service_key_create(name="shop")
    return Service(client, key, secret)


@pytest.fixture(autouse=True)
def sent(monkeypatch):
    """Every payload handed to the broker. The hand-off runs (breaker included) but stops short of the
    broker, so that no test leaves messages for a later test's worker; one test below pushes for real."""
    payloads: list[dict] = []
    monkeypatch.setattr(handoff_module.Handoff, "_publish", lambda self, batch: payloads.extend(batch))
    return payloads


def state() -> tuple:
    return (OutboxEvent.objects.count(), UserTaskRecord.objects.count(), SeenSignature.objects.count())


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert body["message"]
    return body


class TestAccepted:
    def test_an_event_id_twice_in_one_batch_is_handed_off_once_as_first_given(self, shop, sent):
        first, second = event(1, task_type="purchase", business_id="A-1"), event(1, task_type="purchase", business_id="B-2")
        response = shop.post({"events": [first, second]})
        assert response.status_code == 202, response.content
        assert response.json()["accepted"] == 1
        assert [payload["business_id"] for payload in sent] == ["A-1"]

    def test_a_batch_is_handed_off_and_processed_once(self, shop, sent):
        body = {"events": [event(1, task_type="purchase", business_id="A-1"), event(2, method="POST", path="/orders/77/pay/")]}
        response = shop.post(body)
        assert response.status_code == 202, response.content
        assert response.json() == {"accepted": 2, "already_recorded": [], "skipped": []}
        assert [p["event_id"] for p in sent] == [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
        assert sent[1]["task_type"] == "purchase" and sent[1]["business_id"] == "77"
        assert SeenSignature.objects.count() == 1

        events_process_batch(payloads=sent)  # what a worker does with them
        assert UserTaskRecord.objects.filter(task__task_type="purchase").count() == 2

        # The same events again, signed anew: 202, listed as recorded, nothing handed off.
        sent.clear()
        again = shop.post(body, timestamp=time.time() + 1)
        assert again.status_code == 202
        assert again.json()["accepted"] == 0
        assert again.json()["already_recorded"] == sorted([str(uuid.UUID(int=1)), str(uuid.UUID(int=2))])
        assert sent == []
        assert UserTaskRecord.objects.count() == 2

    def test_one_event_object_with_request_meta(self, shop, sent):
        response = shop.post(event(3, task_type="sign-in", location="10.1.2.3", country="CN", lang_type="zh-CN"))
        assert response.status_code == 202
        assert response.json()["accepted"] == 1
        assert (sent[0]["location"], sent[0]["country"], sent[0]["lang_type"]) == ("10.1.2.3", "CN", "zh-CN")

    def test_events_that_are_no_completion_are_listed_as_skipped(self, shop, sent):
        body = {"events": [event(4, task_type="old"), event(5, method="GET", path="/nowhere/"), event(6, task_type="sign-in")]}
        response = shop.post(body)
        assert response.status_code == 202
        skipped = response.json()["skipped"]
        assert [(s["index"], s["event_id"]) for s in skipped] == [(0, str(uuid.UUID(int=4))), (1, str(uuid.UUID(int=5)))]
        assert "not in use" in skipped[0]["reason"] and "routes to no task" in skipped[1]["reason"]
        assert [p["event_id"] for p in sent] == [str(uuid.UUID(int=6))]

    def test_a_repeated_event_id_in_one_batch_is_handed_off_once(self, shop, sent):
        response = shop.post({"events": [event(7, task_type="sign-in"), event(7, task_type="sign-in")]})
        assert response.status_code == 202
        assert len(sent) == 1

    def test_broker_down_keeps_the_events_in_the_outbox(self, shop, monkeypatch):
        def down(self, payloads):
            raise HandoffUnavailable("broker down")

        monkeypatch.setattr(handoff_module.Handoff, "send", down)
        response = shop.post({"events": [event(8, task_type="sign-in"), event(9, task_type="purchase")]})
        assert response.status_code == 202
        assert set(OutboxEvent.objects.values_list("event_id", flat=True)) == {uuid.UUID(int=8), uuid.UUID(int=9)}

    def test_broker_and_database_down_is_503_and_the_same_request_may_come_again(self, shop, monkeypatch, sent):
        def down(self, payloads):
            raise HandoffUnavailable("broker down")

        def no_database(*args, **kwargs):
            raise OperationalError("database is down")

        monkeypatch.setattr(handoff_module.Handoff, "send", down)
        monkeypatch.setattr(OutboxEvent.objects, "bulk_create", no_database)
        raw = json.dumps(event(10, task_type="sign-in")).encode()
        stamp = int(time.time())
        response = shop.post(raw, timestamp=stamp)
        body = refused(response, 503, "unavailable")
        assert int(response["Retry-After"]) > 0
        assert "try again" in body["message"]
        assert state() == (0, 0, 0)  # the signature was not used up
        monkeypatch.undo()
        monkeypatch.setattr(handoff_module.Handoff, "_publish", lambda self, batch: sent.extend(batch))
        assert shop.post(raw, timestamp=stamp).status_code == 202
        assert [p["event_id"] for p in sent] == [str(uuid.UUID(int=10))]

    def test_the_key_is_marked_used(self, shop):
        assert shop.key.last_used_at is None
        shop.post(event(11, task_type="sign-in"))
        shop.key.refresh_from_db()
        assert shop.key.last_used_at is not None


class TestForgedAndStale:
    def test_bad_signature(self, shop, sent):
        before = state()
        refused(shop.post(event(1, task_type="sign-in"), headers={"X-Jifen-Signature": "0" * 64}), 401, "bad_signature")
        refused(shop.post(event(1, task_type="sign-in"), headers={"X-Jifen-Signature": "not hex"}), 401, "bad_signature")
        assert state() == before and sent == []

    def test_a_body_changed_after_signing(self, shop, sent):
        raw = json.dumps(event(1, task_type="sign-in")).encode()
        stamp = str(int(time.time()))
        headers = {
            "X-Jifen-Key": shop.key.key_id,
            "X-Jifen-Timestamp": stamp,
            "X-Jifen-Signature": sign(shop.secret, stamp, "POST", URL, raw),
        }
        forged = raw.replace(b"alice", b"bob")
        response = shop.client.post(URL, data=forged, content_type="application/json", headers=headers)
        refused(response, 401, "bad_signature")
        assert state() == (0, 0, 0) and sent == []

    def test_signed_with_another_keys_secret(self, shop, sent):
        other, _ = service_key_create(name="blog")
        forger = Service(shop.client, other, shop.secret)
        refused(forger.post(event(1, task_type="sign-in")), 401, "bad_signature")
        assert sent == []

    def test_unknown_key(self, shop, sent):
        refused(shop.post(event(1, task_type="sign-in"), headers={"X-Jifen-Key": "jk_nosuchkey"}), 401, "unknown_key")
        assert state() == (0, 0, 0) and sent == []

    def test_missing_headers(self, shop, sent):
        response = shop.client.post(URL, data=json.dumps(event(1, task_type="sign-in")), content_type="application/json")
        body = refused(response, 401, "missing_signature")
        assert "X-Jifen-Signature" in body["message"]
        refused(shop.post(event(1, task_type="sign-in"), headers={"X-Jifen-Timestamp": "soon"}), 401, "bad_timestamp")
        assert state() == (0, 0, 0) and sent == []

    def test_revoked_key_is_refused_at_once(self, shop, sent):
        assert shop.post(event(1, task_type="sign-in")).status_code == 202
        service_key_revoke(key=ServiceKey.objects.get(pk=shop.key.pk))
        before = state()
        refused(shop.post(event(2, task_type="sign-in")), 401, "revoked_key")
        assert state() == before and len(sent) == 1

    def test_a_key_revoked_while_its_request_is_read_is_refused(self, shop, sent, monkeypatch):
        # The revocation commits after the signature was checked, before the events are kept.
        import apps.tracking.api as api_module

        verify = api_module.signed_request_verify

        def verify_then_revoke(**kwargs):
            signed = verify(**kwargs)
            service_key_revoke(key=ServiceKey.objects.get(pk=shop.key.pk))
            return signed

        monkeypatch.setattr(api_module, "signed_request_verify", verify_then_revoke)
        refused(shop.post(event(1, task_type="sign-in")), 401, "revoked_key")
        assert state() == (0, 0, 0) and sent == []

    @pytest.mark.parametrize("skew_s", [-301, 301, -86_400])
    def test_stale_timestamp_either_way(self, shop, sent, skew_s):
        body = refused(shop.post(event(1, task_type="sign-in"), timestamp=time.time() + skew_s), 401, "stale_timestamp")
        assert "300" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_a_timestamp_within_the_window_is_fine(self, shop):
        assert shop.post(event(1, task_type="sign-in"), timestamp=time.time() - 250).status_code == 202
        assert shop.post(event(2, task_type="sign-in"), timestamp=time.time() + 250).status_code == 202

    def test_replay(self, shop, sent):
        raw = json.dumps({"events": [event(1, task_type="purchase")]}).encode()
        stamp = time.time()
        assert shop.post(raw, timestamp=stamp).status_code == 202
        before = state()
        body = refused(shop.post(raw, timestamp=stamp), 409, "replayed")
        assert "new timestamp" in body["message"]
        assert state() == before and len(sent) == 1

    def test_a_replay_that_wins_the_early_check_loses_on_the_constraint(self, shop, sent, monkeypatch):
        """Two processes with the same request at once: both pass the early check, one insert fails."""
        raw = json.dumps(event(1, task_type="purchase")).encode()
        stamp = time.time()
        assert shop.post(raw, timestamp=stamp).status_code == 202
        monkeypatch.setattr("apps.tracking.signing.SeenSignature.objects.filter", lambda **kw: SeenSignature.objects.none())
        refused(shop.post(raw, timestamp=stamp), 409, "replayed")
        assert len(sent) == 1

    def test_the_path_is_signed(self, shop, sent):
        raw = json.dumps(event(1, task_type="sign-in")).encode()
        stamp = str(int(time.time()))
        headers = {
            "X-Jifen-Key": shop.key.key_id,
            "X-Jifen-Timestamp": stamp,
            "X-Jifen-Signature": sign(shop.secret, stamp, "POST", "/api/other", raw),
        }
        refused(shop.client.post(URL, data=raw, content_type="application/json", headers=headers), 401, "bad_signature")

    def test_refusals_are_logged_without_secrets(self, shop, caplog):
        with caplog.at_level(logging.WARNING, logger="apps.tracking.api"):
            shop.post(event(1, task_type="sign-in"), headers={"X-Jifen-Signature": "0" * 64})
        [record] = [r for r in caplog.records if r.name == "apps.tracking.api"]
        message = record.getMessage()
        assert "bad_signature" in message and shop.key.key_id in message and "127.0.0.1" in message
        assert shop.secret not in message and "alice" not in message


class TestBadBodies:
    def test_malformed_json(self, shop, sent):
        body = refused(shop.post(b'{"events": [', content_type="application/json"), 400, "not_json")
        assert "JSON" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    @pytest.mark.parametrize("body", [[event(1, task_type="sign-in")], {"events": []}, {"events": "x"}, "text"])
    def test_malformed_batch(self, shop, sent, body):
        refused(shop.post(body), 400, "bad_batch")
        assert state() == (0, 0, 0) and sent == []

    def test_one_bad_event_refuses_the_whole_batch(self, shop, sent):
        body = {
            "events": [
                event(1, task_type="sign-in"),
                event(2, task_type="sign-in", user="mallory"),
                {"event_id": "not-a-uuid", "user": "alice", "occurred_at": "2026-11-20T09:00:00"},
                event(4, task_type="sign-in", occurred_at="yesterday"),
                event(5),
                event(6, task_type="purchase", business_id=["x"]),
                "not an object",
                event(8, task_type="sign-in", country="TOO-LONG-CODE"),
            ]
        }
        body = refused(shop.post(body), 422, "invalid_events")
        errors = {(e["index"], e["field"]) for e in body["errors"]}
        assert errors == {
            (1, "user"),
            (2, "event_id"),
            (3, "occurred_at"),
            (4, None),
            (5, "business_id"),
            (6, None),
            (7, "country"),
        }
        [unknown_user] = [e for e in body["errors"] if e["index"] == 1]
        assert "mallory" in unknown_user["message"] and unknown_user["event_id"] == str(uuid.UUID(int=2))
        assert state() == (0, 0, 0) and sent == []

    def test_an_event_from_the_future(self, shop, sent):
        future = (timezone.now() + timedelta(hours=1)).isoformat()
        body = refused(shop.post(event(1, task_type="sign-in", occurred_at=future)), 422, "invalid_events")
        assert body["errors"][0]["field"] == "occurred_at"
        assert state() == (0, 0, 0) and sent == []
        soon = (timezone.now() + timedelta(seconds=60)).isoformat()  # within the allowed clock skew
        assert shop.post(event(2, task_type="sign-in", occurred_at=soon)).status_code == 202

    def test_unknown_user(self, shop, sent):
        body = refused(shop.post(event(1, task_type="sign-in", user="nobody")), 422, "invalid_events")
        assert body["errors"][0]["field"] == "user"
        assert state() == (0, 0, 0) and sent == []

    def test_a_key_limited_to_task_types_cannot_report_others(self, client, site, sent):
        key, secret = service_key_create(name="shop", task_types="purchase")
        shop = Service(client, key, secret)
        mixed = {"events": [event(1, task_type="purchase"), event(2, task_type="sign-in")]}
        body = refused(shop.post(mixed), 422, "invalid_events")
        assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "task_type")]
        routed = refused(shop.post(event(3, method="POST", path="/checkin/")), 422, "invalid_events")
        assert "sign-in" in routed["errors"][0]["message"]
        assert sent == []
        assert shop.post(event(4, task_type="purchase")).status_code == 202

    def test_over_large_body_is_refused_before_reading_it(self, shop, sent, settings):
        settings.JIFEN_API_MAX_BODY_BYTES = 2048
        big = {"events": [event(n, task_type="sign-in", business_id="x" * 200) for n in range(20)]}
        body = refused(shop.post(big), 413, "body_too_large")
        assert "2048" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_a_declared_length_over_the_limit_is_refused_whatever_arrives(self, shop, sent, settings):
        settings.JIFEN_API_MAX_BODY_BYTES = 2048
        refused(shop.post(event(1, task_type="sign-in"), CONTENT_LENGTH="10000000"), 413, "body_too_large")
        assert sent == []

    def test_a_body_without_a_declared_length_is_refused(self, shop, sent):
        # A chunked body: no Content-Length, so neither the signature nor the limit could be checked.
        response = shop.post(event(1, task_type="sign-in"), CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked")
        body = refused(response, 411, "length_required")
        assert "Content-Length" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_too_many_events(self, shop, sent, settings):
        settings.JIFEN_API_MAX_EVENTS = 3
        body = refused(shop.post({"events": [event(n, task_type="sign-in") for n in range(4)]}), 413, "too_many_events")
        assert "3" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_wrong_content_type(self, shop, sent):
        response = shop.post(json.dumps(event(1, task_type="sign-in")).encode(), content_type="text/plain")
        refused(response, 415, "unsupported_media_type")
        assert state() == (0, 0, 0) and sent == []

    def test_only_post(self, shop):
        assert shop.client.get(URL).status_code == 405

    def test_a_signed_in_browser_cannot_post_events(self, client, site, sent):
        client.force_login(UserFactory(username="alice"))
        response = client.post(URL, data=json.dumps(event(1, task_type="sign-in")), content_type="application/json")
        refused(response, 401, "missing_signature")
        assert sent == []


@pytest.mark.redis
def test_accepted_events_are_in_the_redis_inbox(shop, monkeypatch):
    monkeypatch.undo()  # the real hand-off
    inbox = worker_inbox()
    before = inbox.client.llen(inbox.key)
    try:
        assert shop.post({"events": [event(1, task_type="sign-in"), event(2, task_type="purchase")]}).status_code == 202
        waiting = [json.loads(raw) for raw in inbox.client.lrange(inbox.key, 0, 1)]
        assert inbox.client.llen(inbox.key) == before + 2
        assert {item["event_id"] for item in waiting} == {str(uuid.UUID(int=1)), str(uuid.UUID(int=2))}
    finally:
        inbox.client.delete(inbox.key, inbox.wake_key, inbox.queue, inbox.template_key)


def test_expired_signatures_are_pruned(shop):
    shop.post(event(1, task_type="sign-in"))
    shop.post(event(2, task_type="sign-in"))
    first = SeenSignature.objects.first()
    SeenSignature.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert seen_signatures_prune() == 1
    assert SeenSignature.objects.count() == 1


class TestHostileEvents:
    """G7, G8: what the database cannot store, or would store wrongly, is refused with a 422 naming it."""

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"business_id": "A\u00001"}, "business_id"),
            ({"location": "10.0.0.1\u0000"}, "location"),
            ({"lang_type": "en\x1b[31m"}, "lang_type"),
            ({"country": "C\x85N"}, "country"),
            ({"user": "ali\u0000ce"}, "user"),
            ({"task_type": "sign\u0000-in"}, "task_type"),
        ],
    )
    def test_control_characters_and_lone_surrogates_are_refused(self, shop, sent, fields, field):
        item = {**event(1, task_type="purchase"), **fields}
        # json.dumps writes NUL and the surrogate as \u escapes, as another system would send them.
        body = refused(shop.post({"events": [item]}), 422, "invalid_events")
        [error] = body["errors"]
        assert error["field"] == field, error
        assert "control character" in error["message"] or "lone surrogate" in error["message"]
        assert state() == (0, 0, 0) and sent == []

    @pytest.mark.parametrize("field", ["business_id", "event_id", "user"])
    def test_a_lone_surrogate_anywhere_is_a_422(self, shop, sent, field):
        # orjson refuses a lone surrogate while parsing, so the whole body is refused before any field is read.
        body = refused(shop.post({"events": [event(1, task_type="sign-in", **{field: "A\udc00"})]}), 422, "lone_surrogate")
        assert "surrogate" in body["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_a_routed_business_id_over_255_characters_is_refused_not_cut(self, shop, sent):
        order = "1" * 300
        body = refused(shop.post(event(1, method="POST", path=f"/orders/{order}/pay/")), 422, "invalid_events")
        assert body["errors"][0]["field"] == "business_id"
        assert "255" in body["errors"][0]["message"]
        assert state() == (0, 0, 0) and sent == []

    def test_exactly_255_characters_is_fine(self, shop, sent):
        order = "1" * 255
        response = shop.post(event(1, method="POST", path=f"/orders/{order}/pay/"))
        assert response.status_code == 202, response.content
        assert sent[0]["business_id"] == order

    @pytest.mark.parametrize(
        "when", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00", "1899-12-31T23:00:00+00:00", "2201-01-01T00:00:00Z"]
    )
    def test_years_outside_1900_to_2200_are_refused(self, shop, sent, when):
        body = refused(shop.post(event(1, task_type="sign-in", occurred_at=when)), 422, "invalid_events")
        assert body["errors"][0]["field"] == "occurred_at"
        assert "1900" in body["errors"][0]["message"]

    def test_a_clock_a_little_ahead_is_allowed_and_more_is_refused(self, shop, sent, settings):
        settings.JIFEN_EVENT_CLOCK_SKEW_S = 300
        soon = (timezone.now() + timedelta(minutes=4)).isoformat()
        assert shop.post(event(1, task_type="sign-in", occurred_at=soon)).status_code == 202
        later = (timezone.now() + timedelta(minutes=6)).isoformat()
        body = refused(shop.post(event(2, task_type="sign-in", occurred_at=later)), 422, "invalid_events")
        assert body["errors"][0]["field"] == "occurred_at"

    def test_nesting_too_deep_is_a_422(self, shop, sent):
        deep = b'{"events": [' + b"[" * 2000 + b"]" * 2000 + b"]}"
        refused(shop.post(deep), 422, "too_deep")
        nested = {"events": [{**event(1, task_type="sign-in"), "business_id": [[[["x"]]]]}]}
        assert refused(shop.post(nested), 422, "invalid_events")["errors"][0]["field"] == "business_id"
        assert state() == (0, 0, 0) and sent == []

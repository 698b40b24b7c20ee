"""Holds by other systems (SPEC §11): POST /api/holds, …/capture, …/release, signed with a service key.

Beat releases the holds nobody captured or released in time.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.ledger.models import Account, LotTake, PointLot, PointType, ScoreRecord
from apps.ledger.selectors.ledger import ledger_problems
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.ledger.services.lots import lots_check
from apps.rewards.models import Hold
from apps.rewards.services.holds import holds_release_expired
from apps.rewards.tasks import release_expired_holds
from apps.tracking.services.service_keys import service_key_create, service_key_revoke
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    """The scheme as docs/api.md gives it to other systems, written out independently of the server's code."""
    message = timestamp.encode() + b"\n" + method.encode() + b"\n" + path.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Shop:
    """Another system holding a key: signs each call as docs/api.md says."""

    def __init__(self, client, key, secret):
        self.client, self.key, self.secret = client, key, secret
        self.clock = int(time.time())

    def call(self, path: str, body=None, *, stamp: int | None = None, headers=None, content_type="application/json"):
        raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        # A new second for every call: two calls with the same body in one second would be a replay.
        self.clock += 1
        timestamp = str(stamp or self.clock)
        signed = {
            "X-Jifen-Key": self.key.key_id,
            "X-Jifen-Timestamp": timestamp,
            "X-Jifen-Signature": sign(self.secret, timestamp, "POST", path, raw),
            **(headers or {}),
        }
        return self.client.post(path, data=raw, content_type=content_type, headers=signed)

    def hold(self, **fields):
        body = {"user": "alice", "point_type": "coins", "amount": 30, "key": "order-1", "expires_in_s": 900, **fields}
        return self.call("/api/holds", body)

    def capture(self, hold_id):
        return self.call(f"/api/holds/{hold_id}/capture")

    def release(self, hold_id):
        return self.call(f"/api/holds/{hold_id}/release")


@pytest.fixture
def coins(db):
    return PointType.objects.create(code="coins", name="积分", expiry=PointType.Expiry.YEAR_END)


@pytest.fixture
def alice(coins):
    alice = UserFactory(username="alice")
    with transaction.atomic():
        account = account_lock(user_id=alice.pk, point_type_id=coins.pk)
        for n, earned in enumerate((timezone.now() - timedelta(days=400), timezone.now())):
            ledger_post_entry(
                account=account, amount=50, kind="award", idempotency_key=f"seed-{n}", earned_at=earned, point_type_id=coins.pk
            )
    return alice


@pytest.fixture
def shop(client, alice):
    key, secret = service_key_create(name="shop", may_hold=True)
    return Shop(client, key, secret)


@pytest.fixture
def other_shop(client, alice):
    key, secret = service_key_create(name="market", may_hold=True)
    return Shop(client, key, secret)


def balance(user, point_type) -> int:
    return Account.objects.get(user=user, point_type=point_type).balance


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == code, body
    assert body["message"]
    return body


def entries(kind: str) -> list[int]:
    return list(ScoreRecord.objects.filter(kind=kind).order_by("id").values_list("trade_amount", flat=True))


def clean() -> None:
    assert list(ledger_problems()) == []
    assert lots_check() == []


class TestPlace:
    def test_a_hold_spends_at_once_and_answers_the_hold(self, shop, alice, coins):
        response = shop.hold(description="order 1001")
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["status"], body["user"], body["point_type"], body["amount"], body["key"]) == (
            "held",
            "alice",
            "coins",
            30,
            "order-1",
        )
        assert body["balance"] == 70 == balance(alice, coins)
        hold = Hold.objects.get(pk=body["id"])
        assert hold.spend_entry.kind == "spend" and hold.spend_entry.trade_amount == -30
        assert hold.spend_entry.business_type == "shop: order 1001"
        assert 890 <= (hold.expires_at - hold.created_at).total_seconds() <= 900
        # The soonest-expiring lot pays first: the 400-day-old one.
        assert sorted(PointLot.objects.values_list("remaining", flat=True)) == [20, 50]
        assert "Idempotent-Replayed" not in response
        clean()

    def test_the_same_key_again_answers_the_first_hold_and_posts_nothing(self, shop, alice, coins):
        first = shop.hold()
        again = shop.hold()
        assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"] and again.json()["balance"] == 70
        assert entries("spend") == [-30] and balance(alice, coins) == 70

    def test_the_same_key_for_another_amount_or_user_is_refused(self, shop, alice, coins):
        UserFactory(username="bob")
        shop.hold()
        refused(shop.hold(amount=31), 409, "key_reused")
        refused(shop.hold(user="bob"), 409, "key_reused")
        assert entries("spend") == [-30]

    def test_keys_are_per_service_key(self, shop, other_shop, alice, coins):
        shop.hold()
        assert other_shop.hold().status_code == 201
        assert entries("spend") == [-30, -30]

    def test_never_below_zero(self, shop, alice, coins):
        body = refused(shop.hold(amount=101), 409, "insufficient_points")
        assert "100" in body["message"]
        assert balance(alice, coins) == 100 and not Hold.objects.exists() and entries("spend") == []
        assert shop.hold(amount=100).status_code == 201
        refused(shop.hold(amount=1, key="order-2"), 409, "insufficient_points")
        assert balance(alice, coins) == 0
        clean()

    def test_a_refused_hold_leaves_its_signature_unused(self, shop, alice, coins):
        stamp = int(time.time())
        refused(shop.call("/api/holds", {"user": "alice", "amount": 500, "key": "k"}, stamp=stamp), 409, "insufficient_points")
        refused(shop.call("/api/holds", {"user": "alice", "amount": 500, "key": "k"}, stamp=stamp), 409, "insufficient_points")

    def test_points_that_cannot_be_spent_cannot_be_held(self, shop, alice):
        PointType.objects.create(code="exp", name="经验", spendable=False)
        refused(shop.hold(point_type="exp"), 422, "not_spendable")
        refused(shop.hold(point_type="gold"), 422, "unknown_point_type")

    def test_an_empty_point_type_is_the_default_one(self, shop, alice):
        with transaction.atomic():
            ledger_post_entry(account=account_lock(user_id=alice.pk), amount=5, kind="award", idempotency_key="main")
        response = shop.hold(point_type="", amount=5)
        assert response.status_code == 201 and response.json()["point_type"] == PointType.objects.get(is_default=True).code

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"amount": 0}, "bad_amount"),
            ({"amount": -5}, "bad_amount"),
            ({"amount": 10**12}, "bad_amount"),
            ({"amount": "5"}, "invalid_hold"),
            ({"amount": 1.5}, "invalid_hold"),
            ({"amount": True}, "invalid_hold"),
            ({"expires_in_s": 5}, "bad_expiry"),
            ({"expires_in_s": 10**9}, "bad_expiry"),
            ({"key": ""}, "invalid_hold"),
            ({"key": "x" * 129}, "invalid_hold"),
            ({"key": "a\x00b"}, "invalid_hold"),
            ({"user": "mallory"}, "unknown_user"),
            ({"user": 7}, "invalid_hold"),
            ({"description": "x" * 101}, "invalid_hold"),
            ({"expires_in": 60}, "invalid_hold"),
        ],
    )
    def test_bad_input_is_refused_with_a_message_and_changes_nothing(self, shop, alice, fields, code):
        refused(shop.hold(**fields), 422, code)
        assert not Hold.objects.exists() and entries("spend") == []

    def test_not_json_or_not_an_object_or_not_json_typed(self, shop, alice):
        refused(shop.call("/api/holds", b"{not json"), 400, "not_json")
        refused(shop.call("/api/holds", [1, 2]), 422, "invalid_hold")
        refused(shop.call("/api/holds", {"user": "alice"}, content_type="text/plain"), 415, "unsupported_media_type")


class TestSigning:
    def test_signed_exactly_as_events(self, shop, alice, client):
        refused(client.post("/api/holds", data=b"{}", content_type="application/json"), 401, "missing_signature")
        response = shop.call("/api/holds", {"user": "alice", "amount": 1, "key": "k"}, headers={"X-Jifen-Signature": "0" * 64})
        refused(response, 401, "bad_signature")
        stale = shop.call("/api/holds", {"user": "alice", "amount": 1, "key": "k"}, stamp=int(time.time()) - 3600)
        refused(stale, 401, "stale_timestamp")
        assert not Hold.objects.exists()

    def test_a_replayed_request_is_refused(self, shop, alice):
        stamp = int(time.time())
        body = {"user": "alice", "point_type": "coins", "amount": 10, "key": "k"}
        assert shop.call("/api/holds", body, stamp=stamp).status_code == 201
        refused(shop.call("/api/holds", body, stamp=stamp), 409, "replayed")

    def test_a_key_that_may_not_hold_is_refused(self, client, alice):
        key, secret = service_key_create(name="crm")
        refused(Shop(client, key, secret).hold(), 403, "holds_not_allowed")
        assert not Hold.objects.exists()

    def test_a_revoked_key_is_refused_and_its_holds_still_expire(self, shop, alice, coins):
        hold_id = shop.hold(expires_in_s=60).json()["id"]
        service_key_revoke(key=shop.key)
        refused(shop.capture(hold_id), 401, "revoked_key")
        assert holds_release_expired(now=timezone.now() + timedelta(seconds=61)) == 1
        assert balance(alice, coins) == 100


class TestCaptureAndRelease:
    def test_capture_keeps_the_spend_and_answers_the_same_again(self, shop, alice, coins):
        hold_id = shop.hold().json()["id"]
        response = shop.capture(hold_id)
        assert response.status_code == 200 and response.json()["status"] == "captured"
        assert response.json()["decided_at"] is not None
        again = shop.capture(hold_id)
        assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
        body = refused(shop.release(hold_id), 409, "hold_captured")
        assert str(hold_id) in body["message"]
        assert entries("spend") == [-30] and entries("refund") == [] and balance(alice, coins) == 70
        clean()

    def test_release_gives_the_same_lots_back(self, shop, alice, coins):
        lots = sorted(PointLot.objects.values_list("id", "remaining"))
        hold_id = shop.hold(amount=60).json()["id"]
        response = shop.release(hold_id)
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["balance"]) == ("released", 100)
        hold = Hold.objects.get(pk=hold_id)
        assert hold.refund_entry.reverses_id == hold.spend_entry_id and hold.refund_entry.kind == "refund"
        assert sorted(PointLot.objects.values_list("id", "remaining")) == lots  # no new lot: the same ones back
        assert LotTake.objects.filter(entry=hold.spend_entry).count() == 2
        again = shop.release(hold_id)
        assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
        refused(shop.capture(hold_id), 409, "hold_released")
        assert entries("refund") == [60] and balance(alice, coins) == 100
        clean()

    def test_a_service_key_sees_only_its_own_holds(self, shop, other_shop, alice, coins):
        hold_id = shop.hold().json()["id"]
        refused(other_shop.capture(hold_id), 404, "unknown_hold")
        refused(other_shop.release(hold_id), 404, "unknown_hold")
        refused(shop.capture(hold_id + 1000), 404, "unknown_hold")
        assert Hold.objects.get(pk=hold_id).status == "held" and balance(alice, coins) == 70

    def test_capture_and_release_need_no_body_and_no_content_length(self, shop, alice):
        hold_id = shop.hold().json()["id"]
        path = f"/api/holds/{hold_id}/capture"
        stamp = str(int(time.time()))
        headers = {
            "X-Jifen-Key": shop.key.key_id,
            "X-Jifen-Timestamp": stamp,
            "X-Jifen-Signature": sign(shop.secret, stamp, "POST", path, b""),
        }
        request = shop.client.generic("POST", path, data=b"", headers=headers)
        assert request.status_code == 200, request.content


class TestExpiry:
    def test_beat_releases_a_late_hold_once(self, shop, alice, coins):
        hold_id = shop.hold(expires_in_s=10).json()["id"]
        kept = shop.hold(expires_in_s=3600, key="order-2", amount=5).json()["id"]
        assert holds_release_expired(now=timezone.now()) == 0
        later = timezone.now() + timedelta(seconds=11)
        assert holds_release_expired(now=later) == 1
        assert holds_release_expired(now=later) == 0
        hold = Hold.objects.get(pk=hold_id)
        assert hold.status == "expired" and hold.refund_entry.trade_amount == 30
        assert Hold.objects.get(pk=kept).status == "held"
        refused(shop.capture(hold_id), 409, "hold_expired")
        released = shop.release(hold_id)
        assert released.status_code == 200 and released.json()["status"] == "expired"
        assert entries("refund") == [30] and balance(alice, coins) == 95
        clean()

    def test_a_hold_past_its_time_cannot_be_captured_even_before_beat(self, shop, alice, coins):
        hold_id = shop.hold(expires_in_s=10).json()["id"]
        Hold.objects.filter(pk=hold_id).update(expires_at=timezone.now() - timedelta(seconds=1))
        body = refused(shop.capture(hold_id), 409, "hold_expired")
        assert "Place a new hold" in body["message"]
        assert Hold.objects.get(pk=hold_id).status == "held"  # beat gives the points back
        assert release_expired_holds() == "1 holds released at expiry"
        assert balance(alice, coins) == 100

    def test_the_beat_tasks_are_scheduled(self, settings):
        schedule = settings.CELERY_BEAT_SCHEDULE
        assert schedule["release-expired-holds"] == {
            "task": "apps.rewards.tasks.release_expired_holds",
            "schedule": settings.JIFEN_HOLD_SWEEP_S,
        }
        daily = schedule["expire-points"]["schedule"]  # a crontab in CELERY_TIMEZONE, the site's zone
        assert schedule["expire-points"]["task"] == "apps.ledger.tasks.expire_points"
        assert (daily.hour, daily.minute) == ({0}, {5}) and settings.CELERY_TIMEZONE == settings.TIME_ZONE

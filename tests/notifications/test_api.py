"""`GET /api/me/notifications` and `POST /api/me/notifications/read` (SPEC §12)."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.notifications.models import Notification
from tests.notifications.conftest import notify

pytestmark = pytest.mark.django_db

URL = "/api/me/notifications"
READ = "/api/me/notifications/read"


@pytest.fixture
def signed_in(alice):
    client = Client()
    client.force_login(alice)
    return client


def post(client, body, **headers):
    return client.post(READ, data=json.dumps(body), content_type="application/json", **headers)


def test_lists_newest_first_with_text_and_the_unread_count(signed_in, alice, bob):
    first, second = notify(alice), notify(alice)
    notify(bob)
    answer = signed_in.get(URL).json()
    assert answer["unread"] == 2 and answer["next_before"] is None
    assert [n["id"] for n in answer["notifications"]] == [second.pk, first.pk]
    item = answer["notifications"][0]
    assert item["kind"] == "points.awarded" and item["read"] is False
    assert item["text"] == "+5 coins for sign-in-daily"  # no such point type or rule here: their codes
    assert item["data"]["amounts"] == [{"point_type": "coins", "amount": 5}]
    assert item["url"] == "/me/points/"


def test_unread_filter_and_pages(signed_in, alice):
    made = [notify(alice) for _ in range(5)]
    Notification.objects.filter(pk__in=[made[1].pk, made[3].pk]).update(read_at="2026-01-01T00:00:00Z")
    unread = signed_in.get(URL, {"unread": 1, "limit": 2}).json()
    assert [n["id"] for n in unread["notifications"]] == [made[4].pk, made[2].pk] and unread["unread"] == 3
    rest = signed_in.get(URL, {"unread": 1, "limit": 2, "before": unread["next_before"]}).json()
    assert [n["id"] for n in rest["notifications"]] == [made[0].pk] and rest["next_before"] is None
    every = signed_in.get(URL, {"limit": 10}).json()
    assert [n["read"] for n in every["notifications"]] == [False, True, False, True, False]


def test_limit_zero_answers_the_count_alone(signed_in, alice):
    notify(alice), notify(alice)
    with CaptureQueriesContext(connection) as queries:
        answer = signed_in.get(URL, {"limit": 0}).json()
    assert answer == {"unread": 2, "notifications": [], "next_before": None}
    mine = [q["sql"] for q in queries.captured_queries if "notifications_notification" in q["sql"]]
    assert len(mine) == 1 and "COUNT(*)" in mine[0] and "read_at" in mine[0]  # what the header's script asks every 30 s


def test_mark_read_by_ids_ignores_other_users_ids(signed_in, alice, bob):
    mine, other, also_mine = notify(alice), notify(bob), notify(alice)
    answer = post(signed_in, {"ids": [mine.pk, other.pk, 999_999]})
    assert answer.status_code == 200 and answer.json() == {"marked": 1, "unread": 1}
    assert Notification.objects.get(pk=mine.pk).read_at is not None
    assert Notification.objects.get(pk=other.pk).read_at is None
    assert Notification.objects.get(pk=also_mine.pk).read_at is None
    again = post(signed_in, {"ids": [mine.pk]}).json()
    assert again == {"marked": 0, "unread": 1}  # already read: its read time stays the first one


def test_mark_all_read(signed_in, alice, bob):
    for _ in range(3):
        notify(alice)
    notify(bob)
    assert post(signed_in, {"all": True}).json() == {"marked": 3, "unread": 0}
    assert Notification.objects.filter(user=bob, read_at__isnull=True).count() == 1


def test_mark_read_needs_ids_or_all(signed_in, alice):
    notify(alice)
    answer = post(signed_in, {})
    assert answer.status_code == 422 and answer.json()["error"] == "bad_parameters"
    assert post(signed_in, {"ids": "nope"}).status_code == 422
    assert Notification.objects.filter(read_at__isnull=True).count() == 1


def test_mark_read_needs_the_csrf_token(alice):
    notify(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = post(client, {"all": True})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    assert Notification.objects.filter(read_at__isnull=True).count() == 1
    client.get("/me/notifications/")  # the page's "mark all read" form sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert post(client, {"all": True}, HTTP_X_CSRFTOKEN=token).json()["marked"] == 0  # the page read it already


def test_signed_out_is_refused(client, alice):
    notify(alice)
    assert client.get(URL).status_code == 401
    assert post(client, {"all": True}).status_code in (401, 403)
    assert Notification.objects.filter(read_at__isnull=True).count() == 1

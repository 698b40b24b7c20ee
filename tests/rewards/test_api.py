"""`POST /api/me/redemptions` and `GET /api/me/redemptions` (SPEC §11): answers, errors, the CSRF token."""

import json

import pytest
from django.test import Client

from apps.ledger.models import ScoreRecord
from apps.rewards.models import Redemption, RewardItem
from tests.rewards.conftest import give, make_item

pytestmark = pytest.mark.django_db

URL = "/api/me/redemptions"


def post(client, body, **headers):
    return client.post(URL, json.dumps(body) if not isinstance(body, str) else body, content_type="application/json", **headers)


@pytest.fixture
def signed_in(client, alice, coins):
    give(alice, 100, coins)
    make_item(coins, code="mug", name="Mug", cost=30, stock=1)
    client.force_login(alice)
    return client


def test_redeeming_answers_201_with_the_redemption_and_the_new_balance(signed_in):
    response = post(signed_in, {"item": "mug", "key": "3f1c9e"})
    assert response.status_code == 201
    body = response.json()
    assert body["balance"] == 70 and body["created"] is True
    redemption = body["redemption"]
    assert {k: redemption[k] for k in ("item", "item_name", "point_type", "cost", "status", "key", "note", "decided_at")} == {
        "item": "mug",
        "item_name": "Mug",
        "point_type": "coins",
        "cost": 30,
        "status": "pending",
        "key": "3f1c9e",
        "note": "",
        "decided_at": None,
    }
    assert redemption["id"] == Redemption.objects.get().pk


def test_the_same_key_again_answers_200_with_the_first_redemption_and_posts_nothing(signed_in):
    first = post(signed_in, {"item": "mug", "key": "k1"}).json()
    again = post(signed_in, {"item": "mug", "key": "k1"})
    assert again.status_code == 200
    assert again.json()["redemption"] == first["redemption"] and again.json()["created"] is False
    assert again.json()["balance"] == 70
    assert ScoreRecord.objects.filter(kind="spend").count() == 1


@pytest.mark.parametrize(
    ("setup", "body", "status", "code"),
    [
        (lambda coins: None, {"item": "hoodie", "key": "k"}, 422, "not_available"),
        (lambda coins: make_item(coins, code="big", cost=101), {"item": "big", "key": "k"}, 409, "insufficient_points"),
        (
            lambda coins: RewardItem.objects.filter(code="mug").update(redeemed_count=1),
            {"item": "mug", "key": "k"},
            409,
            "out_of_stock",
        ),
        (
            lambda coins: make_item(coins, code="once", cost=1, per_user_limit=0),
            {"item": "once", "key": "k"},
            409,
            "limit_reached",
        ),
        (
            lambda coins: make_item(coins, code="vip", cost=1, min_level=coins.levels.create(name="Gold", threshold=1000)),
            {"item": "vip", "key": "k"},
            422,
            "level_required",
        ),
        (lambda coins: None, {"item": "mug", "key": "bad\u0000key"}, 422, "bad_key"),
        (lambda coins: None, {"item": "mug"}, 422, "bad_parameters"),
        (lambda coins: None, {"item": "mug", "key": ""}, 422, "bad_parameters"),
        (lambda coins: None, {"item": "mug", "key": "x" * 129}, 422, "bad_parameters"),
        (lambda coins: None, {"item": 5, "key": "k"}, 422, "bad_parameters"),
        (lambda coins: None, "{not json", 400, "not_json"),
    ],
)
def test_each_refusal_has_its_status_code_and_a_message_and_changes_nothing(signed_in, coins, setup, body, status, code):
    setup(coins)
    response = post(signed_in, body)
    assert response.status_code == status, response.content
    answer = response.json()
    assert answer["error"] == code and answer["message"]
    assert not Redemption.objects.exists() and not ScoreRecord.objects.filter(kind="spend").exists()


def test_a_key_used_for_another_item_is_422(signed_in, coins):
    make_item(coins, code="pen", cost=1)
    post(signed_in, {"item": "mug", "key": "k"})
    response = post(signed_in, {"item": "pen", "key": "k"})
    assert (response.status_code, response.json()["error"]) == (422, "key_reused")


def test_messages_follow_the_language(signed_in, coins):
    make_item(coins, code="big", name="Big", cost=101)
    response = post(signed_in, {"item": "big", "key": "k"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.json()["error"] == "insufficient_points"
    assert "Big" in response.json()["message"] and "costs" not in response.json()["message"]


def test_signed_out_is_refused(client, coins):
    make_item(coins, code="mug", cost=1)
    assert client.get(URL).json()["error"] == "not_signed_in"
    response = post(client, {"item": "mug", "key": "k"})
    assert response.status_code in (401, 403) and not Redemption.objects.exists()


def test_a_session_post_needs_the_csrf_token(alice, coins):
    give(alice, 100, coins)
    make_item(coins, code="mug", cost=30)
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    refused = post(client, {"item": "mug", "key": "k"})
    assert refused.status_code == 403 and refused.json()["error"] == "csrf_failed"
    assert not Redemption.objects.exists()
    client.get("/shop/")  # any page with a form sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert post(client, {"item": "mug", "key": "k"}, HTTP_X_CSRFTOKEN=token).status_code == 201


def test_listing_my_redemptions_newest_first_in_pages(signed_in, alice, coins):
    make_item(coins, code="pen", cost=1)
    for n in range(3):
        post(signed_in, {"item": "pen", "key": f"p{n}"})
    first = signed_in.get(URL, {"limit": 2}).json()
    assert [r["key"] for r in first["redemptions"]] == ["p2", "p1"]
    rest = signed_in.get(URL, {"limit": 2, "before": first["next_before"]}).json()
    assert [r["key"] for r in rest["redemptions"]] == ["p0"] and rest["next_before"] is None
    bob_client = Client()
    from tests.factories import UserFactory

    bob_client.force_login(UserFactory(username="bob"))
    assert bob_client.get(URL).json()["redemptions"] == []

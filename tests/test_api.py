"""The JSON API for the site's own pages: the signed-in user's balance, progress and ledger; the schema and docs."""

import json
import re
import uuid
from datetime import datetime

import pytest

from apps.ledger.models import ScoreRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def earn(user, count: int, *, first_day: int = 1) -> None:
    """`count` posts by `user`, processed as a worker would, a day apart (one award each)."""
    payloads = [
        Event(
            event_id=uuid.uuid4(),
            user_id=user.pk,
            task_type="post",
            occurred_at=datetime.fromisoformat(f"2026-10-{first_day + n:02d}T09:00:00+08:00"),
            business_id=str(first_day + n),
        ).to_payload()
        for n in range(count)
    ]
    events_process_batch(payloads=payloads)


@pytest.fixture
def posting(db):
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="post-each", points=5, score_desc="Each post")


class TestSignInRequired:
    @pytest.mark.parametrize("url", ["/api/me", "/api/me/ledger", "/api/me/progress"])
    def test_anonymous_gets_401_json(self, client, url):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json()["error"] == "not_signed_in"

    def test_a_service_key_is_not_a_sign_in(self, client, db):
        from apps.tracking.services.service_keys import service_key_create

        key, _ = service_key_create(name="shop")
        assert client.get("/api/me", headers={"X-Jifen-Key": key.key_id}).status_code == 401


class TestMe:
    def test_balance_and_last_activity(self, client, alice, posting):
        client.force_login(alice)
        body = client.get("/api/me").json()
        assert (body["username"], body["balance"], body["last_activity_at"]) == ("alice", 0, None)
        assert [(t["code"], t["balance"], t["earned"], t["level"]) for t in body["point_types"]] == [("points", 0, 0, None)]
        earn(alice, 3)
        body = client.get("/api/me").json()
        assert body["balance"] == 15
        assert body["last_activity_at"] is not None

    def test_sees_only_their_own(self, client, alice, posting):
        earn(UserFactory(username="bob"), 2)
        client.force_login(alice)
        assert client.get("/api/me").json()["balance"] == 0
        assert client.get("/api/me/ledger").json() == {"entries": [], "next_before": None}


class TestLedger:
    def test_pages_newest_first_and_follow_on_without_gaps(self, client, alice, posting):
        earn(alice, 7)
        client.force_login(alice)
        first = client.get("/api/me/ledger", {"limit": 3}).json()
        assert [e["seq"] for e in first["entries"]] == [7, 6, 5]
        entry = first["entries"][0]
        assert entry["amount"] == 5 and entry["balance_before"] == 30 and entry["balance_after"] == 35
        assert entry["kind"] == "award" and entry["rule"] == "post-each"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", entry["created_at"])
        assert entry["serial_number"] == ScoreRecord.objects.get(user=alice, seq=7).serial_number
        assert entry["point_type"] == "points"
        # Every type's entries together: the cursor is opaque, passed back as it came.
        assert first["next_before"] == ScoreRecord.objects.get(user=alice, seq=5).pk

        second = client.get("/api/me/ledger", {"limit": 3, "before": first["next_before"]}).json()
        assert [e["seq"] for e in second["entries"]] == [4, 3, 2]
        last = client.get("/api/me/ledger", {"limit": 3, "before": second["next_before"]}).json()
        assert [e["seq"] for e in last["entries"]] == [1]
        assert last["next_before"] is None

    def test_a_page_does_not_shift_when_new_entries_arrive(self, client, alice, posting):
        earn(alice, 4)
        client.force_login(alice)
        first = client.get("/api/me/ledger", {"limit": 2}).json()
        earn(alice, 2, first_day=20)  # new awards meanwhile
        assert client.get("/api/me").json()["balance"] == 30
        second = client.get("/api/me/ledger", {"limit": 2, "before": first["next_before"]}).json()
        assert [e["seq"] for e in second["entries"]] == [2, 1]

    def test_the_page_size_is_capped(self, client, alice, posting, settings):
        settings.JIFEN_API_LEDGER_PAGE_MAX = 2
        earn(alice, 5)
        client.force_login(alice)
        assert len(client.get("/api/me/ledger", {"limit": 1000}).json()["entries"]) == 2

    @pytest.mark.parametrize("query", [{"limit": 0}, {"before": 0}, {"limit": "many"}, {"before": 10**20}])
    def test_bad_parameters_are_422(self, client, alice, query):
        client.force_login(alice)
        response = client.get("/api/me/ledger", query)
        assert response.status_code == 422
        assert response.json()["error"] == "bad_parameters" and response.json()["detail"]


class TestProgress:
    def test_every_active_rule_in_its_current_period(self, client, alice, posting):
        TaskConfigFactory(task_type="sign-in")
        ScoreRuleFactory(task_type="sign-in", score_type="streak-3", kind="streak", required_number_of_times=3, points=2)
        ScoreRuleFactory(task_type="sign-in", score_type="retired", status="retired")
        client.force_login(alice)
        progress = {item["rule"]: item for item in client.get("/api/me/progress").json()}
        assert set(progress) == {"post-each", "streak-3"}
        assert progress["post-each"]["description"] == "Each post"
        assert progress["streak-3"]["kind"] == "streak" and progress["streak-3"]["required"] == 3
        assert progress["streak-3"]["progress"] == 0 and progress["streak-3"]["percent"] == 0

    def test_counts_todays_completions(self, client, alice, posting):
        from django.utils import timezone

        events_process_batch(
            payloads=[Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="post", occurred_at=timezone.now()).to_payload()]
        )
        client.force_login(alice)
        [item] = client.get("/api/me/progress").json()
        assert (item["progress"], item["achieved"], item["awards"]) == (1, True, 1)


class TestLeaderboards:
    @pytest.fixture
    def board(self, posting):
        alice, bob, carol = UserFactory(username="alice"), UserFactory(username="bob"), UserFactory(username="carol")
        earn(alice, 3)
        earn(bob, 3, first_day=10)
        earn(carol, 1, first_day=20)
        return alice, bob, carol

    def test_anyone_sees_a_board_with_ties_sharing_a_rank(self, client, board):
        response = client.get("/api/leaderboards", {"period": "all"})

        assert response.status_code == 200
        body = response.json()
        assert [(e["rank"], e["username"], e["points"]) for e in body["entries"]] == [
            (1, "alice", 15),
            (1, "bob", 15),
            (3, "carol", 5),
        ]
        assert (body["rule"], body["period"], body["next_offset"], body["me"]) == (None, "all", None, None)

    def test_pages_follow_on_and_the_signed_in_user_sees_their_own_rank(self, client, board):
        client.force_login(board[2])

        first = client.get("/api/leaderboards", {"period": "all", "rule": "post-each", "limit": 2}).json()
        rest = client.get("/api/leaderboards", {"period": "all", "rule": "post-each", "offset": first["next_offset"]}).json()

        assert [e["username"] for e in first["entries"]] == ["alice", "bob"]
        assert first["next_offset"] == 2
        assert [e["username"] for e in rest["entries"]] == ["carol"] and rest["next_offset"] is None
        assert first["me"] == rest["me"] == {**rest["entries"][0]}

    def test_this_weeks_board_holds_only_this_weeks_points(self, client, board):
        assert client.get("/api/leaderboards", {"period": "week"}).json()["entries"] == []

    def test_an_unknown_rule_is_404_and_a_bad_period_or_limit_422(self, client, board):
        unknown = client.get("/api/leaderboards", {"rule": "no-such-rule"})
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_rule"
        for query in ({"period": "fortnight"}, {"limit": 0}, {"limit": 201}, {"offset": -1}, {"offset": 10**20}):
            response = client.get("/api/leaderboards", query)
            assert response.status_code == 422, query
            assert response.json()["error"] == "bad_parameters"


class TestSchema:
    def test_the_schema_is_served_and_lists_every_endpoint(self, client):
        response = client.get("/api/openapi.json")
        assert response.status_code == 200
        schema = json.loads(response.content)
        assert schema["openapi"].startswith("3.")
        assert set(schema["paths"]) >= {"/api/events", "/api/me", "/api/me/ledger", "/api/me/progress", "/api/leaderboards"}
        events = schema["paths"]["/api/events"]["post"]
        assert {"202", "401", "409", "413", "415", "422", "503"} <= set(events["responses"])
        body = events["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        assert [one["title"] for one in body] == ["EventIn", "BatchIn"]
        assert {"event_id", "user", "occurred_at", "task_type", "method", "path"} <= set(body[0]["properties"])
        assert {"AcceptedOut", "ErrorOut", "MeOut", "LedgerPageOut", "ProgressOut"} <= set(schema["components"]["schemas"])
        schemes = schema["components"]["securitySchemes"]
        assert any(s.get("name") == "X-Jifen-Key" for s in schemes.values())

    def test_the_docs_page_loads_nothing_from_another_site(self, client):
        response = client.get("/api/docs")
        assert response.status_code == 200
        html = response.content.decode()
        assert "swagger-ui-bundle.js" in html
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(not re.match(r"(https?:)?//", source) for source in sources), sources
        settings = json.loads(re.search(r'id="swagger-settings">(.*?)</script>', html, re.S).group(1))
        assert settings["url"] == "/api/openapi.json" and settings["validatorUrl"] is None

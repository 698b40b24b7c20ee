"""What users read per point type (SPEC §11): the API (me, ledger, leaderboards), the header, My points, the leaderboard."""

import uuid

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import Level, PointType, ScoreRecord
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def exp(db):
    kind = PointType.objects.create(code="exp", name="Experience", spendable=False, position=1)
    for name, threshold in (("Newcomer", 0), ("Beginner", 100), ("Skilled", 500)):
        Level.objects.create(point_type=kind, name=name, threshold=threshold)
    return kind


@pytest.fixture
def rules(exp):
    """Posting earns 5 points and 60 experience, as the demo's sign-in earns coins and experience."""
    TaskConfigFactory(task_type="post")
    return {
        "points": ScoreRuleFactory(task_type="post", score_type="post-each", points=5),
        "exp": ScoreRuleFactory(task_type="post", score_type="post-exp", points=60, point_type=exp),
    }


def post(user, times: int = 1) -> None:
    for _ in range(times):
        event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=timezone.now()))


def debit(user, amount: int, kind: str, point_type: PointType | None = None) -> None:
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk if point_type else None)
        ledger_post_entry(account=account, amount=-amount, kind=kind, idempotency_key=f"{kind}:{uuid.uuid4()}")


@pytest.fixture
def alice(rules, client):
    alice = UserFactory(username="alice")
    post(alice, 2)  # 10 points, 120 experience: Beginner, 380 to Skilled
    client.force_login(alice)
    return alice


class TestMe:
    def test_every_type_with_balance_earned_and_level_and_the_old_balance(self, client, alice):
        body = client.get("/api/me").json()
        assert body["balance"] == 10 and body["last_activity_at"] is not None
        points, exp = body["point_types"]
        assert (points["code"], points["balance"], points["earned"], points["level"], points["next_level"]) == (
            "points",
            10,
            10,
            None,
            None,
        )
        assert exp == {
            "code": "exp",
            "name": "Experience",
            "spendable": False,
            "expiry": "never",
            "expiry_months": None,
            "balance": 120,
            "earned": 120,
            "level": {"name": "Beginner", "threshold": 100},
            "next_level": {"name": "Skilled", "threshold": 500},
            "to_next_level": 380,
            "level_percent": 5,
        }

    def test_spending_lowers_the_balance_never_the_level(self, client, alice, exp):
        debit(alice, 100, "spend", exp)
        exp_row = client.get("/api/me").json()["point_types"][1]
        assert (exp_row["balance"], exp_row["earned"], exp_row["level"]["name"]) == (20, 120, "Beginner")


class TestLedger:
    def test_each_entry_names_its_type_and_the_filter_keeps_one(self, client, alice):
        every = client.get("/api/me/ledger").json()
        assert sorted(e["point_type"] for e in every["entries"]) == ["exp", "exp", "points", "points"]
        only = client.get("/api/me/ledger", {"point_type": "exp"}).json()
        assert [(e["point_type"], e["seq"], e["amount"]) for e in only["entries"]] == [("exp", 2, 60), ("exp", 1, 60)]

    def test_pages_of_one_type_follow_its_seq_and_of_every_type_the_cursor(self, client, alice):
        first = client.get("/api/me/ledger", {"point_type": "exp", "limit": 1}).json()
        assert [e["seq"] for e in first["entries"]] == [2] and first["next_before"] == 2
        second = client.get("/api/me/ledger", {"point_type": "exp", "limit": 1, "before": 2}).json()
        assert [e["seq"] for e in second["entries"]] == [1] and second["next_before"] is None
        seen, before = [], None
        while True:
            params = {"limit": 3} | ({"before": before} if before else {})
            page = client.get("/api/me/ledger", params).json()
            seen += [(e["point_type"], e["seq"]) for e in page["entries"]]
            before = page["next_before"]
            if before is None:
                break
        assert sorted(seen) == [("exp", 1), ("exp", 2), ("points", 1), ("points", 2)] and len(seen) == 4

    def test_an_unknown_type_is_a_404_with_a_message(self, client, alice):
        response = client.get("/api/me/ledger", {"point_type": "gold"})
        assert response.status_code == 404
        assert response.json() == {"error": "unknown_point_type", "message": "No point type has the code gold.", "errors": []}


class TestLeaderboardsApi:
    def test_the_overall_board_of_a_type_and_a_rules_board_in_its_rules_type(self, client, alice, rules):
        bob = UserFactory(username="bob")
        post(bob)
        default = client.get("/api/leaderboards", {"period": "all"}).json()
        assert default["point_type"] == "points" and [e["points"] for e in default["entries"]] == [10, 5]
        exp = client.get("/api/leaderboards", {"period": "all", "point_type": "exp"}).json()
        assert exp["point_type"] == "exp" and [(e["username"], e["points"]) for e in exp["entries"]] == [
            ("alice", 120),
            ("bob", 60),
        ]
        assert exp["me"]["rank"] == 1
        by_rule = client.get("/api/leaderboards", {"period": "all", "rule": "post-exp"}).json()
        assert by_rule["point_type"] == "exp" and by_rule["rule"] == "post-exp" and by_rule["entries"][0]["points"] == 120

    def test_unknown_type_and_a_rule_of_another_type_are_refused(self, client, alice):
        unknown = client.get("/api/leaderboards", {"point_type": "gold"})
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_point_type"
        mismatch = client.get("/api/leaderboards", {"point_type": "points", "rule": "post-exp"})
        assert mismatch.status_code == 422 and mismatch.json()["error"] == "point_type_mismatch"
        assert "post-exp awards Experience (exp)" in mismatch.json()["message"]

    def test_spending_and_expiry_leave_the_board_alone(self, client, alice, exp):
        debit(alice, 100, "spend", exp)
        debit(alice, 20, "expiry", exp)
        board = client.get("/api/leaderboards", {"period": "all", "point_type": "exp"}).json()
        assert board["entries"][0]["points"] == 120


class TestSite:
    def test_the_header_shows_the_level_beside_the_name(self, client, alice):
        html = client.get(reverse("home")).content.decode()
        who = html.split('id="who"')[1].split("</span></span>")[0]
        assert "alice" in who and '<span class="level" title="Experience">Beginner</span>' in html

    def test_no_level_is_shown_where_no_type_has_levels(self, client, rules):
        Level.objects.all().delete()
        bob = UserFactory(username="bob")
        client.force_login(bob)
        assert 'class="level"' not in client.get(reverse("home")).content.decode()

    def test_my_points_shows_each_type_held_with_level_and_progress(self, client, alice):
        html = client.get(reverse("my-points")).content.decode()
        assert 'id="balance">10<' in html
        exp = html.split('id="type-exp"')[1].split('class="point-type"')[0]
        assert ">120<" in exp and '<span class="level" title="Level">Beginner</span>' in exp
        assert "380 more points earned to reach Skilled" in exp and 'value="5"' in exp
        assert "not for spending" in exp
        assert html.count('<span class="unit">Experience</span>') == 2

    def test_a_new_member_sees_the_default_type_only(self, client, rules):
        client.force_login(UserFactory(username="bob"))
        html = client.get(reverse("my-points")).content.decode()
        assert 'id="type-points"' in html and 'id="type-exp"' not in html and 'id="balance">0<' in html

    def test_the_leaderboard_has_a_tab_per_type_and_says_it_counts_earning_only(self, client, alice, exp):
        html = client.get(reverse("leaderboard"), {"period": "all", "point_type": "exp"}).content.decode()
        assert 'id="point-type-tabs"' in html and "Leaderboard · Experience" in html
        assert "Your rank: #1 with 120 points" in html
        assert "earning only. Spending, expiry and adjustments by operators do not count." in html
        # The rule choice offers the type's own rules.
        assert "post-exp" in html.split('class="board-choice"')[1] and "post-each" not in html.split('class="board-choice"')[1]

    def test_spent_and_expired_points_explain_a_balance_below_the_board(self, client, alice, exp):
        debit(alice, 100, "spend", exp)
        debit(alice, 15, "expiry", exp)
        html = client.get(reverse("leaderboard"), {"period": "all", "point_type": "exp"}).content.decode()
        assert "Your balance is 5 points; this leaderboard counts 120." in html
        assert "Points you spent (100) have left your balance" in html
        assert "Points that expired (15) have left your balance" in html

    def test_the_admin_leaderboard_has_the_same_choice(self, client, alice, exp):
        client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
        html = client.get(reverse("admin:ledger_leaderboardtotal_changelist"), {"period": "all", "point_type": "exp"})
        html = html.content.decode()
        assert 'id="point-type-tabs"' in html and "alice" in html and '<td class="num">120</td>' in html
        assert "Experience: awards net of their reversals" in html


def test_scores_of_several_types_leave_verify_ledger_clean(alice, exp):
    from django.core.management import call_command

    debit(alice, 30, "spend", exp)
    call_command("verify_ledger")  # raises CommandError on any problem
    assert ScoreRecord.objects.filter(point_type=exp).count() == 3

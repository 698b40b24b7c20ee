"""Leaderboards: maintained totals equal the ledger's sums, periods, reversals, ties, pages, rebuild and the check."""

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.core.periods import DAY, MONTH, NONE, WEEK, YEAR, period_bounds
from apps.ledger.forms import LeaderboardForm
from apps.ledger.models import LeaderboardTotal, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_problems, leaderboard_rank_of
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.ledger.services.leaderboard import Contribution, leaderboard_totals_add, leaderboards_rebuild
from apps.rules.models import ScoreRule
from apps.tracking.events import Event
from apps.tracking.services.pipeline import events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = {"day": DAY, "week": WEEK, "month": MONTH, "year": YEAR, "all": NONE}


def event(user_id: int, task_type: str, when: datetime, business_id: str = "") -> dict:
    return Event(
        event_id=uuid.uuid4(), user_id=user_id, task_type=task_type, occurred_at=when, business_id=business_id
    ).to_payload()


def ledger_sums() -> dict[tuple, int]:
    """The totals computed straight from the ledger, independently of the code under test."""
    sums: dict[tuple, int] = defaultdict(int)
    entries = ScoreRecord.objects.filter(kind__in=["award", "reversal"]).select_related("completion", "reverses__completion")
    for entry in entries:
        award = entry.reverses or entry
        earned = award.completion.occurred_at if award.completion else award.created_at
        for period, calendar in CALENDAR.items():
            start = period_bounds(calendar, earned, TZ)[0]
            for board in {0, entry.rule_id or 0}:
                sums[(board, period, start, entry.user_id)] += entry.trade_amount
    return dict(sums)


def stored() -> dict[tuple, int]:
    return {
        (board, period, start, user): points
        for board, period, start, user, points in LeaderboardTotal.objects.values_list(
            "board", "period", "period_start", "user_id", "points"
        )
    }


@pytest.fixture
def rules():
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="share")
    TaskConfigFactory(task_type="unshare", reverses="share")
    return {
        "each": ScoreRuleFactory(task_type="post", score_type="post-each", points=5, award_limit_per_period=3),
        "third": ScoreRuleFactory(task_type="post", score_type="post-third", points=7, required_number_of_times=3),
        "weekly": ScoreRuleFactory(task_type="post", score_type="post-week", points=11, statistical_period="week"),
        "share": ScoreRuleFactory(task_type="share", score_type="share-each", points=3),
    }


def award(user, points: int, *, rule: ScoreRule | None = None, when: datetime | None = None) -> ScoreRecord:
    """Post an award straight to the ledger (no completion: it counts when it is posted, or at `when`)."""
    with transaction.atomic():
        return ledger_post_entry(
            account=account_lock(user_id=user.pk),
            amount=points,
            kind="award",
            idempotency_key=f"test:{uuid.uuid4()}",
            rule_id=rule.pk if rule else None,
            earned_at=when,
        )


class TestTotalsFollowTheLedger:
    def test_random_workload_through_the_batch_path(self, rules):
        rng = random.Random(6)
        users = [UserFactory(username=f"lb{i}").pk for i in range(8)]
        base = datetime(2026, 10, 20, tzinfo=TZ)
        payloads = []
        for _ in range(400):
            when = base + timedelta(minutes=rng.randrange(60 * 24 * 45))  # out of order, over 45 days and two months
            task = rng.choice(["post", "post", "share", "unshare"])
            payloads.append(event(rng.choice(users), task, when, str(rng.randrange(4))))
        for start in range(0, len(payloads), 37):
            events_process_batch(payloads=payloads[start : start + 37])
        assert ScoreRecord.objects.filter(kind="reversal").exists()
        expected = ledger_sums()
        assert stored() == expected
        assert leaderboard_problems() == []
        # All-time overall = the awards net of reversals, which is the balance here (no adjustments).
        for user_id in users:
            net = sum(ScoreRecord.objects.filter(user_id=user_id).values_list("trade_amount", flat=True))
            total = LeaderboardTotal.objects.filter(board=0, period="all", user_id=user_id).values_list("points", flat=True)
            assert (total.first() or 0) == net

    def test_a_reversal_takes_the_points_back_from_the_awards_periods(self, rules):
        alice = UserFactory(username="alice")
        shared = datetime(2026, 11, 2, 10, tzinfo=TZ)  # a Monday
        events_process_batch(payloads=[event(alice.pk, "share", shared, "9")])
        day = leaderboard_page(rule=rules["share"], period="day", at=shared)
        assert [(e.username, e.points) for e in day.entries] == [("alice", 3)]
        events_process_batch(payloads=[event(alice.pk, "unshare", shared + timedelta(days=9), "9")])
        for period in CALENDAR:
            assert leaderboard_page(rule=rules["share"], period=period, at=shared).entries == []
            assert leaderboard_page(rule=None, period=period, at=shared).entries == []
            assert leaderboard_rank_of(user_id=alice.pk, rule=None, period=period, at=shared) is None
        # Nothing lands in the reversal's own day.
        assert not LeaderboardTotal.objects.filter(period="day", period_start__gt=shared).exists()
        assert stored() == ledger_sums()

    def test_a_backfilled_completion_counts_in_its_own_period(self, rules):
        alice = UserFactory(username="alice")
        long_ago = timezone.now().astimezone(TZ) - timedelta(days=400)
        events_process_batch(payloads=[event(alice.pk, "share", long_ago, "1")])
        assert leaderboard_page(rule=None, period="year", at=long_ago).entries[0].points == 3
        assert leaderboard_page(rule=None, period="year").entries == []
        assert leaderboard_page(rule=None, period="all").entries[0].points == 3

    def test_adjustments_do_not_count(self, rules):
        alice = UserFactory(username="alice")
        with transaction.atomic():
            ledger_post_entry(account=account_lock(user_id=alice.pk), amount=50, kind="adjustment", idempotency_key="adj")
        assert not LeaderboardTotal.objects.exists()
        assert leaderboard_problems() == []

    def test_an_award_of_a_completion_without_earned_at_is_refused(self, rules):
        alice = UserFactory(username="alice")
        events_process_batch(payloads=[event(alice.pk, "share", datetime(2026, 11, 2, tzinfo=TZ), "1")])
        completion_id = ScoreRecord.objects.get().completion_id
        with pytest.raises(ValueError, match="earned_at"), transaction.atomic():
            ledger_post_entry(
                account=account_lock(user_id=alice.pk), amount=1, kind="award", idempotency_key="x", completion_id=completion_id
            )


class TestPeriods:
    def test_weeks_start_on_monday_in_the_sites_time_zone(self, rules):
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        sunday_late = datetime(2026, 11, 8, 23, 30, tzinfo=TZ)  # Sunday 23:30 local = 15:30 UTC
        monday_early = datetime(2026, 11, 8, 16, 10, tzinfo=UTC)  # Monday 00:10 local, still Sunday in UTC
        events_process_batch(payloads=[event(alice.pk, "share", sunday_late, "1"), event(bob.pk, "share", monday_early, "1")])
        assert [e.username for e in leaderboard_page(rule=None, period="week", at=sunday_late).entries] == ["alice"]
        assert [e.username for e in leaderboard_page(rule=None, period="week", at=monday_early).entries] == ["bob"]
        assert [e.username for e in leaderboard_page(rule=None, period="day", at=monday_early).entries] == ["bob"]
        month = leaderboard_page(rule=None, period="month", at=monday_early)
        assert {e.username for e in month.entries} == {"alice", "bob"}
        assert month.period_start == datetime(2026, 11, 1, tzinfo=TZ)
        assert month.period_end == datetime(2026, 12, 1, tzinfo=TZ)
        week = leaderboard_page(rule=None, period="week", at=monday_early)
        assert week.period_start == datetime(2026, 11, 9, tzinfo=TZ)

    def test_an_unknown_period_is_refused(self):
        with pytest.raises(ValueError):
            leaderboard_page(rule=None, period="fortnight")


class TestTies:
    @pytest.fixture
    def board(self):
        users = {name: UserFactory(username=name) for name in ("ann", "ben", "cat", "dan", "eve")}
        t0 = timezone.now()
        contributions = [
            ("ann", 10, 0),
            ("cat", 7, 2),  # cat reached 7 before ben
            ("ben", 7, 5),
            ("eve", 7, 5),  # same moment as ben: the lower user id first
            ("dan", 3, 1),
        ]
        kind = default_point_type_id()
        with transaction.atomic():
            leaderboard_totals_add(
                contributions=[
                    Contribution(users[name].pk, kind, None, t0, points, t0 + timedelta(seconds=s))
                    for name, points, s in contributions
                ]
            )
        return users

    def test_equal_points_share_a_rank_in_one_stable_order(self, board):
        page = leaderboard_page(rule=None, period="week")
        assert [(e.rank, e.username, e.points) for e in page.entries] == [
            (1, "ann", 10),
            (2, "cat", 7),
            (2, "ben", 7),
            (2, "eve", 7),
            (5, "dan", 3),
        ]
        assert [e.position for e in page.entries] == [0, 1, 2, 3, 4]

    def test_pages_and_rank_of_agree_with_the_full_list(self, board):
        full = leaderboard_page(rule=None, period="week").entries
        paged = [e for offset in range(5) for e in leaderboard_page(rule=None, period="week", offset=offset, limit=1).entries]
        assert paged == full
        for entry in full:
            assert leaderboard_rank_of(user_id=entry.user_id, rule=None, period="week") == entry
        assert leaderboard_page(rule=None, period="week", offset=2, limit=2).has_next

    def test_ties_order_survives_a_rebuild_only_through_the_ledger(self, board):
        # These totals have no entries behind them: the check says so, and a rebuild removes them.
        assert len(leaderboard_problems()) == 5 * 5
        leaderboards_rebuild()
        assert not LeaderboardTotal.objects.exists()


class TestRebuildAndCheck:
    @pytest.fixture
    def workload(self, rules):
        rng = random.Random(2)
        users = [UserFactory(username=f"rb{i}").pk for i in range(5)]
        base = datetime(2026, 11, 1, tzinfo=TZ)
        payloads = [
            event(
                rng.choice(users), rng.choice(["post", "share", "unshare"]), base + timedelta(hours=rng.randrange(24 * 20)), "1"
            )
            for _ in range(120)
        ]
        events_process_batch(payloads=payloads)
        return users

    def snapshot(self) -> set[tuple]:
        return set(LeaderboardTotal.objects.values_list("board", "period", "period_start", "user_id", "points", "reached_at"))

    def test_rebuild_is_idempotent_and_equals_the_maintained_totals(self, workload):
        maintained = self.snapshot()
        assert maintained
        assert leaderboards_rebuild() == len(maintained)
        assert self.snapshot() == maintained
        call_command("rebuild_leaderboards", stdout=open("/dev/null", "w"))  # noqa: SIM115
        assert self.snapshot() == maintained

    def test_verify_ledger_names_a_tampered_total_and_rebuild_repairs_it(self, workload, capsys):
        call_command("verify_ledger")
        assert "leaderboard totals and badges agree" in capsys.readouterr().out
        total = LeaderboardTotal.objects.filter(board=0, period="all").first()
        LeaderboardTotal.objects.filter(pk=total.pk).update(points=total.points + 1)
        with pytest.raises(CommandError, match="1 leaderboard total"):
            call_command("verify_ledger")
        assert f"user {total.user_id}: stored {total.points + 1} points" in capsys.readouterr().err
        leaderboards_rebuild()
        call_command("verify_ledger")

    def test_verify_ledger_names_a_missing_total(self, workload):
        LeaderboardTotal.objects.filter(period="day").order_by("id")[:1].get().delete()
        with pytest.raises(CommandError, match="leaderboard"):
            call_command("verify_ledger")


class TestPages:
    @pytest.fixture
    def ranked(self, rules, monkeypatch):
        monkeypatch.setattr(LeaderboardForm, "PER_PAGE", 2)
        users = [UserFactory(username=f"runner{i}") for i in range(4)]
        for i, user in enumerate(users):
            award(user, 40 - 10 * i, rule=rules["share"])
        return users

    def test_the_site_page_lists_ranks_and_highlights_me(self, client, ranked):
        client.force_login(ranked[1])
        html = client.get(reverse("leaderboard")).content.decode()
        assert html.count('class="entry') == 2
        assert 'class="entry me"' in html
        assert "#2" in html
        assert "runner0" in html and "runner2" not in html

    def test_my_rank_shows_when_i_am_off_the_page(self, client, ranked):
        client.force_login(ranked[3])
        html = client.get(reverse("leaderboard"), {"period": "day"}).content.decode()
        assert 'class="entry me off-page"' in html
        assert "#4" in html and "page=2" in html
        second = client.get(reverse("leaderboard"), {"period": "day", "page": 2}).content.decode()
        assert "runner2" in second and 'class="entry me"' in second and "off-page" not in second

    def test_a_rules_board_and_anonymous_visitors(self, client, ranked, rules):
        html = client.get(reverse("leaderboard"), {"rule": rules["each"].pk, "period": "all"}).content.decode()
        assert "Nobody has points here yet." in html
        html = client.get(reverse("leaderboard"), {"rule": rules["share"].pk, "period": "all"}).content.decode()
        assert "runner0" in html and "my-rank" not in html
        assert client.get(reverse("leaderboard"), {"period": "nonsense", "page": "x"}).status_code == 200

    @pytest.mark.parametrize("role", ["auditors", "ledger operators"])
    def test_the_admin_page_for_the_roles(self, client, ranked, role):
        operator = UserFactory(username="op", is_staff=True)
        operator.groups.add(Group.objects.get(name=role))
        client.force_login(operator)
        url = reverse("admin:ledger_leaderboardtotal_changelist")
        html = client.get(url, {"period": "month"}).content.decode()
        assert '<td class="num rank">1</td>' in html and "runner1" in html
        assert reverse("admin:ledger_account_user", kwargs={"user_id": ranked[0].pk}) in html
        assert url in client.get(reverse("admin:index")).content.decode()

    def test_the_admin_page_needs_the_view_permission(self, client, ranked):
        client.force_login(UserFactory(username="staff", is_staff=True))
        assert client.get(reverse("admin:ledger_leaderboardtotal_changelist")).status_code == 403


class TestTheSiteSaysWhatItRanks:
    """The site's board says what it counts, and why a member's balance differs from their points on it."""

    @pytest.fixture
    def alice(self, rules, client):
        alice = UserFactory(username="alice")
        award(alice, 27, rule=rules["each"])
        with transaction.atomic():
            ledger_post_entry(account=account_lock(user_id=alice.pk), amount=5005, kind="adjustment", idempotency_key="adj")
        client.force_login(alice)
        return alice

    def test_the_board_says_adjustments_do_not_count(self, client, rules):
        html = client.get(reverse("leaderboard")).content.decode()
        assert "earning only. Spending, expiry and adjustments by operators do not count." in html

    def test_a_balance_with_adjustments_says_why_it_differs(self, client, alice):
        html = client.get(reverse("leaderboard") + "?period=all").content.decode()
        assert "Your rank: #1 with 27 points" in html
        assert "Your balance is 5,032 points; this leaderboard counts 27 of them." in html
        assert "Adjustments by operators (+5,005 points) are in your balance but never on a leaderboard." in html
        assert "before this period" not in html  # all time: nothing else differs

    def test_a_periods_board_says_earlier_points_are_left_out(self, client, alice, rules):
        html = client.get(reverse("leaderboard") + f"?period=week&rule={rules['each'].pk}").content.decode()
        assert "Points earned before this period are in your balance" in html
        assert "Points from other rules are in your balance" in html

    def test_nothing_is_said_when_balance_and_board_agree(self, client, rules):
        bob = UserFactory(username="bob")
        award(bob, 12)
        client.force_login(bob)
        html = client.get(reverse("leaderboard") + "?period=all").content.decode()
        assert 'id="balance-differs"' not in html

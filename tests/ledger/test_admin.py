"""The ledger's admin pages, through Django's test client, as an operator uses them."""

import csv
import io
import re
import uuid
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import Account, Adjustment, ScoreRecord
from apps.ledger.services.adjustments import adjustment_request
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.ledger.conftest import APPROVE, REQUEST, give_points, make_operator

pytestmark = pytest.mark.django_db
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def superuser(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


def page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def sign_in(user, when: datetime, business_id: str = "") -> None:
    event_process(
        event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="sign-in", occurred_at=when, business_id=business_id)
    )


class TestChangelists:
    def test_every_ledger_list_loads_for_a_superuser(self, client, superuser):
        alice = UserFactory(username="alice")
        give_points(alice, 5)
        for name in ("ledger_account", "ledger_scorerecord", "ledger_adjustment", "rules_userscoreinfo"):
            html = page(client, reverse(f"admin:{name}_changelist"))
            assert "alice" in html or name in ("ledger_adjustment", "rules_userscoreinfo"), name
        page(client, reverse("admin:ledger_scorerecord_changelist"), q="ali", kind="award")
        page(client, reverse("admin:ledger_account_changelist"), q="ali", o="2")

    def test_negative_balance_filter_lists_only_accounts_below_zero(self, client, superuser):
        rich, poor = UserFactory(username="rich"), UserFactory(username="poor")
        give_points(rich, 10)
        give_points(poor, 3)
        with transaction.atomic():
            # A reversal may take a balance below zero (SPEC §5, 5); the admin must show such accounts.
            ledger_post_entry(account=account_lock(user_id=poor.pk), amount=-5, kind="reversal", idempotency_key="r")
        html = page(client, reverse("admin:ledger_account_changelist"), balance="negative")
        assert ">poor<" in html and ">rich<" not in html
        html = page(client, reverse("admin:ledger_account_changelist"), balance="positive")
        assert ">rich<" in html and ">poor<" not in html

    def test_search_takes_the_beginning_of_a_username_or_a_serial_number(self, client, superuser):
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        entry = give_points(alice, 5)
        give_points(bob, 7)
        url = reverse("admin:ledger_scorerecord_changelist")
        html = page(client, url, q="ali")
        assert entry.serial_number in html and ">bob<" not in html
        html = page(client, url, q=entry.serial_number)
        assert entry.serial_number in html and ">bob<" not in html

    def test_date_drill_down_lists_only_periods_with_entries(self, client, superuser):
        alice = UserFactory(username="alice")
        for when in (datetime(2025, 3, 9, 23, 30, tzinfo=TZ), datetime(2026, 11, 2, 0, 30, tzinfo=TZ)):
            with mock.patch("django.utils.timezone.now", return_value=when):
                give_points(alice, 1)
        url = reverse("admin:ledger_scorerecord_changelist")
        years = page(client, url)
        assert "created_at__year=2025" in years and "created_at__year=2026" in years
        assert "created_at__year=2024" not in years
        months = page(client, url, created_at__year="2026")
        assert "created_at__month=11" in months and "created_at__month=10" not in months
        days = page(client, url, created_at__year="2026", created_at__month="11")
        # Local days (Asia/Shanghai): 00:30 on the 2nd is still the 1st in UTC.
        assert "created_at__day=2" in days and "created_at__day=1&" not in days and 'created_at__day=1"' not in days
        one_day = page(client, url, created_at__year="2026", created_at__month="11", created_at__day="2")
        assert one_day.count('class="field-serial_number"') == 1

    def test_ledger_entries_cannot_be_changed_deleted_or_added(self, client, superuser):
        entry = give_points(UserFactory(username="alice"), 5)
        assert client.get(reverse("admin:ledger_scorerecord_add")).status_code == 403
        assert client.post(reverse("admin:ledger_scorerecord_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
        html = page(client, reverse("admin:ledger_scorerecord_change", args=[entry.pk]))
        assert 'name="trade_amount"' not in html


class TestExport:
    @pytest.fixture
    def entries(self, superuser, settings):
        alice = UserFactory(username="alice")
        give_points(alice, 20)
        ops = make_operator("olga", REQUEST)
        adjustment_request(user_id=alice.pk, amount=-3, reason='=HYPERLINK("http://x")', request_token=uuid.uuid4(), actor=ops)
        adjustment_request(user_id=alice.pk, amount=2, reason="+cmd|' /C calc'!A0", request_token=uuid.uuid4(), actor=ops)

    def export(self, client, fmt: int, **filters):
        url = reverse("admin:ledger_scorerecord_export")
        if filters:
            url += "?" + "&".join(f"{k}={v}" for k, v in filters.items())
        # Post what the browser would: the format, and every column's checkbox as rendered (checked).
        columns = re.findall(r'name="(scorerecordresource_\w+)"', page(client, url))
        assert "scorerecordresource_business_type" in columns
        response = client.post(url, {"format": str(fmt), "resource": "0", **dict.fromkeys(columns, "on")})
        assert response.status_code == 200
        return response

    def test_csv_export_has_the_entries_and_neutralises_formulas(self, client, entries):
        response = self.export(client, 0)
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert [(r["User"], r["Kind"], r["Amount"]) for r in rows] == [
            ("alice", "adjustment", "2"),
            ("alice", "adjustment", "-3"),
            ("alice", "award", "20"),
        ]
        assert {r["Point type"] for r in rows} == {"points"}
        assert rows[0]["For"] == "'+cmd|' /C calc'!A0"
        assert rows[1]["For"] == '\'=HYPERLINK("http://x")'
        assert re.fullmatch(r"\d{20}-\d+-3", rows[0]["Serial number"])

    def test_export_follows_the_list_filters(self, client, entries):
        rows = list(csv.DictReader(io.StringIO(self.export(client, 0, kind="award").content.decode())))
        assert [r["Kind"] for r in rows] == ["award"]

    def test_a_too_big_export_is_refused_with_a_message(self, client, entries, monkeypatch):
        from apps.ledger.admin import ScoreRecordAdmin

        monkeypatch.setattr(ScoreRecordAdmin, "export_max_rows", 2)
        response = self.export(client, 0)
        assert response["Content-Type"].startswith("text/html")
        assert "More than 2 entries: narrow the list" in response.content.decode()
        rows = list(csv.DictReader(io.StringIO(self.export(client, 0, kind="award").content.decode())))
        assert len(rows) == 1

    def test_xlsx_export_keeps_numbers_and_has_no_formula_cells(self, client, entries):
        book = openpyxl.load_workbook(io.BytesIO(self.export(client, 1).content))
        sheet = book.active
        header = [cell.value for cell in sheet[1]]
        rows = [dict(zip(header, [cell for cell in row], strict=True)) for row in sheet.iter_rows(min_row=2)]
        assert len(rows) == 3
        assert all(cell.data_type != "f" for row in rows for cell in row.values())
        assert rows[1]["For"].value.startswith("'=")
        assert [row["Amount"].value for row in rows] == [2, -3, 20]
        assert isinstance(rows[0]["Created at"].value, datetime)


class TestUserPage:
    @pytest.fixture
    def alice_with_history(self, superuser):
        TaskConfigFactory(task_type="sign-in")
        ScoreRuleFactory(score_type="daily", points=2, award_limit_per_period=1)
        ScoreRuleFactory(score_type="three-a-week", points=5, statistical_period="week", required_number_of_times=3)
        alice = UserFactory(username="alice")
        now = timezone.now()
        sign_in(alice, now)
        # The daily limit is reached: counted, no award. A moment later: two events at one instant
        # are ordered by their random event ids (SPEC §6), which would make the award's place a coin toss.
        sign_in(alice, now + timedelta(microseconds=1))
        return alice

    def test_shows_balance_progress_deadline_and_why(self, client, alice_with_history):
        html = page(client, reverse("admin:ledger_account_user", args=[alice_with_history.pk]))
        assert re.search(r'id="balance"[^>]*>2<', html)
        # three-a-week: 2 of 3, a bar at 67 %, ending next Monday.
        assert "2 of 3 this week · 1 more to earn 5 points" in html and 'aria-valuenow="67"' in html
        assert "1 of 1 today — limit reached" in html
        assert "awarded 2 points" in html
        assert "the period&#x27;s award limit was already reached" in html
        assert html.count('class="entry"') == 1 and html.count('class="completion"') == 2

    def test_the_account_change_page_is_the_user_page(self, client, alice_with_history):
        account = Account.objects.get(user=alice_with_history)
        response = client.get(reverse("admin:ledger_account_change", args=[account.pk]))
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:ledger_account_user", args=[alice_with_history.pk])

    def test_long_history_comes_a_page_at_a_time_in_a_fixed_number_of_queries(
        self, client, superuser, django_assert_max_num_queries
    ):
        alice = UserFactory(username="alice")
        for _ in range(60):
            give_points(alice, 1)
        url = reverse("admin:ledger_account_user", args=[alice.pk])
        # Whatever the history: the user, their standing in each point type (types, accounts,
        # levels), the slices of each list, the progress on active rules, the badges held.
        with django_assert_max_num_queries(16):
            html = page(client, url)
        assert html.count('class="entry"') == 50
        # Every type's entries together, newest first: the next slice starts below the 50th shown.
        fiftieth = ScoreRecord.objects.filter(user=alice).order_by("-id")[49]
        older = re.search(r'href="\?before=(\d+)" id="older-entries"', html)
        assert older and older.group(1) == str(fiftieth.pk)
        html = page(client, url, before=older.group(1))
        assert html.count('class="entry"') == 10 and 'id="older-entries"' not in html

    def test_a_user_without_points_has_a_page_with_a_link_to_adjust(self, client, superuser):
        bob = UserFactory(username="bob")
        html = page(client, reverse("admin:ledger_account_user", args=[bob.pk]))
        assert reverse("admin:ledger_adjustment_add") + f"?user={bob.pk}" in html
        assert client.get(reverse("admin:ledger_account_user", args=[999999])).status_code == 404

    def test_lists_the_users_adjustments_linked_to_their_entries(self, client, superuser):
        alice = UserFactory(username="alice")
        result = adjustment_request(
            user_id=alice.pk, amount=9, reason="missed sign-in", request_token=uuid.uuid4(), actor=superuser
        )
        give_points(UserFactory(username="bob"), 3)
        html = page(client, reverse("admin:ledger_account_user", args=[alice.pk]))
        assert html.count('class="adjustment"') == 1
        assert reverse("admin:ledger_scorerecord_change", args=[result.adjustment.entry_id]) in html
        assert "adjustment: missed sign-in" in html
        # The entry links back to its adjustment, and the full lists are filtered to the user.
        entry_page = page(client, reverse("admin:ledger_scorerecord_change", args=[result.adjustment.entry_id]))
        assert reverse("admin:ledger_adjustment_change", args=[result.adjustment.pk]) in entry_page
        entries_link = re.search(r'href="([^"]*scorerecord/\?user__id__exact=\d+)"', html).group(1)
        entries = page(client, entries_link.replace("&amp;", "&"))
        assert entries.count('class="field-serial_number"') == 1 and ">bob<" not in entries


class TestAdjustmentFlow:
    @pytest.fixture
    def alice(self, db):
        alice = UserFactory(username="alice")
        give_points(alice, 50)
        return alice

    def submit(self, client, user, amount, token, reason="support ticket 42"):
        return client.post(
            reverse("admin:ledger_adjustment_add"),
            {"user": user.pk, "amount": amount, "reason": reason, "request_token": token},
            follow=True,
        )

    def test_a_small_adjustment_is_posted_and_a_second_submit_posts_nothing(self, client, alice, threshold):
        operator = make_operator("olga", REQUEST)
        client.force_login(operator)
        form = page(client, reverse("admin:ledger_adjustment_add"), user=alice.pk)
        token = re.search(r'name="request_token" value="([0-9a-f-]{36})"', form).group(1)
        first = self.submit(client, alice, 30, token).content.decode()
        assert "Posted +30 points for alice" in first
        again = self.submit(client, alice, 30, token).content.decode()
        assert "already submitted" in again
        assert Adjustment.objects.count() == 1 and Account.objects.get(user=alice).entries.count() == 2
        assert Account.objects.get(user=alice).balance == 80

    def test_a_large_adjustment_is_a_warning_that_says_what_happens_next(self, client, alice, threshold):
        client.force_login(make_operator("olga", REQUEST))
        response = self.submit(client, alice, 5000, str(uuid.uuid4()))
        [message] = list(response.context["messages"])
        assert message.level_tag == "warning"
        assert str(message) == (
            "+5,000 points for alice need a second operator's approval; "
            "until then the adjustment waits, pending, in the Adjustments list."
        )

    def test_a_debit_below_zero_is_refused_with_a_message(self, client, alice, threshold):
        client.force_login(make_operator("olga", REQUEST))
        html = self.submit(client, alice, -51, str(uuid.uuid4())).content.decode()
        assert "below zero (balance 50, adjustment -51)" in html
        assert not Adjustment.objects.exists() and ScoreRecord.objects.count() == 1

    def test_the_requester_cannot_approve_but_another_operator_can(self, client, alice, threshold):
        olga, pavel = make_operator("olga", REQUEST, APPROVE), make_operator("pavel", REQUEST, APPROVE)
        client.force_login(olga)
        self.submit(client, alice, 500, str(uuid.uuid4()))
        adjustment = Adjustment.objects.get()
        assert adjustment.status == "pending"
        detail = reverse("admin:ledger_adjustment_change", args=[adjustment.pk])
        html = page(client, detail)
        assert "another operator must approve" in html and "Approve and post" not in html
        assert client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk])).status_code == 403
        changelist = reverse("admin:ledger_adjustment_changelist")
        client.post(changelist, {"action": "approve_selected", "_selected_action": [adjustment.pk], "post": "yes"})
        adjustment.refresh_from_db()
        assert adjustment.status == "pending" and adjustment.entry is None

        client.force_login(pavel)
        assert "Approve and post" in page(client, detail)
        html = client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk]), follow=True).content.decode()
        assert "Approved: +500 points posted for alice" in html
        adjustment.refresh_from_db()
        assert adjustment.status == "posted" and adjustment.decided_by == pavel
        assert adjustment.entry.trade_amount == 500
        # A second click finds it decided, and says so.
        html = client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk]), follow=True).content.decode()
        assert "already posted" in html
        assert ScoreRecord.objects.filter(kind="adjustment").count() == 1
        history = page(client, reverse("admin:ledger_adjustment_history", args=[adjustment.pk]))
        assert "olga" in history and "pavel" in history

    def test_reject_action_on_the_list(self, client, alice, threshold):
        olga, pavel = make_operator("olga", REQUEST), make_operator("pavel", APPROVE)
        give_points(alice, 500)
        client.force_login(olga)
        self.submit(client, alice, -200, str(uuid.uuid4()))
        client.force_login(pavel)
        changelist = reverse("admin:ledger_adjustment_changelist")
        assert "reject_selected" in page(client, changelist, status="pending")
        adjustment = Adjustment.objects.get()
        client.post(changelist, {"action": "reject_selected", "_selected_action": [adjustment.pk], "post": "yes"})
        adjustment.refresh_from_db()
        assert adjustment.status == "rejected" and adjustment.decided_by == pavel
        assert ScoreRecord.objects.count() == 2 and Account.objects.get(user=alice).balance == 550

    def test_an_operator_without_approve_permission_sees_no_decision(self, client, alice, threshold):
        olga, clerk = make_operator("olga", REQUEST), make_operator("clerk", REQUEST)
        client.force_login(olga)
        self.submit(client, alice, 500, str(uuid.uuid4()))
        client.force_login(clerk)
        adjustment = Adjustment.objects.get()
        html = page(client, reverse("admin:ledger_adjustment_change", args=[adjustment.pk]))
        assert "Approve and post" not in html
        assert "approve_selected" not in page(client, reverse("admin:ledger_adjustment_changelist"))
        assert client.post(reverse("admin:ledger_adjustment_approve", args=[adjustment.pk])).status_code == 403

    def test_only_operators_with_the_add_permission_may_request(self, client, alice):
        client.force_login(make_operator("viewer"))
        assert client.get(reverse("admin:ledger_adjustment_add")).status_code == 403

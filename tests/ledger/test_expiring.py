"""What expires when (SPEC §11): a user's points by date on My points and GET /api/me/expiring; per month in the admin."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from apps.core.clock import local
from apps.ledger.models import PointType
from apps.ledger.selectors.expiring import expiring_by_month, expiring_of
from apps.ledger.services.entries import account_lock, ledger_post_entry
from apps.ledger.services.lots import add_months
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def types(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    coins = PointType.objects.create(code="coins", name="Coins", expiry=PointType.Expiry.YEAR_END, position=1)
    stars = PointType.objects.create(code="stars", name="Stars", expiry=PointType.Expiry.ROLLING, expiry_months=2, position=2)
    exp = PointType.objects.create(code="exp", name="Exp", spendable=False, position=3)
    return coins, stars, exp


def credit(user, point_type, amount, earned_at, key):
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk)
        # A credit adjustment dated like a backfilled award: a lot with the type's expiry.
        return ledger_post_entry(
            account=account,
            amount=amount,
            kind="adjustment",
            idempotency_key=key,
            earned_at=earned_at,
            point_type_id=point_type.pk,
        )


def spend(user, point_type, amount, key):
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk)
        ledger_post_entry(account=account, amount=-amount, kind="spend", idempotency_key=key, point_type_id=point_type.pk)


@pytest.fixture
def alice(types):
    coins, stars, exp = types
    alice = UserFactory(username="alice")
    now = timezone.now()
    last_year = local(now).year - 1
    credit(alice, coins, 30, datetime(last_year, 3, 1, 12, tzinfo=SHANGHAI), "c-old")  # expires next 1 January
    credit(alice, coins, 20, datetime(last_year, 7, 1, 12, tzinfo=SHANGHAI), "c-old-2")  # the same midnight
    credit(alice, coins, 15, now, "c-new")  # the January after
    credit(alice, stars, 8, now - timedelta(days=1), "s-1")  # two months after earning
    credit(alice, exp, 99, now, "e-1")  # never
    spend(alice, coins, 5, "shop")  # the soonest first
    return alice


class TestOfAUser:
    def test_by_type_and_local_day_soonest_first_without_what_never_expires(self, alice, types):
        coins, stars, _ = types
        rows = expiring_of(user_id=alice.pk)
        this_year = local(timezone.now()).year
        summary = [(row.point_type.code, row.day.isoformat(), row.points) for row in rows]
        stars_day = local(add_months(timezone.now() - timedelta(days=1), 2)).date()
        expected = [
            ("coins", f"{this_year + 1}-01-01", 45),
            ("stars", stars_day.isoformat(), 8),
            ("coins", f"{this_year + 2}-01-01", 15),
        ]
        assert sorted(summary, key=lambda r: r[1]) == sorted(expected, key=lambda r: r[1])
        assert [r[1] for r in summary] == sorted(r[1] for r in summary)
        # The annual 清零 is the local midnight that starts the day.
        assert local(rows[0].expires_at).strftime("%H:%M") == "00:00" and not rows[0].due
        assert [row.points for row in expiring_of(user_id=alice.pk, point_type_id=stars.pk)] == [8]

    def test_on_my_points(self, client, alice):
        client.force_login(alice)
        page = client.get(reverse("my-points")).content.decode()
        assert 'id="expiring"' in page
        assert page.count('class="expiring-row"') == 3
        assert "Spending uses the points that expire soonest first." in page

    def test_my_points_says_nothing_when_nothing_expires(self, client, types):
        bob = UserFactory(username="bob")
        credit(bob, types[2], 5, timezone.now(), "e-bob")
        client.force_login(bob)
        assert 'id="expiring"' not in client.get(reverse("my-points")).content.decode()

    def test_through_the_api(self, client, alice):
        client.force_login(alice)
        body = client.get("/api/me/expiring").json()
        assert [(row["point_type"], row["points"], row["due"]) for row in body["expiring"]][0] == ("coins", 45, False)
        assert len(body["expiring"]) == 3
        only = client.get("/api/me/expiring?point_type=stars").json()["expiring"]
        assert [(row["point_type"], row["points"]) for row in only] == [("stars", 8)]
        missing = client.get("/api/me/expiring?point_type=gold")
        assert missing.status_code == 404 and missing.json()["error"] == "unknown_point_type"

    def test_the_api_needs_a_sign_in(self, client, alice):
        response = client.get("/api/me/expiring")
        assert response.status_code == 401 and response.json()["error"] == "not_signed_in"

    def test_points_past_their_end_are_due_at_the_next_run(self, types):
        coins = types[0]
        bob = UserFactory(username="bob")
        credit(bob, coins, 7, datetime(2020, 5, 1, tzinfo=SHANGHAI), "c-due")
        (row,) = expiring_of(user_id=bob.pk)
        assert (row.day.isoformat(), row.points, row.due) == ("2022-01-01", 7, True)


class TestPerMonth:
    def test_each_month_ahead_per_type_with_its_users(self, alice, types):
        coins, stars, _ = types
        bob = UserFactory(username="bob")
        credit(bob, coins, 10, datetime(local(timezone.now()).year - 1, 9, 9, tzinfo=SHANGHAI), "b-1")
        credit(bob, coins, 4, datetime(2020, 1, 1, tzinfo=SHANGHAI), "b-due")
        months, rows = expiring_by_month(months=14)
        assert len(months) == 14 and months[0] == local(timezone.now()).date().replace(day=1)
        found = {(row.point_type.code, row.overdue, row.month.isoformat()[:7]): (row.points, row.accounts) for row in rows}
        next_january = f"{local(timezone.now()).year + 1}-01"
        assert found[("coins", True, months[0].isoformat()[:7])] == (4, 1)
        assert found[("coins", False, next_january)] == (55, 2)
        assert sum(points for (code, *_), (points, _) in found.items() if code == "stars") == 8
        assert not any(code == "exp" for code, *_ in found)

    def test_the_admin_page_for_those_who_see_accounts(self, client, alice):
        url = reverse("admin:ledger_pointlot_changelist")
        operator = UserFactory(username="olga", is_staff=True)
        operator.groups.add(Group.objects.get(name="ledger operators"))
        client.force_login(operator)
        page = client.get(url)
        assert page.status_code == 200
        text = page.content.decode()
        assert "Points expiring per month" in text and 'id="expiring"' in text
        assert f"{local(timezone.now()).year + 1}-01" in text and "45" in text
        section = client.get(reverse("admin:jifen_section", kwargs={"key": "users-ledger"})).content.decode()
        assert url in section
        editor = UserFactory(username="eddie", is_staff=True)
        editor.groups.add(Group.objects.get(name="rule editors"))
        client.force_login(editor)
        assert client.get(url).status_code == 403

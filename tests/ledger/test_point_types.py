"""Point types and levels in the admin, and everything per type there: adjustments, accounts, a user's page (SPEC §11)."""

import re
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.ledger.models import Account, Adjustment, Level, PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.ledger.services.adjustments import AdjustmentRefused, adjustment_request
from apps.ledger.services.entries import account_lock, ledger_post_entry
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.ledger.conftest import REQUEST, give_points, make_operator

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def exp(db):
    kind = PointType.objects.create(code="exp", name="Experience", spendable=False, position=1)
    for name, threshold in (("Newcomer", 0), ("Beginner", 100), ("Skilled", 500)):
        Level.objects.create(point_type=kind, name=name, threshold=threshold)
    return kind


def earn(user, amount: int, point_type: PointType | None = None) -> ScoreRecord:
    with transaction.atomic():
        account = account_lock(user_id=user.pk, point_type_id=point_type.pk if point_type else None)
        return ledger_post_entry(account=account, amount=amount, kind="award", idempotency_key=f"t:{uuid.uuid4()}")


def page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def type_form(**fields) -> dict:
    """The point type page's form: the type's fields and its levels inline."""
    levels = fields.pop("levels", [])
    data = {
        "code": "gems",
        "name": "Gems",
        "position": 2,
        "spendable": "on",
        "expiry": "never",
        "expiry_months": "",
        "adjustment_approval_above": "",
        "levels-TOTAL_FORMS": len(levels),
        "levels-INITIAL_FORMS": 0,
    }
    for i, (name, threshold) in enumerate(levels):
        data[f"levels-{i}-name"], data[f"levels-{i}-threshold"] = name, threshold
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


class TestPointTypeAdmin:
    def test_the_list_says_each_types_policy_and_levels_under_its_own_section(self, client, superuser, exp):
        html = page(client, reverse("admin:ledger_pointtype_changelist"))
        assert "Experience" in html and "Newcomer&nbsp;0 · Beginner&nbsp;100 · Skilled&nbsp;500" in html
        assert html.count('<td class="field-expiry_column">never</td>') == 2
        index = page(client, reverse("admin:index"))
        assert 'id="points-pointtype"' in index and 'id="points-level"' in index

    def test_a_new_type_with_its_levels_and_its_history(self, client, superuser):
        response = client.post(
            reverse("admin:ledger_pointtype_add"),
            type_form(expiry="rolling", expiry_months=12, adjustment_approval_above=500, levels=[("Bronze", 0), ("Silver", 50)]),
        )
        assert response.status_code == 302, response.content.decode()[:2000]
        gems = PointType.objects.get(code="gems")
        assert (gems.expiry, gems.expiry_months, gems.adjustment_approval_above) == ("rolling", 12, 500)
        assert list(gems.levels.order_by("threshold").values_list("name", "threshold")) == [("Bronze", 0), ("Silver", 50)]
        assert gems.history.latest().history_user == superuser
        assert Level.objects.get(name="Silver").history.latest().history_user == superuser
        listed = page(client, reverse("admin:ledger_pointtype_changelist"))
        assert "12 months after earning" in listed
        assert page(client, reverse("admin:ledger_pointtype_history", args=[gems.pk]))

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"levels": [("Bronze", 0), ("bronze", 50)]}, "Two levels are called bronze."),
            ({"levels": [("Bronze", 0), ("Silver", 0)]}, "Two levels start at 0 points."),
            ({"levels": [("Bronze", -1)]}, "A threshold is a number of earned points: 0 or more."),
            ({"expiry": "rolling"}, "Say after how many months the points expire (1 to 120)."),
            ({"name": "Experience"}, "Another point type is called Experience"),
            ({"code": "exp"}, "Point type with this Code already exists."),
        ],
    )
    def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(self, client, superuser, exp, fields, message):
        before = (PointType.objects.count(), Level.objects.count())
        response = client.post(reverse("admin:ledger_pointtype_add"), type_form(**fields))
        assert response.status_code == 200
        assert message in response.content.decode()
        assert (PointType.objects.count(), Level.objects.count()) == before

    def test_a_level_name_or_threshold_taken_in_the_type_is_refused_on_the_level_page(self, client, superuser, exp):
        url = reverse("admin:ledger_level_add")
        html = client.post(url, {"point_type": exp.pk, "name": "beginner", "threshold": 300}).content.decode()
        assert "This point type already has a level called beginner." in html
        html = client.post(url, {"point_type": exp.pk, "name": "Master", "threshold": 500}).content.decode()
        assert "This point type already has a level at 500 points." in html
        assert client.post(url, {"point_type": exp.pk, "name": "Master", "threshold": 2000}).status_code == 302
        # Another type may use the same names and thresholds.
        default = default_point_type_id()
        assert client.post(url, {"point_type": default, "name": "Master", "threshold": 2000}).status_code == 302

    def test_changing_the_expiry_says_it_applies_from_now_on(self, client, superuser, exp):
        form = page(client, reverse("admin:ledger_pointtype_change", args=[exp.pk]))
        assert "applies to points credited from the moment it is saved" in form
        data = type_form(code="exp", name="Experience", spendable=None, expiry="year_end", position=1)
        response = client.post(reverse("admin:ledger_pointtype_change", args=[exp.pk]), data, follow=True)
        [message] = [str(m) for m in response.context["messages"] if m.level_tag == "warning"]
        assert "Experience now expires: at the end of the year after earning." in message
        assert "points already credited keep the expiry date they were given" in message
        assert PointType.objects.get(pk=exp.pk).expiry == "year_end"
        assert Level.objects.filter(point_type=exp).count() == 3  # the levels were not in the form's rows: kept

    def test_the_default_type_is_never_deleted(self, client, superuser):
        default = PointType.objects.get(pk=default_point_type_id())
        html = page(client, reverse("admin:ledger_pointtype_change", args=[default.pk]))
        assert 'id="delete-blockers"' in html and "It is the default type" in html
        assert reverse("admin:ledger_pointtype_delete", args=[default.pk]) not in html
        assert client.post(reverse("admin:ledger_pointtype_delete", args=[default.pk]), {"post": "yes"}).status_code == 403
        assert PointType.objects.filter(pk=default.pk).exists()

    def test_a_type_in_use_is_not_deleted_and_its_code_is_fixed(self, client, superuser, exp):
        earn(UserFactory(username="alice"), 5, exp)
        html = page(client, reverse("admin:ledger_pointtype_change", args=[exp.pk]))
        assert "It is in use by accounts, ledger entries" in html
        assert 'name="code"' not in html  # read-only once used
        assert client.post(reverse("admin:ledger_pointtype_delete", args=[exp.pk]), {"post": "yes"}).status_code == 403
        assert PointType.objects.filter(pk=exp.pk).exists()

    def test_a_type_a_rule_names_is_not_deleted(self, client, superuser, exp):
        TaskConfigFactory(task_type="post")
        ScoreRuleFactory(task_type="post", point_type=exp, status="editing")
        html = page(client, reverse("admin:ledger_pointtype_change", args=[exp.pk]))
        assert "It is in use by score rules." in html

    def test_an_unused_type_is_deleted_with_its_levels(self, client, superuser, exp):
        confirm = page(client, reverse("admin:ledger_pointtype_delete", args=[exp.pk]))
        assert "Skilled" in confirm  # its levels go with it, and the page says so
        client.post(reverse("admin:ledger_pointtype_delete", args=[exp.pk]), {"post": "yes"})
        assert not PointType.objects.filter(pk=exp.pk).exists() and not Level.objects.exists()

    def test_levels_list_by_type_with_history(self, client, superuser, exp):
        default = PointType.objects.get(pk=default_point_type_id())
        Level.objects.create(point_type=default, name="Gold", threshold=1000)
        html = page(client, reverse("admin:ledger_level_changelist"), point_type__id__exact=exp.pk)
        assert "Beginner" in html and "from 100 earned points" in html and "Gold" not in html
        level = Level.objects.get(name="Beginner")
        assert page(client, reverse("admin:ledger_level_history", args=[level.pk]))


class TestWhoManagesPointTypes:
    @pytest.mark.parametrize(
        ("group", "may_change"),
        [("rule approvers", True), ("rule editors", False), ("ledger operators", False), ("auditors", False)],
    )
    def test_rule_approvers_manage_types_and_levels_the_others_see_them(self, client, exp, group, may_change):
        user = UserFactory(username="someone", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        client.force_login(user)
        assert client.get(reverse("admin:ledger_pointtype_changelist")).status_code == 200
        assert client.get(reverse("admin:ledger_level_changelist")).status_code == 200
        response = client.post(reverse("admin:ledger_pointtype_add"), type_form())
        assert PointType.objects.filter(code="gems").exists() == may_change, response.status_code


class TestAdjustmentsPerType:
    @pytest.fixture
    def alice(self, exp):
        alice = UserFactory(username="alice")
        give_points(alice, 50)
        earn(alice, 30, exp)
        return alice

    def test_an_adjustment_of_a_type_moves_that_types_balance(self, client, alice, exp, threshold):
        olga = make_operator("olga", REQUEST)
        client.force_login(olga)
        form = page(client, reverse("admin:ledger_adjustment_add"), user=alice.pk)
        assert 'name="point_type"' in form and "Each point type is counted apart" in form
        token = re.search(r'name="request_token" value="([0-9a-f-]{36})"', form).group(1)
        data = {"user": alice.pk, "point_type": exp.pk, "amount": 20, "reason": "event prize", "request_token": token}
        response = client.post(reverse("admin:ledger_adjustment_add"), data, follow=True)
        assert "Posted +20 Experience for alice." in [str(m) for m in response.context["messages"]]
        balances = dict(Account.objects.filter(user=alice).values_list("point_type__code", "balance"))
        assert balances == {"points": 50, "exp": 50}
        adjustment = Adjustment.objects.get()
        assert adjustment.point_type == exp and adjustment.entry.point_type == exp
        # Credit adjustments count toward levels: 30 awarded + 20 credited.
        assert Account.objects.get(user=alice, point_type=exp).earned_total == 50

    def test_the_form_without_a_type_adjusts_the_default_one(self, alice, exp, threshold):
        result = adjustment_request(
            user_id=alice.pk, amount=5, reason="x", request_token=uuid.uuid4(), actor=make_operator("olga", REQUEST)
        )
        assert result.adjustment.point_type_id == default_point_type_id()
        assert Account.objects.get(user=alice, point_type_id=default_point_type_id()).balance == 55

    def test_a_debit_below_zero_is_judged_on_the_types_own_balance(self, alice, exp, threshold):
        olga = make_operator("olga", REQUEST)
        with pytest.raises(AdjustmentRefused, match=r"balance 30, adjustment -31"):
            adjustment_request(
                user_id=alice.pk, amount=-31, reason="x", request_token=uuid.uuid4(), actor=olga, point_type_id=exp.pk
            )
        assert not Adjustment.objects.exists()

    def test_the_threshold_counts_each_type_apart(self, alice, exp, threshold):
        olga = make_operator("olga", REQUEST)

        def ask(amount, kind=None):
            return adjustment_request(
                user_id=alice.pk,
                amount=amount,
                reason="x",
                request_token=uuid.uuid4(),
                actor=olga,
                point_type_id=kind.pk if kind else None,
            ).adjustment.status

        # 100 of the default type and 100 of exp: each at its own limit, both posted at once.
        assert ask(100) == "posted" and ask(100, exp) == "posted"
        assert ask(1, exp) == "pending" and ask(1) == "pending"

    def test_a_type_may_set_its_own_threshold(self, alice, exp, threshold):
        exp.adjustment_approval_above = 1000
        exp.save()
        olga = make_operator("olga", REQUEST)
        common = {"user_id": alice.pk, "reason": "x", "actor": olga}
        assert adjustment_request(amount=900, request_token=uuid.uuid4(), point_type_id=exp.pk, **common).adjustment.status == (
            "posted"
        )
        assert adjustment_request(amount=101, request_token=uuid.uuid4(), **common).adjustment.status == "pending"

    def test_the_list_shows_and_filters_the_type(self, client, superuser, alice, exp, threshold):
        olga = make_operator("olga", REQUEST)
        adjustment_request(user_id=alice.pk, amount=3, reason="plain", request_token=uuid.uuid4(), actor=olga)
        adjustment_request(
            user_id=alice.pk, amount=4, reason="experienced", request_token=uuid.uuid4(), actor=olga, point_type_id=exp.pk
        )
        # One from before point types names none: it is the default type's.
        Adjustment.objects.filter(reason="plain").update(point_type=None)
        url = reverse("admin:ledger_adjustment_changelist")
        html = page(client, url)
        assert '<td class="field-point_type_column">Experience</td>' in html
        assert '<td class="field-point_type_column">Points</td>' in html
        only_exp = page(client, url, point_type=exp.pk)
        assert "experienced" in only_exp and "plain" not in only_exp
        only_default = page(client, url, point_type=default_point_type_id())
        assert "plain" in only_default and "experienced" not in only_default


class TestAccountsAndTheUserPage:
    def test_the_accounts_list_shows_and_filters_the_type_without_counting_all(self, client, superuser, exp):
        alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
        give_points(alice, 5)
        give_points(bob, 6)
        earn(bob, 7, exp)
        url = reverse("admin:ledger_account_changelist")
        html = page(client, url)
        assert html.count('<td class="field-point_type nowrap">') == 3 and "Experience" in html
        from django.db import connection

        with CaptureQueriesContext(connection) as queries:
            only_exp = page(client, url, point_type=exp.pk)
        assert only_exp.count('<td class="field-point_type nowrap">') == 1 and ">bob<" in only_exp
        counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert counts and all("LIMIT" in sql.upper() for sql in counts), counts

    def test_the_user_page_shows_each_types_balance_earned_and_level(self, client, superuser, exp):
        alice = UserFactory(username="alice")
        give_points(alice, 12)
        earn(alice, 130, exp)
        with transaction.atomic():
            account = account_lock(user_id=alice.pk, point_type_id=exp.pk)
            ledger_post_entry(account=account, amount=-40, kind="spend", idempotency_key="spent")
        html = page(client, reverse("admin:ledger_account_user", args=[alice.pk]))
        row = html.split('id="standing-exp"')[1].split("</tr>")[0]
        assert '<td class="num balance-of-type">90</td>' in row and '<td class="num earned">130</td>' in row
        assert '<td class="level">Beginner</td>' in row and "Skilled in 370 points" in row
        assert 'aria-valuenow="7"' in row  # 30 of the 400 points from Beginner to Skilled
        assert re.search(r'id="balance"[^>]*>12<', html)
        assert html.count('<td class="entry-type">Experience</td>') == 2
        assert html.count('<td class="entry-type">Points</td>') == 1

    def test_the_history_is_of_every_type_or_of_one(self, client, superuser, exp):
        alice = UserFactory(username="alice")
        for _ in range(3):
            give_points(alice, 1)
            earn(alice, 10, exp)
        url = reverse("admin:ledger_account_user", args=[alice.pk])
        html = page(client, url)
        assert html.count('class="entry"') == 6 and 'id="history-types"' in html
        only_exp = page(client, url, type="exp")
        assert only_exp.count('class="entry"') == 3 and "Points</td>" not in only_exp.split('id="history"')[1]
        # Older entries of one type, a page at a time, stay in that type.
        from apps.ledger.selectors.ledger import user_ledger

        first = user_ledger(user_id=alice.pk, point_type_id=exp.pk, entries=2)
        assert [e.seq for e in first.entries] == [3, 2] and first.older_entries_before == 2
        older = user_ledger(user_id=alice.pk, point_type_id=exp.pk, entries=2, before=first.older_entries_before)
        assert [e.seq for e in older.entries] == [1] and older.older_entries_before is None

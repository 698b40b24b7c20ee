"""The ScoreRule admin (SPEC §7): filters, badges, workflow buttons, frozen fields, history, live figures."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.rules.models import ScoreRule, ScoreRuleObjectPoints
from apps.rules.selectors.rules import rule_live_figures
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:rules_scorerule_changelist"


@pytest.fixture
def tasks():
    TaskConfigFactory(task_type="post")
    TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<id>\d+)/share/$", id_group_name="id")
    TaskConfigFactory(
        task_type="post-delete", interface_name=r"^/posts/(?P<id>\d+)/delete/$", id_group_name="id", reverses="post"
    )


def change_url(rule) -> str:
    return reverse("admin:rules_scorerule_change", args=[rule.pk])


def workflow_url(rule, step: str) -> str:
    return reverse("admin:rules_scorerule_workflow", args=[rule.pk, step])


def complete(user, task_type: str, business_id: str = "") -> None:
    event_process(
        event=Event(
            event_id=uuid.uuid4(), user_id=user.pk, task_type=task_type, occurred_at=timezone.now(), business_id=business_id
        )
    )


class TestChangelist:
    @pytest.fixture
    def rules(self, tasks):
        ScoreRuleFactory(task_type="post", score_type="post-daily", kind="count", statistical_period="day", status="active")
        ScoreRuleFactory(task_type="post", score_type="post-streak", kind="streak", statistical_period="week", status="editing")
        ScoreRuleFactory(task_type="share", score_type="share-once", kind="count", statistical_period="none", status="retired")

    @pytest.mark.parametrize(
        ("query", "shown"),
        [
            ({"status__exact": "active"}, {"post-daily"}),
            ({"kind__exact": "streak"}, {"post-streak"}),
            ({"statistical_period__exact": "none"}, {"share-once"}),
            ({"task_type__exact": "post"}, {"post-daily", "post-streak"}),
            ({"q": "share"}, {"share-once"}),
            ({"q": "streak", "status__exact": "editing"}, {"post-streak"}),
        ],
    )
    def test_filters_and_search(self, client, operator, rules, query, shown):
        page = client.get(reverse(CHANGELIST), query).content.decode()
        listed = {code for code in ("post-daily", "post-streak", "share-once") if f">{code}</a>" in page}
        assert listed == shown

    def test_status_badges(self, client, operator, rules):
        page = client.get(reverse(CHANGELIST)).content.decode()
        for status, label in (("active", "active"), ("editing", "editing"), ("retired", "retired")):
            assert f'<span class="jifen-badge jifen-badge-{status}">{label}</span>' in page

    def test_actions_change_status_through_the_services(self, client, operator, rules):
        streak = ScoreRule.objects.get(score_type="post-streak")
        daily = ScoreRule.objects.get(score_type="post-daily")
        client.post(reverse(CHANGELIST), {"action": "activate", "_selected_action": [streak.pk], "post": "yes"})
        client.post(reverse(CHANGELIST), {"action": "retire", "_selected_action": [daily.pk], "post": "yes"})
        client.post(reverse(CHANGELIST), {"action": "copy_as_draft", "_selected_action": [daily.pk]})
        statuses = dict(ScoreRule.objects.values_list("score_type", "status"))
        assert statuses == {
            "post-daily": "retired",
            "post-streak": "active",
            "share-once": "retired",
            "post-daily-copy": "editing",
        }
        assert ScoreRule.objects.get(score_type="post-daily").history.latest().history_change_reason == "active → retired"


class TestChangePage:
    def test_activate_and_retire_buttons(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", status="editing")
        page = client.get(change_url(rule)).content.decode()
        assert workflow_url(rule, "activate") in page and workflow_url(rule, "retire") not in page
        response = client.post(workflow_url(rule, "activate"), follow=True)
        assert "Done: post-each is now active." in response.content.decode()
        assert workflow_url(rule, "retire") in response.content.decode()
        client.post(workflow_url(rule, "retire"))
        rule.refresh_from_db()
        assert rule.status == "retired"
        assert [r.history_user for r in rule.history.all()[:2]] == [operator, operator]

    def test_copy_as_draft_keeps_per_object_points(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each", points=2)
        ScoreRuleObjectPoints.objects.create(rule=rule, business_id="7", points=20)
        response = client.post(workflow_url(rule, "copy_as_draft"))
        copy = ScoreRule.objects.get(score_type="share-each-copy")
        assert response["Location"] == change_url(copy)
        assert list(copy.object_points.values_list("business_id", "points")) == [("7", 20)]

    def test_frozen_fields_are_read_only_on_an_active_rule(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each", points=2)
        ScoreRuleObjectPoints.objects.create(rule=rule, business_id="7", points=20)
        page = client.get(change_url(rule)).content.decode()
        for name in ScoreRule.FROZEN_FIELDS:
            assert f'name="{name}"' not in page, name
        assert 'name="status"' not in page
        assert 'name="score_desc"' in page and 'name="end_time_0"' in page
        assert 'name="object_points-0-points"' not in page
        draft = ScoreRuleFactory(task_type="share", score_type="draft", status="editing")
        page = client.get(change_url(draft)).content.decode()
        assert 'name="points"' in page and 'name="kind"' in page

    def test_history_shows_the_diff_and_the_author(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", status="editing", points=5)
        data = {
            "task_type": "post",
            "score_type": "post-each",
            "score_desc": "",
            "kind": "count",
            "points": 7,
            "point_type": rule.point_type_id,
            "statistical_period": "day",
            "required_number_of_times": 1,
            "can_repeat": "on",
            "cooldown": "",
            "cooldown_scope": "user",
            "start_time_0": "",
            "start_time_1": "",
            "end_time_0": "",
            "end_time_1": "",
            "object_points-TOTAL_FORMS": 0,
            "object_points-INITIAL_FORMS": 0,
        }
        response = client.post(change_url(rule), data)
        assert response.status_code == 302, response.content.decode()[:3000]
        rule.refresh_from_db()
        assert rule.points == 7
        assert rule.history.latest().history_user == operator
        page = client.get(reverse("admin:rules_scorerule_history", args=[rule.pk])).content.decode()
        assert "<strong>Points:</strong>\n                    5" in page
        assert "7" in page and ">op</a>" in page and "changed in the admin" in page

    def test_a_refused_change_explains_itself(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", status="editing")
        data = {
            "task_type": "post",
            "score_type": "post-each",
            "kind": "streak",
            "points": 1,
            "statistical_period": "none",
            "required_number_of_times": 1,
            "start_time_0": "2026-12-02",
            "start_time_1": "00:00",
            "end_time_0": "2026-12-01",
            "end_time_1": "00:00",
            "object_points-TOTAL_FORMS": 0,
            "object_points-INITIAL_FORMS": 0,
        }
        page = client.post(change_url(rule), data).content.decode()
        assert "A streak needs a period (day, week, month or year)." in page
        assert "The end time must be after the start time." in page
        assert ScoreRule.objects.get(pk=rule.pk).kind == "count"

    def test_points_beyond_the_bound_are_refused_with_a_message(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", status="editing", points=5)
        data = {
            "task_type": "post",
            "score_type": "post-each",
            "kind": "count",
            "points": 2**62,
            "statistical_period": "day",
            "required_number_of_times": 1,
            "object_points-TOTAL_FORMS": 1,
            "object_points-INITIAL_FORMS": 0,
            "object_points-0-business_id": "42",
            "object_points-0-points": 1_000_000_001,
        }
        page = client.post(change_url(rule), data).content.decode()
        assert page.count("At most 1000000000 points in one amount") == 2
        assert ScoreRule.objects.get(pk=rule.pk).points == 5
        assert not ScoreRuleObjectPoints.objects.exists()


class TestLiveFigures:
    def test_recipients_awards_today_and_points_in_total(self, client, operator, tasks):
        rule = ScoreRuleFactory(
            task_type="share",
            score_type="share-first",
            points=3,
            statistical_period="none",
            award_limit_per_period=1,
            number_limit_all=2,
        )
        ScoreRuleObjectPoints.objects.create(rule=rule, business_id="7", points=10)
        alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
        complete(alice, "share", "7")  # 10 points (per-object amount)
        complete(bob, "share", "1")  # 3 points
        complete(bob, "share", "2")  # no award: one per period
        complete(carol, "share", "1")  # no award: both places taken
        figures = rule_live_figures(rule_id=rule.pk)
        assert (figures.recipients, figures.recipient_cap, figures.places_left) == (2, 2, 0)
        assert (figures.awards_today, figures.points_today, figures.awards_total, figures.points_total) == (2, 13, 2, 13)
        tomorrow = rule_live_figures(rule_id=rule.pk, at=timezone.now() + timedelta(days=1))
        assert (tomorrow.awards_today, tomorrow.points_today, tomorrow.points_total) == (0, 0, 13)

        page = client.get(change_url(rule)).content.decode()
        assert "2 of 2 (0 places left)" in page
        assert "2 (13 points)" in page
        assert "13 in 2 awards" in page

    def test_reversals_are_netted_and_other_rules_not_counted(self, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
        ScoreRuleFactory(task_type="post", score_type="post-other", points=100)
        alice = UserFactory(username="alice")
        complete(alice, "post", "1")
        complete(alice, "post", "2")
        complete(alice, "post-delete", "2")
        figures = rule_live_figures(rule_id=rule.pk)
        assert (figures.awards_today, figures.points_today, figures.awards_total, figures.points_total) == (2, 5, 2, 5)
        assert figures.recipient_cap is None

    def test_an_uncapped_rule_says_so(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
        page = client.get(change_url(rule)).content.decode()
        assert "no cap" in page and "0 (0 points)" in page and "0 in 0 awards" in page


class TestObjectPointsAdmin:
    def test_the_rule_page_links_to_its_own_rows(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each")
        other = ScoreRuleFactory(task_type="share", score_type="share-other")
        ScoreRuleObjectPoints.objects.create(rule=rule, business_id="mine-7", points=20)
        ScoreRuleObjectPoints.objects.create(rule=other, business_id="theirs-8", points=20)
        url = reverse("admin:rules_scoreruleobjectpoints_changelist") + f"?rule__id__exact={rule.pk}"
        assert url.replace("&", "&amp;") in client.get(change_url(rule)).content.decode()
        page = client.get(url).content.decode()
        assert "mine-7" in page and "theirs-8" not in page

    def test_amounts_of_an_active_rule_cannot_be_changed_or_deleted(self, client, operator, tasks):
        rule = ScoreRuleFactory(task_type="share", score_type="share-each")
        row = ScoreRuleObjectPoints.objects.create(rule=rule, business_id="7", points=20)
        delete = reverse("admin:rules_scoreruleobjectpoints_delete", args=[row.pk])
        assert client.post(delete, {"post": "yes"}).status_code == 403
        change = reverse("admin:rules_scoreruleobjectpoints_change", args=[row.pk])
        client.post(change, {"rule": rule.pk, "business_id": "7", "points": 99})
        changelist = reverse("admin:rules_scoreruleobjectpoints_changelist")
        assert "delete_selected" not in client.get(changelist).content.decode()
        assert ScoreRuleObjectPoints.objects.get().points == 20

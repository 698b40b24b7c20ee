"""The review flow (issue 14): an editor submits a draft, an approver sees it queued with its dry run,
then activates it after a confirmation page or sends it back with a comment; both steps in history."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from apps.core.review import ReviewState
from apps.rules.models import ScoreRule
from apps.rules.selectors.review import review_queue, review_waiting_count
from apps.rules.services import workflow
from apps.tasks import services as task_services
from apps.tasks.models import TaskConfig
from tests.factories import ScoreRuleFactory, TaskConfigFactory
from tests.test_roles import member

pytestmark = pytest.mark.django_db

QUEUE = "/admin/rules/scorerule/review/"


def step_url(obj, step: str) -> str:
    name = "rules_scorerule" if isinstance(obj, ScoreRule) else "tasks_taskconfig"
    return reverse(f"admin:{name}_workflow", args=[obj.pk, step])


def change_url(obj) -> str:
    name = "rules_scorerule" if isinstance(obj, ScoreRule) else "tasks_taskconfig"
    return reverse(f"admin:{name}_change", args=[obj.pk])


@pytest.fixture
def people():
    return member("rule editors", "eddie"), member("rule approvers", "anna")


@pytest.fixture
def rule_draft():
    TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")
    return ScoreRuleFactory(task_type="post", score_type="post-daily", status=ScoreRule.Status.EDITING, points=5)


def reload(obj):
    return type(obj).all_objects.get(pk=obj.pk)


class TestServices:
    def test_submit_then_send_back_then_submit_again(self, people, rule_draft):
        eddie, anna = people
        workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        assert reload(rule_draft).review_state == ReviewState.SUBMITTED and review_waiting_count() == 1
        with pytest.raises(ValidationError):  # twice is a mistake, said so
            workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        with pytest.raises(ValidationError):  # a comment is what the editor reads: required
            workflow.score_rule_send_back(rule=rule_draft, actor=anna, comment="  ")
        workflow.score_rule_send_back(rule=rule_draft, actor=anna, comment="5 points a day is too many")
        stored = reload(rule_draft)
        assert (stored.review_state, stored.review_by, stored.review_comment) == (
            ReviewState.SENT_BACK,
            anna,
            "5 points a day is too many",
        )
        assert stored.status == ScoreRule.Status.EDITING and review_queue().sent_back_rules == (stored,)
        workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        reasons = [(h.history_user, h.history_change_reason) for h in reload(rule_draft).history.order_by("history_id")]
        assert reasons[-3:] == [(eddie, "submitted for review"), (anna, "sent back"), (eddie, "submitted for review")]

    def test_each_role_only_its_own_step(self, people, rule_draft):
        eddie, anna = people
        with pytest.raises(PermissionDenied):
            workflow.score_rule_submit_for_review(rule=rule_draft, actor=anna)  # approvers do not edit
        workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        with pytest.raises(PermissionDenied):
            workflow.score_rule_send_back(rule=rule_draft, actor=eddie, comment="self-review")
        assert reload(rule_draft).review_state == ReviewState.SUBMITTED

    def test_only_drafts_are_reviewed(self, people):
        eddie, _ = people
        live = TaskConfigFactory(task_type="live")
        with pytest.raises(ValidationError):
            task_services.task_config_submit_for_review(config=live, actor=eddie)
        assert reload(live).review_state == ReviewState.NONE

    def test_activating_takes_it_out_of_the_queue(self, people, rule_draft):
        eddie, anna = people
        workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        workflow.score_rule_activate(rule=rule_draft, actor=anna)
        assert review_queue().rules == () and review_waiting_count() == 0


class TestAdmin:
    def test_the_whole_flow_as_editor_and_approver(self, client, people, rule_draft):
        eddie, anna = people
        config = TaskConfigFactory(task_type="like", interface_name=r"^/posts/(?P<id>\d+)/like/$", status="editing")

        client.force_login(eddie)
        page = client.get(change_url(rule_draft)).content.decode()
        assert step_url(rule_draft, "submit_for_review") in page and step_url(rule_draft, "activate") not in page
        done = client.post(step_url(rule_draft, "submit_for_review"), follow=True).content.decode()
        assert "ost-daily is waiting for review: approvers see it in the review queue." in done  # the admin capitalizes
        assert 'id="review-note"' in done and step_url(rule_draft, "submit_for_review") not in done
        client.post(step_url(config, "submit_for_review"))
        queue = client.get(QUEUE).content.decode()
        assert 'id="review-rule-' in queue and 'id="review-config-' in queue
        assert step_url(rule_draft, "activate") not in queue  # an editor reads the queue, acts on nothing
        assert client.get(step_url(rule_draft, "send_back")).status_code == 403

        client.force_login(anna)
        queue = client.get(QUEUE).content.decode()
        assert "What post-daily would have awarded" in queue and 'id="dry-run-points"' in queue  # the dry run's figures
        assert step_url(rule_draft, "activate") in queue and step_url(config, "put_in_use") in queue
        # Send the config back: the comment is asked for on its page, and required.
        asked = client.get(step_url(config, "send_back")).content.decode()
        assert 'name="comment"' in asked and "goes back to its editor" in asked
        refused = client.post(step_url(config, "send_back"), {"comment": ""}, follow=True).content.decode()
        assert "Say what should change" in refused and reload(config).review_state == ReviewState.SUBMITTED
        client.post(step_url(config, "send_back"), {"comment": "Narrow the regex to numeric ids."})
        assert reload(config).review_state == ReviewState.SENT_BACK
        # Activate the rule, after its confirmation page with the dry run.
        asked = client.get(step_url(rule_draft, "activate")).content.decode()
        assert "earn points under post-daily" in asked and 'id="dry-run-points"' in asked
        assert "It leaves the review queue." in asked
        assert reload(rule_draft).status == ScoreRule.Status.EDITING
        client.post(step_url(rule_draft, "activate"))
        assert reload(rule_draft).status == ScoreRule.Status.ACTIVE

        client.force_login(eddie)
        back = client.get(change_url(config)).content.decode()
        assert "Sent back by anna" in back and "Narrow the regex to numeric ids." in back
        assert step_url(config, "submit_for_review") in back
        queue = client.get(QUEUE).content.decode()
        assert 'id="review-empty"' in queue and 'id="review-sent-back"' in queue
        history = client.get(reverse("admin:tasks_taskconfig_history", args=[config.pk])).content.decode()
        assert "submitted for review" in history and "sent back" in history
        assert TaskConfig.objects.get(pk=config.pk).status == TaskConfig.Status.EDITING

    def test_auditors_read_the_queue_and_others_do_not(self, client, people, rule_draft):
        eddie, _ = people
        workflow.score_rule_submit_for_review(rule=rule_draft, actor=eddie)
        client.force_login(member("auditors", "audrey"))
        page = client.get(QUEUE).content.decode()
        assert "post-daily" in page and step_url(rule_draft, "activate") not in page
        client.force_login(member("ledger operators", "olga"))
        assert client.get(QUEUE).status_code == 200  # they may view rules (the ledger names them)

"""Authoring workflow (SPEC §4): editing → active → retired, frozen fields, copies, history."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from apps.rules.models import ScoreRule, ScoreRuleObjectPoints
from apps.rules.services.workflow import (
    score_rule_activate,
    score_rule_copy_as_draft,
    score_rule_create,
    score_rule_retire,
    score_rule_update,
)
from apps.tasks.models import TaskConfig
from apps.tasks.services import task_config_copy_as_draft, task_config_deprecate, task_config_put_in_use, task_config_update
from tests.factories import TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    # Writes drafts and moves them through the workflow: both roles (SPEC §7).
    user = UserFactory(username="operator", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=("rule editors", "rule approvers")))
    return user


@pytest.fixture
def draft(operator):
    TaskConfigFactory(task_type="post")
    return score_rule_create(actor=operator, task_type="post", score_type="post-each", points=5, statistical_period="day")


def test_a_new_rule_is_a_draft_and_its_author_is_in_history(draft, operator):
    assert draft.status == ScoreRule.Status.EDITING
    assert draft.history.latest().history_user == operator


def test_activate_then_retire(draft, operator):
    score_rule_activate(rule=draft, actor=operator)
    assert draft.status == ScoreRule.Status.ACTIVE
    score_rule_retire(rule=draft, actor=operator)
    assert draft.status == ScoreRule.Status.RETIRED
    assert [h.status for h in draft.history.order_by("history_date")] == ["editing", "active", "retired"]


@pytest.mark.parametrize("step", [score_rule_retire])
def test_a_draft_cannot_be_retired(draft, step):
    with pytest.raises(ValidationError, match="only one that is active can become retired"):
        step(rule=draft)


def test_a_retired_rule_cannot_come_back(draft):
    score_rule_activate(rule=draft)
    score_rule_retire(rule=draft)
    with pytest.raises(ValidationError, match="only one that is editing can become active"):
        score_rule_activate(rule=draft)
    with pytest.raises(ValidationError, match="Status cannot go from retired to active"):
        score_rule_update(rule=draft, status="active")


def test_drafts_can_change_anything(draft):
    score_rule_update(rule=draft, points=7, statistical_period="week")
    draft.refresh_from_db()
    assert (draft.points, draft.statistical_period) == (7, "week")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("points", 50),
        ("statistical_period", "week"),
        ("required_number_of_times", 2),
        ("can_repeat", False),
        ("task_type", "other"),
    ],
)
def test_frozen_fields_of_an_active_rule_are_refused_and_nothing_changes(draft, field, value):
    TaskConfigFactory(task_type="other")
    score_rule_activate(rule=draft)
    with pytest.raises(ValidationError) as refused:
        score_rule_update(rule=draft, **{field: value})
    assert field in refused.value.message_dict
    assert "copy as draft" in refused.value.message_dict[field][0]
    stored = ScoreRule.objects.get(pk=draft.pk)
    assert getattr(stored, field) != value


def test_model_validation_refuses_frozen_changes_too(draft):
    score_rule_activate(rule=draft)
    draft.points = 99
    with pytest.raises(ValidationError, match="cannot change while post-each is active"):
        draft.full_clean()


def test_description_and_end_of_window_stay_editable_on_active_rules(draft):
    from datetime import UTC, datetime

    score_rule_activate(rule=draft)
    score_rule_update(rule=draft, score_desc="Each post", end_time=datetime(2030, 1, 1, tzinfo=UTC))
    assert ScoreRule.objects.get(pk=draft.pk).score_desc == "Each post"


def test_copy_as_draft_keeps_settings_and_object_points(draft, operator):
    ScoreRuleObjectPoints.objects.create(rule=draft, business_id="42", points=20)
    score_rule_activate(rule=draft)
    first = score_rule_copy_as_draft(rule=draft, actor=operator)
    second = score_rule_copy_as_draft(rule=draft, actor=operator)
    assert (first.score_type, second.score_type) == ("post-each-copy", "post-each-copy-2")
    assert first.status == ScoreRule.Status.EDITING
    assert (first.points, first.task_type, first.statistical_period) == (5, "post", "day")
    assert list(first.object_points.values_list("business_id", "points")) == [("42", 20)]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"points": 0}, "points", "positive"),
        ({"kind": "streak", "statistical_period": "none"}, "statistical_period", "streak needs a period"),
        ({"task_type": "nope"}, "task_type", "No task config has the task type nope"),
        ({"kind": "sometimes"}, "kind", "not a valid choice"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message(fields, field, message):
    TaskConfigFactory(task_type="post")
    with pytest.raises(ValidationError) as refused:
        score_rule_create(**{"task_type": "post", "score_type": "r", "points": 1, **fields})
    assert message in " ".join(refused.value.message_dict[field])
    assert not ScoreRule.objects.exists()


class TestTaskConfigWorkflow:
    def test_put_in_use_deprecate_and_frozen_routing(self, operator):
        config = TaskConfigFactory(task_type="share", status=TaskConfig.Status.EDITING, interface_name=r"^/s/$")
        task_config_put_in_use(config=config, actor=operator)
        with pytest.raises(ValidationError, match="cannot change while share is in use"):
            task_config_update(config=config, interface_name=r"^/t/$")
        task_config_update(config=config, task_desc="Sharing")
        task_config_deprecate(config=config, actor=operator)
        assert TaskConfig.objects.get(pk=config.pk).status == TaskConfig.Status.DEPRECATED
        copy = task_config_copy_as_draft(config=config, actor=operator)
        assert (copy.task_type, copy.status, copy.interface_name) == ("share-copy", "editing", r"^/s/$")

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"interface_name": r"^/posts/(?P<id>\d+$"}, "interface_name", "Not a valid regular expression"),
            ({"interface_name": r"^/posts/(\d+)/$", "id_group_name": "post_id"}, "id_group_name", "no named group post_id"),
            ({"reverses": "t"}, "reverses", "cannot reverse itself"),
            ({"method": "FETCH"}, "method", "not a valid choice"),
        ],
    )
    def test_bad_configs_are_refused_with_a_clear_message(self, fields, field, message):
        from apps.tasks.services import task_config_create

        with pytest.raises(ValidationError) as refused:
            task_config_create(**{"task_type": "t", "method": "POST", "interface_name": r"^/t/$", **fields})
        assert message in " ".join(refused.value.message_dict[field])
        assert not TaskConfig.objects.exists()

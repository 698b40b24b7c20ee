"""Putting a config in use that would shadow another says which, what stops paying, and asks (issue 14)."""

import pytest
from django.urls import reverse

from apps.tasks.models import TaskConfig
from apps.tasks.selectors import config_shadowing
from tests.factories import ScoreRuleFactory, TaskConfigFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def share():
    """In use: sharing a post by its numeric id; a rule pays for it."""
    config = TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<id>\d+)/share/$", id_group_name="id")
    ScoreRuleFactory(task_type="share", score_type="share-daily")
    return config


def draft(**fields) -> TaskConfig:
    return TaskConfigFactory(status=TaskConfig.Status.EDITING, **fields)


def test_a_broader_config_of_higher_priority_takes_paths_and_names_the_rules_that_stop_paying(share):
    broad = draft(task_type="any-post-action", interface_name=r"^/posts/(?P<id>[^/]+)/[a-z]+/$", priority=5)
    shadowing = config_shadowing(config=broad)
    assert [(s.config.task_type, [r.score_type for r in s.rules]) for s in shadowing.takes_over] == [("share", ["share-daily"])]
    assert shadowing.takes_over[0].path == "/posts/1/share/"
    assert not shadowing.outranked_by


def test_the_same_regex_at_lower_priority_is_outranked_instead(share):
    twin = draft(task_type="share-twin", interface_name=r"^/posts/(?P<id>\d+)/share/$", priority=-1)
    shadowing = config_shadowing(config=twin)
    assert not shadowing.takes_over
    assert [s.config.task_type for s in shadowing.outranked_by] == ["share"]


@pytest.mark.parametrize(
    "fields",
    [
        {"interface_name": r"^/posts/(?P<id>\d+)/like/$", "priority": 9},  # other paths
        {"interface_name": r"^/posts/(?P<id>\d+)/share/$", "priority": 9, "method": "GET"},  # another method
    ],
)
def test_configs_that_cannot_meet_are_not_reported(share, fields):
    assert not config_shadowing(config=draft(task_type="other", **fields))


def test_the_confirmation_page_warns_and_asks(client, operator, share):
    broad = draft(task_type="any-post-action", interface_name=r"^/posts/(?P<id>[^/]+)/[a-z]+/$", priority=5)
    url = reverse("admin:tasks_taskconfig_workflow", args=[broad.pk, "put_in_use"])
    page = client.get(url).content.decode()
    assert 'id="confirm-shadows"' in page
    assert "share (priority 0) would lose requests it gets now, for example /posts/1/share/" in page
    assert "share-daily" in page and "Put in use anyway" in page
    assert TaskConfig.objects.get(pk=broad.pk).status == "editing"
    # The list action asks the same.
    asked = client.post(reverse("admin:tasks_taskconfig_changelist"), {"action": "put_in_use", "_selected_action": [broad.pk]})
    assert 'id="confirm-shadows"' in asked.content.decode()
    assert TaskConfig.objects.get(pk=broad.pk).status == "editing"


def test_no_warning_when_nothing_is_shadowed(client, operator, share):
    other = draft(task_type="like", interface_name=r"^/posts/(?P<id>\d+)/like/$")
    page = client.get(reverse("admin:tasks_taskconfig_workflow", args=[other.pk, "put_in_use"])).content.decode()
    assert 'id="confirm-shadows"' not in page and "No active rule pays for like yet" in page

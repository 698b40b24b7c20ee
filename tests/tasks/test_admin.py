"""The TaskConfig admin (SPEC §7): filters, badges, workflow buttons, history, and the test-a-request tool."""

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from apps.tasks.models import TaskConfig
from apps.tasks.selectors import request_routing_explain
from apps.tracking.routing import route_table
from tests.factories import ScoreRuleFactory, TaskConfigFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tasks_taskconfig_changelist"
TEST_REQUEST = "admin:tasks_taskconfig_test_request"


@pytest.fixture
def share():
    return TaskConfigFactory(
        task_type="share", method="POST", interface_name=r"^/posts/(?P<post_id>\d+)/share/$", id_group_name="post_id"
    )


def change_url(config) -> str:
    return reverse("admin:tasks_taskconfig_change", args=[config.pk])


def workflow_url(config, step: str) -> str:
    return reverse("admin:tasks_taskconfig_workflow", args=[config.pk, step])


class TestChangelist:
    def test_status_filter_and_search(self, client, operator, share):
        TaskConfigFactory(task_type="draft-task", status="editing")
        TaskConfigFactory(task_type="old-task", status="deprecated")
        page = client.get(reverse(CHANGELIST), {"status__exact": "in_use"}).content.decode()
        assert "share" in page and "draft-task" not in page and "old-task" not in page
        page = client.get(reverse(CHANGELIST), {"q": "draft"}).content.decode()
        assert "draft-task" in page and "old-task" not in page
        page = client.get(reverse(CHANGELIST), {"method__exact": "GET"}).content.decode()
        assert "0 task configs" in page

    def test_status_badges_with_the_project_stylesheet(self, client, operator, share):
        TaskConfigFactory(task_type="draft-task", status="editing")
        page = client.get(reverse(CHANGELIST)).content.decode()
        assert '<span class="jifen-badge jifen-badge-in_use">in use</span>' in page
        assert '<span class="jifen-badge jifen-badge-editing">editing</span>' in page
        assert "/static/css/admin.css" in page
        assert finders.find("css/admin.css"), "the stylesheet is served from the project"
        assert "cdn" not in page.lower()

    def test_changelist_links_to_the_tools(self, client, operator):
        page = client.get(reverse(CHANGELIST)).content.decode()
        for url in (reverse(TEST_REQUEST), reverse("admin:tasks_taskconfig_import"), reverse("admin:tasks_taskconfig_export")):
            assert f"href='{url}" in page.replace('"', "'")

    def test_action_puts_in_use_through_the_service(self, client, operator):
        draft = TaskConfigFactory(task_type="draft-task", status="editing")
        asked = client.post(reverse(CHANGELIST), {"action": "put_in_use", "_selected_action": [draft.pk]})
        page = asked.content.decode()
        assert asked.status_code == 200 and 'id="confirm-step"' in page and "start counting as completions of draft-task" in page
        draft.refresh_from_db()
        assert draft.status == "editing"  # nothing happens until the operator confirms
        client.post(reverse(CHANGELIST), {"action": "put_in_use", "_selected_action": [draft.pk], "post": "yes"})
        draft.refresh_from_db()
        assert draft.status == "in_use"
        record = draft.history.latest()
        assert (record.history_user, record.history_change_reason) == (operator, "editing → in_use")


class TestChangePage:
    def test_buttons_follow_the_status_and_run_the_services(self, client, operator):
        draft = TaskConfigFactory(task_type="draft-task", status="editing")
        page = client.get(change_url(draft)).content.decode()
        assert workflow_url(draft, "put_in_use") in page
        assert workflow_url(draft, "deprecate") not in page
        response = client.post(workflow_url(draft, "put_in_use"), follow=True)
        assert "Done: draft-task is now in use." in response.content.decode()
        draft.refresh_from_db()
        assert draft.status == "in_use"
        assert draft.history.latest().history_user == operator
        page = client.get(change_url(draft)).content.decode()
        assert workflow_url(draft, "deprecate") in page and workflow_url(draft, "put_in_use") not in page

    def test_a_refused_step_says_why_and_changes_nothing(self, client, operator):
        draft = TaskConfigFactory(task_type="draft-task", status="editing")
        response = client.post(workflow_url(draft, "deprecate"), follow=True)
        assert "only one that is in use can become deprecated" in response.content.decode()
        assert TaskConfig.objects.get(pk=draft.pk).status == "editing"

    def test_a_step_url_opened_by_get_asks_and_changes_nothing(self, client, operator):
        draft = TaskConfigFactory(task_type="draft-task", status="editing")
        page = client.get(workflow_url(draft, "put_in_use"))
        text = page.content.decode()
        assert page.status_code == 200 and 'id="confirm-step"' in text and 'id="confirm-cancel"' in text
        assert 'method="post"' in text and workflow_url(draft, "put_in_use") in text
        # A step that no longer applies (a bookmark, a second tab) says so instead of offering it.
        later = client.get(workflow_url(draft, "deprecate")).content.decode()
        assert 'id="confirm-not-possible"' in later and 'id="confirm-step"' not in later
        assert client.post(workflow_url(draft, "no-such-step")).status_code == 404
        assert TaskConfig.objects.get(pk=draft.pk).status == "editing"

    def test_copy_as_draft_opens_the_copy(self, client, operator, share):
        response = client.post(workflow_url(share, "copy_as_draft"))
        copy = TaskConfig.objects.get(task_type="share-copy")
        assert response.status_code == 302 and response["Location"] == change_url(copy)
        assert (copy.status, copy.interface_name, copy.id_group_name) == ("editing", share.interface_name, "post_id")

    def test_frozen_fields_and_status_are_read_only_once_in_use(self, client, operator, share):
        page = client.get(change_url(share)).content.decode()
        for name in ("interface_name", "method", "priority", "id_group_name", "status"):
            assert f'name="{name}"' not in page, name
        assert 'name="task_desc"' in page
        draft = TaskConfigFactory(task_type="draft-task", status="editing")
        page = client.get(change_url(draft)).content.decode()
        assert 'name="interface_name"' in page and 'name="status"' not in page

    def test_bad_regex_and_missing_group_get_clear_messages(self, client, operator):
        data = {
            "task_type": "bad",
            "method": "POST",
            "interface_name": r"^/posts/(?P<id>\d+/$",
            "priority": 0,
            "success_status_min": 200,
            "success_status_max": 299,
        }
        page = client.post(reverse("admin:tasks_taskconfig_add"), data).content.decode()
        assert "Not a valid regular expression" in page
        data["interface_name"], data["id_group_name"] = r"^/posts/(?P<id>\d+)/$", "post_id"
        page = client.post(reverse("admin:tasks_taskconfig_add"), data).content.decode()
        assert "The regex has no named group post_id." in page
        assert not TaskConfig.objects.exists()

    def test_saving_records_the_author_and_the_history_shows_the_diff(self, client, operator, share):
        data = {"task_desc": "Share a post"}
        response = client.post(change_url(share), data)
        assert response.status_code == 302
        share.refresh_from_db()
        assert share.task_desc == "Share a post"
        latest = share.history.latest()
        assert (latest.history_user, latest.history_change_reason) == (operator, "changed in the admin")
        page = client.get(reverse("admin:tasks_taskconfig_history", args=[share.pk])).content.decode()
        assert "<strong>Description:</strong>" in page and "Share a post" in page
        assert ">op</a>" in page

    def test_history_cannot_revert(self, client, operator, share):
        version = share.history.earliest()
        url = reverse("admin:tasks_taskconfig_simple_history", args=[share.pk, version.history_id])
        assert client.get(url).status_code == 200
        assert client.post(url, {"task_desc": "x"}).status_code == 403


class TestTestRequestTool:
    def get(self, client, method: str, path: str) -> str:
        response = client.get(reverse(TEST_REQUEST), {"method": method, "path": path})
        assert response.status_code == 200
        return response.content.decode()

    def test_names_the_config_and_the_business_id(self, client, operator, share):
        ScoreRuleFactory(task_type="share", score_type="share-each", points=3)
        page = self.get(client, "POST", "/posts/42/share/")
        assert "POST /posts/42/share/ completes a task" in page
        assert f'<a href="{change_url(share)}">share</a>' in page
        assert '<td class="jifen-business-id"><code>42</code></td>' in page
        assert "share-each" in page

    def test_a_pasted_url_is_routed_by_its_path(self, client, operator, share):
        page = self.get(client, "POST", "https://example.com/posts/7/share/?utm=x")
        assert "POST /posts/7/share/ completes a task" in page
        assert "<code>7</code>" in page

    def test_nothing_matches_and_a_draft_would(self, client, operator, share):
        draft = TaskConfigFactory(
            task_type="comment",
            method="POST",
            interface_name=r"^/posts/(?P<id>\d+)/comment/$",
            id_group_name="id",
            status="editing",
        )
        page = self.get(client, "POST", "/posts/5/comment/")
        assert "No task config in use matches POST /posts/5/comment/: the request earns nothing" in page
        assert "Would match, but are not in use:" in page
        assert f'<a href="{change_url(draft)}">comment</a> — editing' in page

    def test_another_method_and_no_match_at_all(self, client, operator, share):
        page = self.get(client, "GET", "/posts/5/share/")
        assert "No task config in use matches GET /posts/5/share/" in page
        assert "Match this path with another method:" in page and "— POST" in page
        page = self.get(client, "POST", "/posts/5/share")
        assert "No config matches this path at all" in page

    def test_outranked_configs_are_listed(self, client, operator, share):
        TaskConfigFactory(task_type="share-any", method="POST", interface_name=r"^/posts/.*$", priority=-1)
        page = self.get(client, "POST", "/posts/9/share/")
        assert "POST /posts/9/share/ completes a task" in page
        assert "Also match, but lose to the config above" in page and "share-any" in page

    def test_agrees_with_the_middlewares_route_table(self, operator, share):
        TaskConfigFactory(task_type="share-any", method="POST", interface_name=r"^/posts/.*$", priority=5)
        for method, path in (("POST", "/posts/1/share/"), ("POST", "/other/"), ("GET", "/posts/1/share/")):
            routed = route_table().match(method, path)
            explained = request_routing_explain(method=method, path=path).match
            assert (explained and (explained.config.pk, explained.business_id)) == (
                routed and (routed.route.config_id, routed.business_id)
            )

    def test_asks_for_a_path(self, client, operator):
        page = client.get(reverse(TEST_REQUEST), {"method": "POST", "path": ""}).content.decode()
        assert "This field is required." in page

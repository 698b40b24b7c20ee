"""A new operator's journey (issue 14): an editor authors a task and a rule and submits them; the approver
sees them in the review queue with the rule's dry run, is warned before shadowing a config in use, and
activates each after a confirmation page. Every page fits 1280 px; nothing happens without saying so first."""

import pytest

from apps.core.review import ReviewState
from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig
from tests.factories import ScoreRuleFactory, TaskConfigFactory
from tests.test_roles import member

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def fits(page) -> None:
    assert page.evaluate(OVERFLOW) <= 0, f"{page.url} scrolls sideways by {page.evaluate(OVERFLOW)} px"


def log_in(page, live_server, user) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "demo12345")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")


def test_editor_submits_approver_reviews_and_activates(page, live_server, screenshot, roles):
    page.set_viewport_size({"width": 1280, "height": 900})
    # Already in use: any action on a post by its numeric id, and a rule that pays for sharing.
    TaskConfigFactory(task_type="post-share", interface_name=r"^/posts/(?P<id>\d+)/share/$", id_group_name="id")
    ScoreRuleFactory(task_type="post-share", score_type="share-daily")
    eddie, anna = member("rule editors", "eddie"), member("rule approvers", "anna")

    log_in(page, live_server, eddie)
    page.goto(f"{live_server.url}/admin/tasks/taskconfig/add/")
    page.fill("#id_task_type", "post-action")
    page.select_option("#id_method", "POST")
    page.fill("#id_interface_name", r"^/posts/(?P<id>[^/]+)/[a-z]+/$")
    page.fill("#id_id_group_name", "id")
    page.fill("#id_priority", "5")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    page.click("button.jifen-step-submit_for_review")
    page.wait_for_selector("#review-note")
    assert "waiting for review" in page.locator(".messagelist").inner_text()
    fits(page)

    page.goto(f"{live_server.url}/admin/rules/scorerule/add/")
    page.fill("#id_score_type", "post-action-daily")
    page.fill("#id_task_type", "post-action")
    page.fill("#id_score_desc", "2 points for the day's first action on a post")
    page.fill("#id_points", "2")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert page.locator("a.jifen-step-activate").count() == 0  # an editor cannot activate
    page.click("button.jifen-step-submit_for_review")
    page.wait_for_selector("#review-note")
    screenshot(page, "editor-submitted")
    fits(page)

    log_in(page, live_server, anna)
    assert "2" in page.locator("#figure-review .value").inner_text()  # the dashboard says what waits
    page.click("#authoring-review a")
    assert page.locator(".jifen-review-item").count() == 2
    assert page.locator("#dry-run-points").count() == 1  # the rule's dry run, on the queue
    assert page.locator("#confirm-shadows").count() == 1  # the config would shadow post-share
    screenshot(page, "review-queue")
    fits(page)

    # Put the config in use: the page says what stops paying and asks.
    page.click(".jifen-review-item >> text=Put in use…")
    page.wait_for_selector("#confirm-step")
    shadows = page.locator("#confirm-shadows").inner_text()
    assert "post-share" in shadows and "share-daily" in shadows
    assert page.locator("#confirm-step").inner_text().strip().lower() == "put in use anyway"
    screenshot(page, "confirm-shadowing")
    fits(page)
    page.reload()  # a reload asks again, and changes nothing
    assert TaskConfig.objects.get(task_type="post-action").status == TaskConfig.Status.EDITING
    page.click("#confirm-step")
    page.wait_for_selector(".messagelist .success")
    assert TaskConfig.objects.get(task_type="post-action").status == TaskConfig.Status.IN_USE

    # Activate the rule from the queue, after its confirmation page with the dry run.
    page.goto(f"{live_server.url}/admin/rules/scorerule/review/")
    page.click(".jifen-review-item >> text=Activate…")
    page.wait_for_selector("#confirm-step")
    assert page.locator("#dry-run-points").count() == 1
    assert "earn points under post-action-daily" in page.locator("#confirm-consequences").inner_text()
    screenshot(page, "confirm-activate")
    fits(page)
    page.click("#confirm-step")
    page.wait_for_selector(".messagelist .success")
    rule = ScoreRule.objects.get(score_type="post-action-daily")
    assert rule.status == ScoreRule.Status.ACTIVE and rule.history.latest().history_user == anna
    assert rule.review_state == ReviewState.SUBMITTED  # what was reviewed stays on record
    page.goto(f"{live_server.url}/admin/rules/scorerule/review/")
    assert page.locator("#review-empty").is_visible()

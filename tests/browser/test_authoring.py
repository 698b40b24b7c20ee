"""An operator authors a task and a rule in the admin, activates them, and the site then awards points."""

import pytest

from apps.rules.models import ScoreRule
from apps.tasks.models import TaskConfig

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_author_a_task_and_a_rule_and_activate_them(page, live_server, admin_login, superuser, screenshot):
    admin_login(page, superuser)

    page.goto(f"{live_server.url}/admin/tasks/taskconfig/add/")
    page.fill("#id_task_type", "answer")
    page.select_option("#id_method", "POST")
    page.fill("#id_interface_name", r"^/questions/(?P<question_id>\d+)/answers/$")
    page.fill("#id_id_group_name", "question_id")
    screenshot(page, "taskconfig-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    page.goto(f"{live_server.url}/admin/rules/scorerule/add/")
    page.fill("#id_task_type", "answer")
    page.fill("#id_score_type", "answer-daily")
    page.fill("#id_points", "3")
    page.select_option("#id_statistical_period", "day")
    page.fill("#id_award_limit_per_period", "5")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")

    # Both are drafts until an operator activates them from the changelist.
    page.goto(f"{live_server.url}/admin/tasks/taskconfig/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "put_in_use")
    page.click("button[name=index]")
    # The list action asks first, saying what it will do; nothing happens until the operator confirms.
    assert "start counting as completions of answer" in page.locator("#confirm-rows").inner_text()
    assert TaskConfig.objects.get(task_type="answer").status == TaskConfig.Status.EDITING
    page.click("#confirm-step")
    page.wait_for_selector(".messagelist")
    assert TaskConfig.objects.get(task_type="answer").status == TaskConfig.Status.IN_USE

    page.goto(f"{live_server.url}/admin/rules/scorerule/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    page.click("#confirm-step")
    page.wait_for_selector(".messagelist")
    screenshot(page, "scorerule-activated")
    rule = ScoreRule.objects.get(score_type="answer-daily")
    assert rule.status == ScoreRule.Status.ACTIVE
    assert rule.history.latest().history_user == superuser

    # An active rule's frozen fields are read-only on its page.
    page.goto(f"{live_server.url}/admin/rules/scorerule/{rule.pk}/change/")
    assert page.locator("#id_points").count() == 0
    assert "3" in page.locator(".field-points").inner_text()

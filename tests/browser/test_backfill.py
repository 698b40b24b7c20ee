"""An operator dry-runs a new rule, activates it with a backfill, and sees the award on the user's page."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tasks.services import NewCompletion, completions_create
from config.celery import app as celery_app
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True  # the backfill runs in the live server's thread
    yield
    celery_app.conf.task_always_eager = False


def test_dry_run_then_activate_and_award_past_completions(page, live_server, admin_login, superuser, screenshot, eager):
    config = TaskConfigFactory(task_type="post")
    alice = UserFactory(username="alice")
    now = timezone.now()
    completions_create(
        completions=[
            NewCompletion(task_id=config.pk, user_id=alice.pk, event_id=uuid.uuid4(), occurred_at=now - timedelta(days=d))
            for d in (1, 2, 3)
        ]
    )
    rule = ScoreRuleFactory(
        task_type="post", score_type="welcome-back", points=4, status="editing", start_time=now - timedelta(days=7)
    )

    admin_login(page, superuser)
    page.goto(f"{live_server.url}/admin/rules/scorerule/{rule.pk}/change/")
    page.click("a.jifen-dry-run-link")
    page.fill("input[name=since]", (now - timedelta(days=30)).date().isoformat())
    page.click("input[type=submit][value=Run]")
    assert page.locator("#dry-run-points").inner_text() == "12 Points"  # the figure names its point type
    screenshot(page, "dry-run")

    page.goto(f"{live_server.url}/admin/rules/scorerule/{rule.pk}/change/")
    page.click("a.jifen-step-activate")  # the step asks first: its page shows the dry run since the start
    assert page.locator("#dry-run-awards").inner_text() == "3"
    page.click("#activate-and-award")
    page.wait_for_url(f"**/admin/rules/scorerule/{rule.pk}/change/")
    assert "backfill run" in page.locator(".messagelist").inner_text()

    page.goto(f"{live_server.url}/admin/ledger/account/user/{alice.pk}/")
    screenshot(page, "user-page")
    text = page.locator("#content-main").inner_text()
    assert "welcome-back" in text and "12" in text

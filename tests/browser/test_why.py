"""An operator answers a user's "why didn't I get points?" from the engine's recorded decisions."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_why_no_points_for_the_second_sign_in(page, live_server, admin_login, superuser, screenshot):
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$")
    ScoreRuleFactory(score_type="daily", points=2, award_limit_per_period=1)
    alice = UserFactory(username="alice")
    now = timezone.now()
    for when in (now - timedelta(minutes=5), now):
        event_process(
            event=Event(
                event_id=uuid.uuid4(), user_id=alice.pk, task_type="sign-in", occurred_at=when, method="POST", path="/checkin/"
            )
        )

    admin_login(page, superuser)
    page.goto(f"{live_server.url}/admin/tasks/usertaskrecord/")
    page.click("#why-link")
    page.fill("input[name=username]", "alice")
    page.click("input[type=submit][value=Explain]")
    # The newest completion first: the second sign-in of the day, which the daily limit stopped.
    page.locator("a", has_text="Why?").first.click()
    page.wait_for_url("**completion=*")
    screenshot(page, "why-no-points")
    text = page.locator("#content-main").inner_text()
    assert "daily" in text
    assert "the period's award limit was already reached" in text

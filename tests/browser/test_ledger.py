"""Ledger operators in the browser: a user's page with progress, and a large adjustment approved by a second operator."""

import uuid

import pytest
from django.utils import timezone

from apps.ledger.models import Account, Adjustment
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.ledger.conftest import APPROVE, REQUEST, make_operator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sign_in(user) -> None:
    event_process(event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="sign-in", occurred_at=timezone.now()))


def test_an_operator_opens_a_users_page_and_sees_progress(page, live_server, admin_login, superuser, screenshot):
    TaskConfigFactory(task_type="sign-in")
    ScoreRuleFactory(score_type="daily", points=2, award_limit_per_period=1)
    ScoreRuleFactory(score_type="three-a-week", points=5, statistical_period="week", required_number_of_times=3)
    alice = UserFactory(username="alice")
    sign_in(alice)
    sign_in(alice)

    admin_login(page, superuser)
    page.goto(f"{live_server.url}/admin/ledger/account/")
    page.click("text=alice")
    page.wait_for_url(f"**/admin/ledger/account/user/{alice.pk}/")
    screenshot(page, "user-page")
    assert page.locator("#balance").inner_text().strip() == "2"
    bar = page.locator('[role=progressbar][aria-valuenow="67"]')
    assert bar.count() == 1
    body = page.locator("#content").inner_text()
    assert "2 of 3 this week · 1 more to earn 5 points" in body
    assert "1 of 1 today — limit reached" in body
    assert "awarded 2 points" in body
    assert "the period's award limit was already reached" in body


def test_a_large_adjustment_waits_for_a_second_operator(page, live_server, admin_login, screenshot, settings):
    settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE = 1000
    alice = UserFactory(username="alice")
    olga = make_operator("olga", REQUEST, APPROVE)
    pavel = make_operator("pavel", REQUEST, APPROVE)

    admin_login(page, olga)
    page.goto(f"{live_server.url}/admin/ledger/adjustment/add/")
    page.fill("#id_user", str(alice.pk))
    page.fill("#id_amount", "5000")
    page.fill("#id_reason", "Winner of the spring contest")
    screenshot(page, "adjustment-request")
    page.click("input[name=_save]")
    # Nothing is posted yet: a warning saying what must still happen, not a success tick.
    page.wait_for_selector(".messagelist .warning")
    assert page.locator(".messagelist .success").count() == 0
    assert "+5,000 points for alice need a second operator's approval" in page.locator(".messagelist .warning").first.inner_text()
    adjustment = Adjustment.objects.get(user=alice)
    assert adjustment.status == Adjustment.Status.PENDING
    # The requester is told why she cannot decide, and has no buttons.
    assert page.locator("#decide-approve").count() == 0
    assert page.locator("#decision").count() == 1
    assert not Account.objects.filter(user=alice, balance__gt=0).exists()

    with page.expect_navigation():
        page.click("#logout-form button")
    admin_login(page, pavel)
    page.goto(f"{live_server.url}/admin/ledger/adjustment/{adjustment.pk}/change/")
    screenshot(page, "adjustment-pending")
    page.click("#decide-approve")  # the confirmation page says what will happen, then posts
    page.click("#confirm-step")
    page.wait_for_selector(".messagelist .success")
    screenshot(page, "adjustment-posted")
    adjustment.refresh_from_db()
    assert adjustment.status == Adjustment.Status.POSTED
    assert adjustment.decided_by == pavel
    assert adjustment.entry.trade_amount == 5000
    assert Account.objects.get(user=alice).balance == 5000

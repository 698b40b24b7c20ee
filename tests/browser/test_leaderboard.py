"""A member on the site's leaderboard: period tabs, a rule's board, their own rank highlighted."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.tracking.events import Event
from apps.tracking.services.pipeline import events_process_batch
from tests.browser.conftest import PASSWORD
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def posts(user, count: int, when) -> list[dict]:
    return [
        Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=when + timedelta(seconds=i)).to_payload()
        for i in range(count)
    ]


def test_a_member_finds_their_rank_on_the_boards(page, live_server, screenshot):
    TaskConfigFactory(task_type="post")
    rule = ScoreRuleFactory(task_type="post", score_type="post-each", score_desc="A post", points=5, award_limit_per_period=10)
    alice, bob, carol = (UserFactory(username=name, password=PASSWORD) for name in ("alice", "bob", "carol"))
    now = timezone.now()
    events_process_batch(payloads=posts(alice, 2, now) + posts(bob, 3, now) + posts(carol, 2, now))

    page.goto(f"{live_server.url}/accounts/login/?next=/leaderboard/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/leaderboard/")
    page.click(".tabs >> text=Month")
    page.wait_for_url("**period=month**")
    rows = page.locator("table.board tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).inner_text().split() == ["1", "bob", "15"]
    # alice and carol tie on 10 points: one rank; reached in the same batch, so the lower user id first.
    assert [rows.nth(i).inner_text().split()[:2] for i in (1, 2)] == [["2", "alice"], ["2", "carol"]]
    assert "me" in rows.nth(2).get_attribute("class")
    assert "#2" in page.locator("#my-rank").inner_text()

    assert page.locator("#id_rule option:checked").inner_text() == "All rules"
    page.select_option("#id_rule", label="A post")
    page.click(".board-choice button")
    page.wait_for_url(f"**rule={rule.pk}**")
    assert page.locator(".tabs a.current").inner_text() == "Month"
    assert page.locator("table.board tbody tr").count() == 3
    screenshot(page, "leaderboard")

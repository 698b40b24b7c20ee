"""The header's notification count: drawn by the server, kept fresh by the page's script, gone once the list is seen."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD
from tests.factories import UserFactory
from tests.notifications.conftest import notify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REFRESH_MS = 30_000


def test_the_count_arrives_in_the_header_and_goes_when_the_list_is_seen(page, live_server, screenshot):
    alice = UserFactory(username="alice", password=PASSWORD)
    notify(alice), notify(alice)
    page.clock.install()  # the script's 30 s timer, moved on by the test instead of waited for
    page.goto(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    count = page.locator("#notification-count")
    expect(count).to_have_text("2")  # drawn by the server, before any script ran

    # The API failing (a restart, a proxy's error page) leaves the count as it was.
    page.route("**/api/me/notifications*", lambda route: route.fulfill(status=502, body="Bad gateway"))
    notify(alice)
    with page.expect_response("**/api/me/notifications*"):
        page.clock.run_for(REFRESH_MS + 1000)
    expect(count).to_have_text("2")
    page.unroute("**/api/me/notifications*")

    # A new award arrives: the next refresh shows it, with no reload.
    notify(alice)
    with page.expect_response("**/api/me/notifications*") as answer:
        page.clock.run_for(REFRESH_MS + 1000)
    assert answer.value.json()["unread"] == 4
    expect(count).to_have_text("4")
    expect(count).to_be_visible()
    screenshot(page, "header-count")

    page.click("#nav-notifications")
    page.wait_for_url(f"{live_server.url}/me/notifications/")
    expect(page.locator("li.notification.new")).to_have_count(4)
    expect(count).to_be_hidden()  # seeing them read them
    screenshot(page, "notifications")
    page.goto(f"{live_server.url}/")
    expect(count).to_be_hidden()

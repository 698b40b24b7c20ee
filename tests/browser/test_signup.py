"""A new user's first minutes on the demo site: sign up, land signed in, earn the first 签到."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command

from tests.workers import WorkerProcess

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

POINTS_TIMEOUT_S = 20


@pytest.fixture
def demo_rules(transactional_db):
    """The demo's point types, task configs and rules, as `make run` loads them (a sign-in earns 1 coin and 10 experience)."""
    call_command("loaddata", str(settings.BASE_DIR / "fixtures" / "demo.json"), verbosity=0)


@pytest.fixture
def worker(demo_rules):
    process = WorkerProcess()
    yield process
    process.stop()


def test_a_new_user_signs_up_and_earns_a_first_sign_in(page, live_server, worker, screenshot):
    page.goto(f"{live_server.url}/")
    page.click("a[href='/accounts/signup/']")
    page.fill("#id_username", "newbie")
    page.fill("#id_password1", "a-long-Passphrase-9")
    page.fill("#id_password2", "a-long-Passphrase-9")
    page.click("button[type=submit]")

    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".messages").inner_text() == "Welcome, newbie!"
    # The demo's experience starts at the level Newcomer (0 points), shown beside the name.
    assert page.locator("header .who").inner_text() == "newbie Newcomer"
    screenshot(page, "signed-up")

    page.click("#checkin")
    page.wait_for_function("document.getElementById('checkin-result').textContent !== ''")
    assert re.fullmatch(r"Signed in for \d{4}-\d{2}-\d{2}\.", page.locator("#checkin-result").inner_text())

    # The worker awards the sign-in; the points page shows it once the entry is written.
    page.goto(f"{live_server.url}/me/points/")
    for _ in range(POINTS_TIMEOUT_S * 2):
        # The page reads the balance and the entries one after the other: a reload at the worker's
        # commit can show the entry beside the balance from before it; the next one shows both.
        if page.locator("tr.entry").count() == 2 and page.locator("#balance").inner_text() != "0":
            break
        page.wait_for_timeout(500)
        page.reload()
    else:
        pytest.fail(f"no ledger entry within {POINTS_TIMEOUT_S} s; worker log:\n{worker.log()}")
    screenshot(page, "first-points")
    # One sign-in earns a coin and 10 experience (the demo's two point types).
    assert page.locator("#balance").inner_text() == "1"
    assert page.locator("#type-exp .big").inner_text() == "10"
    amounts = {page.locator("tr.entry").nth(i).locator("td.num").first.inner_text() for i in range(2)}
    assert amounts == {"+1", "+10"}

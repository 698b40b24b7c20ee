"""Navigation by job in Chromium: the index and a list's sidebar show the sections in order (issue 14)."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECTIONS = ["Authoring", "Point types & levels", "Shop", "Users & ledger", "Pipeline", "Webhooks", "Access", "System"]


def captions(page, scope: str) -> list[str]:
    return [text.strip() for text in page.locator(f"{scope} caption a.section").all_inner_texts()]


def test_the_console_is_laid_out_by_job(page, live_server, admin_login, superuser, screenshot):
    page.set_viewport_size({"width": 1280, "height": 900})
    admin_login(page, superuser)
    assert [text.casefold() for text in captions(page, "#content-main")] == [s.casefold() for s in SECTIONS]
    screenshot(page, "index")

    # From the sidebar of a list to a custom page of another section.
    page.goto(f"{live_server.url}/admin/rules/scorerule/")
    assert [text.casefold() for text in captions(page, "#nav-sidebar")] == [s.casefold() for s in SECTIONS]
    page.locator("#nav-sidebar #users-ledger-why a").click()
    page.wait_for_url(f"{live_server.url}/admin/tasks/usertaskrecord/why/")
    screenshot(page, "why-from-sidebar")

    # A section's title opens that section alone.
    page.goto(f"{live_server.url}/admin/")
    page.locator("#content-main .app-pipeline caption a").click()
    page.wait_for_url(f"{live_server.url}/admin/jobs/pipeline/")
    assert captions(page, "#content-main") and captions(page, "#content-main")[0].casefold() == "pipeline"

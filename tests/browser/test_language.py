"""A browser that asks for Chinese gets the console in Chinese: our own strings, not only Django's."""

import pytest

from tests.factories import UserFactory
from tests.ledger.conftest import give_points

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("browser_context", ["zh-CN"], indirect=True)
def test_a_chinese_browser_gets_the_console_in_chinese(page, live_server, admin_login, superuser, screenshot):
    alice = UserFactory(username="alice")
    give_points(alice, 7)
    admin_login(page, superuser)
    assert "今日概览" in page.locator("#content").inner_text()
    screenshot(page, "dashboard-zh-hans")

    page.goto(f"{live_server.url}/admin/ledger/account/user/{alice.pk}/")
    assert "生效规则的进度" in page.locator("#content").inner_text()
    screenshot(page, "user-page-zh-hans")

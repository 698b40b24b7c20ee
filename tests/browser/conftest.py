"""Headless Chromium for the admin's browser tests (Debian's `chromium`, driven by Playwright).

The browser is found at `CHROMIUM_PATH`, else `chromium` on PATH. Without it the tests skip on a
developer's machine and fail in CI (`CI=true`), where `.ci/run` installs it. Screenshots of the key
pages go to `var/screenshots/` (CI keeps them as artifacts; they are not committed).
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.factories import UserFactory

# Playwright's sync API runs an event loop in the test's thread; Django's guard against ORM calls
# from async code would trip on the fixtures' queries there, though they run synchronously.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
PASSWORD = "demo12345"


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium():
    path = chromium_path()
    if not path:
        message = "needs Chromium: apt-get install chromium, or set CHROMIUM_PATH"
        if IN_CI:
            pytest.fail(f"CI must run the browser tests: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium, request):
    """A fresh browser profile per test; `locale` may be set with @pytest.mark.parametrize indirect."""
    locale = getattr(request, "param", "en-US")
    context = chromium.new_context(locale=locale, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    return browser_context.new_page()


@pytest.fixture
def screenshot(request):
    """screenshot(page, "label") keeps a full-page PNG named after the test."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test_name = re.sub(r"[^\w.-]+", "-", request.node.name)

    def take(page, label: str) -> Path:
        path = SCREENSHOTS / f"{test_name}--{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def admin_login(live_server):
    """admin_login(page, user) signs the user in through the admin's login form."""

    def login(page, user) -> None:
        page.goto(f"{live_server.url}/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return login


@pytest.fixture
def superuser(transactional_db):
    return UserFactory(username="boss", is_staff=True, is_superuser=True, password=PASSWORD)


ROLES_MIGRATION = ("tracking", "0003_roles")


@pytest.fixture
def roles(transactional_db):
    """The migration's groups (rule editors, approvers, …): a transactional test's flush empties them,
    so the roles migration's own function runs again, on the models as they were at that migration."""
    import importlib
    from types import SimpleNamespace

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    module = importlib.import_module(f"apps.{ROLES_MIGRATION[0]}.migrations.{ROLES_MIGRATION[1]}")
    state = MigrationExecutor(connection).loader.project_state(ROLES_MIGRATION, at_end=True)
    module.create_roles(state.apps, SimpleNamespace(connection=connection))

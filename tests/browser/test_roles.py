"""An auditor sees every page of the console and can change nothing (G9)."""

import importlib
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.ledger.models import Adjustment
from apps.rules.models import ScoreRule
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.ledger.conftest import give_points

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLES_MIGRATION = ("tracking", "0003_roles")


@pytest.fixture
def auditor():
    # A transactional test's flush empties the tables, the migration's groups too: run the roles
    # migration's own function again, on the models as they were at that migration.
    roles = importlib.import_module(f"apps.{ROLES_MIGRATION[0]}.migrations.{ROLES_MIGRATION[1]}")
    state = MigrationExecutor(connection).loader.project_state(ROLES_MIGRATION, at_end=True)
    roles.create_roles(state.apps, SimpleNamespace(connection=connection))
    user = UserFactory(username="audrey", is_staff=True, password="demo12345")
    user.groups.add(Group.objects.get(name="auditors"))
    return user


def test_an_auditor_sees_everything_and_can_change_nothing(page, live_server, admin_login, auditor, screenshot):
    TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")
    rule = ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="editing")
    alice = UserFactory(username="alice")
    give_points(alice, 7)

    admin_login(page, auditor)
    screenshot(page, "auditor-index")
    for path in (
        "/admin/tasks/taskconfig/",
        "/admin/rules/scorerule/",
        "/admin/ledger/account/",
        "/admin/ledger/scorerecord/",
        "/admin/ledger/adjustment/",
        "/admin/tasks/usertaskrecord/",
        f"/admin/ledger/account/user/{alice.pk}/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        # No add buttons, no bulk actions: nothing here changes anything.
        assert page.locator(".object-tools a.addlink").count() == 0, path
        assert page.locator("select[name=action]").count() == 0, path

    page.goto(f"{live_server.url}/admin/rules/scorerule/{rule.pk}/change/")
    screenshot(page, "auditor-rule")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("#id_points").count() == 0  # shown, not editable

    for path in ("/admin/rules/scorerule/add/", "/admin/ledger/adjustment/add/", f"/admin/rules/scorerule/{rule.pk}/delete/"):
        assert page.goto(f"{live_server.url}{path}").status == 403, path

    # Even a hand-made POST of a workflow action is refused.
    page.goto(f"{live_server.url}/admin/rules/scorerule/")
    token = page.evaluate("document.cookie.match(/csrftoken=([^;]+)/)[1]")
    response = page.request.post(
        f"{live_server.url}/admin/rules/scorerule/",
        form={"action": "activate", "_selected_action": str(rule.pk), "post": "yes", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{live_server.url}/admin/rules/scorerule/"},
    )
    assert response.status in (200, 403)
    assert ScoreRule.objects.get(pk=rule.pk).status == ScoreRule.Status.EDITING
    assert not Adjustment.objects.exists()

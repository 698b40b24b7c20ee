"""Navigation by job (issue 14): the index and the sidebar list job sections, each role only its own."""

import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ORDER = ["authoring", "points", "shop", "users-ledger", "pipeline", "webhooks", "access", "system"]
POINTS = ["pointtype", "level"]
AUTHORING = [
    "taskconfig",
    "scorerule",
    "badge",
    "scoreruleobjectpoints",
    "review",
    "test-request",
    "sheet-import",
    "sheet-export",
]
SHOP = ["rewarditem", "redemption", "item-sheet-import", "item-sheet-export"]
ITEMS = ["rewarditem", "item-sheet-import", "item-sheet-export"]
LEDGER = [
    "account",
    "scorerecord",
    "adjustment",
    "userscoreinfo",
    "usertaskrecord",
    "leaderboardtotal",
    "hold",
    "why",
    "expiring",
]


def member(group_name: str):
    user = UserFactory(username=group_name.replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=group_name))
    return user


def sections(html: str) -> list[str]:
    return re.findall(r'<div class="app-([\w-]+) module', html)


def rows(html: str, section: str) -> list[str]:
    return re.findall(rf'<th scope="row" id="{section}-([\w-]+)">', html)


def index_main(client, user) -> str:
    client.force_login(user)
    page = client.get(reverse("admin:index")).content.decode()
    return page.split('id="content-main"')[1]


def test_a_superuser_sees_every_section_in_job_order_with_system_last(client, operator):
    page = client.get(reverse("admin:index")).content.decode()
    main = page.split('id="content-main"')[1]
    assert sections(main) == ORDER
    # The dashboard comes first.
    assert main.index('id="jifen-dashboard"') < main.index('class="app-authoring module')
    assert rows(main, "authoring") == AUTHORING
    assert rows(main, "points") == POINTS
    assert rows(main, "shop") == SHOP
    assert rows(main, "users-ledger") == LEDGER
    assert rows(main, "pipeline") == ["failedevent", "outboxevent", "servicekey", "health"]
    assert rows(main, "webhooks") == ["webhookendpoint", "webhookdelivery"]
    assert rows(main, "access") == ["user", "group", "accessattempt", "accessfailurelog", "accesslog"]
    # Celery first; models no section names (the demo site's own) land here too.
    system = rows(main, "system")
    assert system[:3] == ["taskresult", "groupresult", "periodictask"]
    assert {"post", "checkin", "comment", "share"} <= set(system)
    for url_name in ("admin:tasks_taskconfig_test_request", "admin:rules_scorerule_import", "admin:tasks_usertaskrecord_why"):
        assert f'href="{reverse(url_name)}"' in main
    assert f'href="{reverse("healthz")}"' in main


def test_the_sidebar_of_a_model_page_has_the_same_sections(client, operator):
    page = client.get(reverse("admin:rules_scorerule_changelist")).content.decode()
    sidebar = page.split('id="nav-sidebar"')[1].split("</nav>")[0]
    assert sections(sidebar) == ORDER
    assert 'class="model-scorerule current-model"' in sidebar


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("rule editors", {"authoring": AUTHORING, "points": POINTS, "shop": ITEMS}),
        (
            "rule approvers",
            {
                "authoring": [name for name in AUTHORING if name != "sheet-import"],
                "points": POINTS,
                "shop": [name for name in ITEMS if name != "item-sheet-import"],
            },
        ),
        (
            "ledger operators",
            {
                "authoring": ["scorerule", "badge", "review", "sheet-export"],
                "points": POINTS,
                "shop": ["redemption"],
                "users-ledger": LEDGER,
            },
        ),
    ],
)
def test_each_role_sees_only_its_sections_and_pages(client, group, expected):
    main = index_main(client, member(group))
    assert sections(main) == list(expected)
    for key, names in expected.items():
        assert rows(main, key) == names


def test_auditors_see_every_section_but_access(client):
    main = index_main(client, member("auditors"))
    assert sections(main) == ["authoring", "points", "shop", "users-ledger", "pipeline", "webhooks", "system"]
    # View only: no add links, no import.
    assert "sheet-import" not in rows(main, "authoring")
    assert rows(main, "shop") == ["rewarditem", "redemption", "item-sheet-export"]
    assert 'class="addlink"' not in main
    assert "health" in rows(main, "pipeline")


def test_a_section_page_lists_its_section_and_is_hidden_from_others(client, operator):
    page = client.get(reverse("admin:jifen_section", args=["pipeline"])).content.decode()
    main = page.split('id="content-main"')[1]
    assert sections(main) == ["pipeline"]
    assert "<title>Pipeline | " in page
    client.force_login(member("rule editors"))
    assert client.get(reverse("admin:jifen_section", args=["pipeline"])).status_code == 404
    assert client.get(reverse("admin:jifen_section", args=["nothing"])).status_code == 404


def test_an_apps_own_page_still_works(client, operator):
    # Django's app index (/admin/rules/, the breadcrumbs' middle link) lists that app's models.
    page = client.get(reverse("admin:app_list", args=["rules"])).content.decode()
    main = page.split('id="content-main"')[1]
    assert sections(main) == ["rules"]
    assert "<title>Rules administration | " in page

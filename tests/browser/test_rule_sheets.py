"""An operator imports a rule sheet written by a spreadsheet program: a bad one is refused whole, a good one applies."""

import openpyxl
import pytest

from apps.rules.models import ScoreRule
from tests.factories import TaskConfigFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = [
    "score_type",
    "task_type",
    "score_desc",
    "kind",
    "points",
    "statistical_period",
    "required_number_of_times",
    "award_limit_per_period",
    "number_limit_all",
    "start_time",
    "end_time",
    "can_repeat",
    "status",
]


def write_sheet(path, rows) -> str:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return str(path)


def upload(page, live_server, path) -> None:
    page.goto(f"{live_server.url}/admin/rules/scorerule/import/")
    page.select_option("#id_format", label="xlsx")
    page.set_input_files("#id_import_file", path)
    page.click("input[type=submit]")


def test_a_bad_sheet_is_refused_whole_then_a_good_one_applies(page, live_server, admin_login, superuser, screenshot, tmp_path):
    TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")
    admin_login(page, superuser)

    good = ["post-daily", "post", "Posting, daily", "count", 5, "day", 1, 10, None, None, None, True, "editing"]
    bad = ["post-weekly", "post", "Posting, weekly", "count", -3, "fortnight", 1, 1, None, None, None, True, "editing"]
    upload(page, live_server, write_sheet(tmp_path / "broken.xlsx", [good, bad]))
    errors = page.locator(".jifen-sheet-errors")
    errors.wait_for()
    screenshot(page, "import-refused")
    text = errors.inner_text()
    assert "Nothing was imported." in text
    assert "row 3, column Points" in text and "row 3, column Period" in text
    assert not ScoreRule.objects.exists()

    upload(page, live_server, write_sheet(tmp_path / "fixed.xlsx", [good, [*bad[:4], 3, "week", *bad[6:]]]))
    page.locator("input[name=confirm]").wait_for()
    screenshot(page, "import-preview")
    assert not ScoreRule.objects.exists()  # the preview changes nothing
    page.click("input[name=confirm]")
    page.wait_for_selector(".messagelist .success")
    assert sorted(ScoreRule.objects.values_list("score_type", "points", "statistical_period")) == [
        ("post-daily", 5, "day"),
        ("post-weekly", 3, "week"),
    ]
    assert ScoreRule.objects.get(score_type="post-weekly").history.latest().history_user == superuser

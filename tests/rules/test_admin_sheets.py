"""Rule sheets through the admin (SPEC §7, G8): preview then confirm, all or nothing, formulas."""

import csv
import io

import openpyxl
import pytest
import tablib
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.sheets import StrictXLSX
from apps.rules.admin_sheets import SHEET_FORMATS
from apps.rules.models import ScoreRule, ScoreRuleObjectPoints
from apps.rules.resources import ScoreRuleResource
from apps.tasks.models import TaskConfig
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

RULE_COLUMNS = (
    "score_type,task_type,score_desc,kind,points,statistical_period,required_number_of_times,"
    "award_limit_per_period,number_limit_all,start_time,end_time,can_repeat,status"
)
CSV_FORMAT, XLSX_FORMAT, JSON_FORMAT = (str(SHEET_FORMATS.index(f)) for f in (SHEET_FORMATS[0], StrictXLSX, SHEET_FORMATS[2]))


@pytest.fixture
def post_task():
    return TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")


def upload(client, model: str, name: str, content: bytes, fmt: str = CSV_FORMAT):
    url = reverse(f"admin:{model}_import")
    return client.post(url, {"resource": "0", "format": fmt, "import_file": SimpleUploadedFile(name, content)})


def rules_csv(*rows: str) -> bytes:
    return ("\n".join((RULE_COLUMNS, *rows)) + "\n").encode()


def confirm(client, model: str, preview):
    form = preview.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    return client.post(reverse(f"admin:{model}_process_import"), data, follow=True)


class TestImport:
    def test_one_bad_row_names_row_and_column_and_applies_nothing(self, client, operator, post_task):
        response = upload(
            client,
            "rules_scorerule",
            "rules.csv",
            rules_csv(
                "good,post,Fine,count,5,day,1,,,,,true,editing",
                "bad-period,post,Oops,count,5,fortnight,1,,,,,true,editing",
                "bad-points,post,Oops,count,-3,day,1,,,,,true,editing",
            ),
        )
        page = response.content.decode()
        assert "Nothing was imported." in page
        assert "row 3, column Period: &#x27;fortnight&#x27; is not one of: day, week, month, year, none" in page
        assert "row 4, column Points" in page
        assert "Confirm import" not in page
        assert not ScoreRule.objects.exists()

    def test_changing_a_frozen_field_of_an_active_rule_is_refused(self, client, operator, post_task):
        ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="active")
        page = upload(
            client, "rules_scorerule", "rules.csv", rules_csv("post-each,post,Each post,count,50,day,1,,,,,true,active")
        ).content.decode()
        assert "row 2, column Points: points cannot change while post-each is active" in page
        assert ScoreRule.objects.get().points == 5

    def test_good_sheet_preview_then_confirm_applies_with_the_author_in_history(self, client, operator, post_task):
        ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="editing", score_desc="old")
        preview = upload(
            client,
            "rules_scorerule",
            "rules.csv",
            rules_csv(
                "post-each,post,Each post,count,6,day,1,10,,,,true,editing", "first-post,post,First,count,10,none,,1,100,,,,"
            ),
        )
        page = preview.content.decode()
        assert "Confirm import" in page and "Preview" in page and "Nothing was imported" not in page
        assert ScoreRule.objects.get(score_type="post-each").points == 5, "the preview applies nothing"
        assert not ScoreRule.objects.filter(score_type="first-post").exists()

        done = confirm(client, "rules_scorerule", preview)
        assert "Import finished: 1 new, 1 updated" in done.content.decode()
        each = ScoreRule.objects.get(score_type="post-each")
        assert (each.points, each.score_desc, each.award_limit_per_period) == (6, "Each post", 10)
        first = ScoreRule.objects.get(score_type="first-post")
        assert (first.status, first.number_limit_all, first.required_number_of_times) == ("editing", 100, 1)
        for rule in (each, first):
            record = rule.history.latest()
            assert (record.history_user, record.history_change_reason) == (operator, "imported")

    def test_a_sheet_that_went_bad_before_confirming_is_refused_whole(self, client, operator, post_task):
        rule = ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="editing")
        preview = upload(
            client,
            "rules_scorerule",
            "rules.csv",
            rules_csv("new-rule,post,New,count,1,day,1,,,,,true,editing", "post-each,post,,count,9,day,1,,,,,true,editing"),
        )
        assert "Confirm import" in preview.content.decode()
        rule.status = "active"  # activated by someone else meanwhile: points are frozen now
        rule.save()
        page = confirm(client, "rules_scorerule", preview).content.decode()
        assert "Nothing was imported." in page
        assert "row 3, column Points: points cannot change while post-each is active" in page
        assert "Import finished" not in page
        assert not ScoreRule.objects.filter(score_type="new-rule").exists()
        assert ScoreRule.objects.get(score_type="post-each").points == 5

    def test_xlsx_with_a_formula_is_refused(self, client, operator, post_task):
        book = openpyxl.Workbook()
        book.active.append(RULE_COLUMNS.split(","))
        book.active.append(["r", "post", "x", "count", "=2+3", "day", 1, None, None, None, None, True, "editing"])
        content = io.BytesIO()
        book.save(content)
        page = upload(client, "rules_scorerule", "rules.xlsx", content.getvalue(), XLSX_FORMAT).content.decode()
        assert "Row 2, column E holds a formula." in page
        assert not ScoreRule.objects.exists()

    def test_formula_looking_text_in_csv_is_refused(self, client, operator, post_task):
        page = upload(
            client, "rules_scorerule", "rules.csv", rules_csv('r,post,=HYPERLINK("http://x"),count,5,day,1,,,,,true,editing')
        ).content.decode()
        assert "row 2, column Description: Looks like a spreadsheet formula" in page
        assert not ScoreRule.objects.exists()

    def test_json_items_are_counted_from_one(self, client, operator, post_task):
        content = b'[{"score_type": "r", "task_type": "nope", "points": 1, "statistical_period": "day"}]'
        page = upload(client, "rules_scorerule", "rules.json", content, JSON_FORMAT).content.decode()
        assert "item 1, column Task type: No task config has the task type nope." in page

    def test_tasks_and_object_points_import_too(self, client, operator, post_task):
        preview = upload(
            client,
            "tasks_taskconfig",
            "tasks.csv",
            b"task_type,task_desc,method,interface_name,id_group_name,priority,status,reverses\n"
            b"share,Share,post,^/posts/(?P<id>\\d+)/share/$,id,,editing,\n",
        )
        confirm(client, "tasks_taskconfig", preview)
        share = TaskConfig.objects.get(task_type="share")
        assert (share.method, share.id_group_name, share.history.latest().history_user) == ("POST", "id", operator)

        ScoreRuleFactory(task_type="share", score_type="share-draft", status="editing")
        ScoreRuleFactory(task_type="share", score_type="share-live", status="active")
        page = upload(
            client, "rules_scoreruleobjectpoints", "points.csv", b"score_type,business_id,points\nshare-live,7,20\n"
        ).content.decode()
        assert "cannot change while it is active" in page
        preview = upload(
            client, "rules_scoreruleobjectpoints", "points.csv", b"score_type,business_id,points\nshare-draft,7,20\n"
        )
        confirm(client, "rules_scoreruleobjectpoints", preview)
        assert list(ScoreRuleObjectPoints.objects.values_list("rule__score_type", "business_id", "points")) == [
            ("share-draft", "7", 20)
        ]

    def test_import_needs_add_and_change_rights(self, client, post_task):
        viewer = UserFactory(username="viewer", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_scorerule"))
        client.force_login(viewer)
        assert client.get(reverse("admin:rules_scorerule_changelist")).status_code == 200
        assert client.get(reverse("admin:rules_scorerule_import")).status_code == 403
        assert client.get(reverse("admin:rules_scorerule_export")).status_code == 200


def role(group_name: str, username: str):
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(*Group.objects.filter(name=group_name))
    return user


class TestStatusChangesNeedWorkflowRights:
    def test_the_resource_refuses_status_changes_to_a_user_without_the_workflow_rights(self, post_task):
        ScoreRuleFactory(task_type="post", score_type="live", status="active")
        dataset = tablib.Dataset(headers=["score_type", "task_type", "points", "statistical_period", "status"])
        dataset.append(["live", "post", 1, "day", "retired"])
        dataset.append(["new", "post", 1, "day", "active"])
        dataset.append(["draft", "post", 1, "day", "editing"])
        editor = role("rule editors", "eddie")
        result = ScoreRuleResource().import_data(dataset, dry_run=False, user=editor)
        errors = {row.number: row.error_dict for row in result.invalid_rows}
        assert set(errors) == {1, 2}
        assert "You may not change the status from active to retired" in errors[1]["status"][0]
        assert ScoreRule.objects.get().status == "active" and ScoreRule.objects.count() == 1

    def test_a_rule_editor_cannot_activate_or_retire_rules_by_importing_a_sheet(self, client, post_task):
        ScoreRuleFactory(task_type="post", score_type="live", points=5, status="active")
        ScoreRuleFactory(task_type="post", score_type="draft", points=5, status="editing")
        client.force_login(role("rule editors", "eddie"))
        for row in ("draft,post,,count,5,day,1,,,,,true,active", "live,post,,count,5,day,1,,,,,true,retired"):
            page = upload(client, "rules_scorerule", "rules.csv", rules_csv(row)).content.decode()
            assert "Nothing was imported." in page and "Confirm import" not in page
            assert "row 2, column Status: You may not change the status from" in page
        page = upload(client, "rules_scorerule", "rules.csv", rules_csv("new,post,,count,5,day,1,,,,,true,active")).content
        assert "You may not change the status from editing to active" in page.decode()
        assert dict(ScoreRule.objects.values_list("score_type", "status")) == {"live": "active", "draft": "editing"}

    def test_a_rule_editor_cannot_put_task_configs_in_use_by_importing_a_sheet(self, client):
        TaskConfigFactory(task_type="share", interface_name=r"^/s/$", status="editing")
        client.force_login(role("rule editors", "eddie"))
        header = b"task_type,task_desc,method,interface_name,id_group_name,priority,status,reverses\n"
        page = upload(client, "tasks_taskconfig", "tasks.csv", header + b"share,,POST,^/s/$,,0,in_use,\n").content.decode()
        assert "You may not change the status from editing to in_use" in page
        assert TaskConfig.objects.get().status == "editing"

    def test_a_rule_editor_still_imports_drafts(self, client, post_task):
        client.force_login(role("rule editors", "eddie"))
        preview = upload(client, "rules_scorerule", "rules.csv", rules_csv("new,post,,count,5,day,1,,,,,true,editing"))
        assert "Confirm import" in preview.content.decode()
        confirm(client, "rules_scorerule", preview)
        assert ScoreRule.objects.get().status == "editing"

    def test_someone_with_both_roles_activates_by_sheet(self, client, post_task):
        both = role("rule editors", "ed-and-abby")
        both.groups.add(Group.objects.get(name="rule approvers"))
        client.force_login(both)
        preview = upload(client, "rules_scorerule", "rules.csv", rules_csv("new,post,,count,5,day,1,,,,,true,active"))
        confirm(client, "rules_scorerule", preview)
        rule = ScoreRule.objects.get()
        assert rule.status == "active" and rule.history.latest().history_user == both


class TestExport:
    def export(self, client, model: str, resource: str, fmt: str) -> bytes:
        from apps.rules.resources import ObjectPointsResource, ScoreRuleResource
        from apps.tasks.resources import TaskConfigResource

        cls = {
            "ScoreRuleResource": ScoreRuleResource,
            "TaskConfigResource": TaskConfigResource,
            "ObjectPointsResource": ObjectPointsResource,
        }[resource]
        data = {"format": fmt, "resource": "0"}
        data.update({f"{resource.lower()}_{name}": "on" for name in cls().get_export_order()})
        response = client.post(reverse(f"admin:{model}_export"), data)
        assert response.status_code == 200, response.content[:2000]
        return response.content

    def test_csv_export_escapes_formula_looking_text(self, client, operator, post_task):
        ScoreRule.objects.create(task_type="post", score_type="r", points=1, score_desc="=1+1")
        ScoreRule.objects.create(task_type="post", score_type="s", points=1, score_desc="-5 when deleted")
        rows = list(csv.DictReader(io.StringIO(self.export(client, "rules_scorerule", "ScoreRuleResource", CSV_FORMAT).decode())))
        assert [row["Description"] for row in rows] == ["'=1+1", "'-5 when deleted"]

    def test_xlsx_export_holds_no_formula_and_round_trips(self, client, operator, post_task):
        ScoreRule.objects.create(task_type="post", score_type="r", points=1, score_desc='=HYPERLINK("http://x")')
        content = self.export(client, "rules_scorerule", "ScoreRuleResource", XLSX_FORMAT)
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        cells = [cell for row in sheet.iter_rows() for cell in row]
        assert not [cell for cell in cells if cell.data_type == "f"]
        assert '\'=HYPERLINK("http://x")' in [cell.value for cell in cells]
        # Imported back unchanged, the escaped text is the stored text again: nothing to do.
        preview = upload(client, "rules_scorerule", "rules.xlsx", content, XLSX_FORMAT)
        assert "Nothing was imported" not in preview.content.decode()
        assert preview.context["result"].totals["skip"] == 1
        assert ScoreRule.objects.get().score_desc == '=HYPERLINK("http://x")'

    def test_object_points_export_follows_the_rule_filter(self, client, operator, post_task):
        mine = ScoreRuleFactory(task_type="post", score_type="mine")
        ScoreRuleObjectPoints.objects.create(rule=mine, business_id="7", points=20)
        ScoreRuleObjectPoints.objects.create(
            rule=ScoreRuleFactory(task_type="post", score_type="other"), business_id="8", points=5
        )
        data = {
            "format": CSV_FORMAT,
            "resource": "0",
            "objectpointsresource_score_type": "on",
            "objectpointsresource_business_id": "on",
            "objectpointsresource_points": "on",
        }
        url = reverse("admin:rules_scoreruleobjectpoints_export") + f"?rule__id__exact={mine.pk}"
        content = client.post(url, data).content.decode()
        assert list(csv.reader(io.StringIO(content))) == [["Rule code", "Business id", "Points"], ["mine", "7", "20"]]


def test_the_export_page_names_columns_as_the_admin_does(client, operator):
    html = client.get(reverse("admin:rules_scorerule_export")).content.decode()
    assert "Recipient cap" in html and "Description" in html
    assert "Number Limit All" not in html and "Score Desc" not in html

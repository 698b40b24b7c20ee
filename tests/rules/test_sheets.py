"""Rule sheets through `import_rules` / `export_rules` (SPEC §7, G8)."""

import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.rules.models import ScoreRule, ScoreRuleObjectPoints
from apps.tasks.models import TaskConfig
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

RULE_HEADER = (
    "score_type,task_type,score_desc,kind,points,statistical_period,required_number_of_times,"
    "award_limit_per_period,number_limit_all,start_time,end_time,can_repeat,status\n"
)

# The admin's labels, which head the columns of exports and name them in messages (sheets still
# read the codes, as the test sheets here are written).
LABELS = {
    "score_type": "Rule code",
    "task_type": "Task type",
    "score_desc": "Description",
    "points": "Points",
    "statistical_period": "Period",
    "can_repeat": "Can repeat",
    "start_time": "Start time",
    "end_time": "End time",
}


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def import_rules(path: str, resource: str = "rules", *extra: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_rules", path, "--resource", resource, *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(path: str, resource: str = "rules") -> str:
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was applied|could not be read|formula|Unknown file type"):
        call_command("import_rules", path, "--resource", resource, stderr=err, stdout=io.StringIO())
    return err.getvalue()


@pytest.fixture(autouse=True)
def op(db):
    """The operator the status-changing imports name with --user."""
    return UserFactory(username="op", is_staff=True, is_superuser=True)


AS_OP = ("--user", "op")


@pytest.fixture
def post_task():
    return TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")


def test_a_sheet_creates_rules_in_any_status_with_empty_cells_as_none(tmp_path, post_task, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    path = write(
        tmp_path,
        "rules.csv",
        RULE_HEADER
        + "post-each,post,Each post,count,5,day,1,10,,2026-12-01 00:00:00,,true,active\n"
        + "first-post,post,First post,count,10,none,,1,100,,,,editing\n",
    )
    out, _ = import_rules(path, "rules", *AS_OP)
    assert "applied: new 2" in out
    each = ScoreRule.objects.get(score_type="post-each")
    assert (each.status, each.points, each.award_limit_per_period, each.number_limit_all) == ("active", 5, 10, None)
    assert each.start_time == datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    first = ScoreRule.objects.get(score_type="first-post")
    assert (first.required_number_of_times, first.can_repeat, first.status) == (1, True, "editing")
    assert first.history.latest().history_change_reason == "imported"


def test_one_bad_row_applies_nothing_and_names_row_and_column(tmp_path, post_task):
    path = write(
        tmp_path,
        "rules.csv",
        RULE_HEADER
        + "good,post,Fine,count,5,day,1,,,,,true,active\n"
        + "bad-period,post,Oops,count,5,fortnight,1,,,,,true,active\n"
        + "bad-points,post,Oops,count,-3,day,1,,,,,true,active\n",
    )
    errors = refused(path)
    assert "row 3, column Period: 'fortnight' is not one of: day, week, month, year, none" in errors
    assert "row 4, column Points" in errors
    assert not ScoreRule.objects.exists()


def test_frozen_field_of_an_active_rule_is_refused(tmp_path, post_task):
    ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="active")
    path = write(tmp_path, "rules.csv", RULE_HEADER + "post-each,post,Each post,count,50,day,1,,,,,true,active\n")
    errors = refused(path)
    assert "row 2, column Points: points cannot change while post-each is active" in errors
    assert ScoreRule.objects.get().points == 5


def test_retiring_through_a_sheet_is_allowed(tmp_path, post_task):
    ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="active")
    path = write(tmp_path, "rules.csv", RULE_HEADER + "post-each,post,,count,5,day,1,,,,,true,retired\n")
    import_rules(path, "rules", *AS_OP)
    assert ScoreRule.objects.get().status == "retired"


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ('=HYPERLINK("http://x"),post,x,count,5,day,1,,,,,true,editing', "score_type", "formula"),
        ("r,post,+cmd|' /C calc'!A0,count,5,day,1,,,,,true,editing", "score_desc", "formula"),
        ("r,post," + "x" * 300 + ",count,5,day,1,,,,,true,editing", "score_desc", "at most 255 characters"),
        ("r,post,x,count,5.5,day,1,,,,,true,editing", "points", "Enter a whole number; '5.5' is not one."),
        ("r,post,x,count,1000000001,day,1,,,,,true,editing", "points", "At most 1000000000 points in one amount"),
        ("r,post,x,count,9223372036854775807,day,1,,,,,true,editing", "points", "At most 1000000000 points"),
        ("r,nope,x,count,5,day,1,,,,,true,editing", "task_type", "No task config has the task type nope"),
        ("r,post,x,streak,5,none,1,,,,,true,editing", "statistical_period", "streak needs a period"),
        ("r,post,x,count,5,day,1,,,,,maybe,editing", "can_repeat", "not true or false"),
        ("r,post,x,count,5,day,1,,,2026-13-45,,true,editing", "start_time", ""),
        ("r,post,x,count,5,day,1,,,2026-12-02,2026-12-01,true,editing", "end_time", "after the start time"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(tmp_path, post_task, row, column, message):
    errors = refused(write(tmp_path, "rules.csv", RULE_HEADER + row + "\n"))
    assert f"row 2, column {LABELS[column]}" in errors
    assert message in errors
    assert not ScoreRule.objects.exists()


def test_dry_run_applies_nothing(tmp_path, post_task):
    path = write(tmp_path, "rules.csv", RULE_HEADER + "post-each,post,Each post,count,5,day,1,,,,,true,active\n")
    out, _ = import_rules(path, "rules", "--dry-run", *AS_OP)
    assert "would apply: new 1" in out
    assert not ScoreRule.objects.exists()


def test_tasks_sheet_round_trips_through_every_format(tmp_path):
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", success_json_field="code", success_json_value="0")
    TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<id>\d+)/share/$", id_group_name="id", priority=3)
    for extension in ("csv", "xlsx", "json"):
        path = str(tmp_path / f"tasks.{extension}")
        call_command("export_rules", path, "--resource", "tasks", stdout=io.StringIO())
        out, _ = import_rules(path, "tasks")
        assert "skip 2" in out, extension
    assert TaskConfig.objects.count() == 2


def test_tasks_sheet_with_a_bad_regex_names_it(tmp_path):
    header = "task_type,task_desc,method,interface_name,id_group_name,priority,status,reverses\n"
    path = write(tmp_path, "tasks.csv", header + "share,Share,post,^/posts/(?P<id>\\d+/share/$,id,0,in_use,\n")
    errors = refused(path, "tasks")
    assert "row 2, column Path regex: Not a valid regular expression" in errors
    assert not TaskConfig.objects.exists()


def test_tasks_sheet_creates_configs_with_method_in_any_case(tmp_path):
    header = "task_type,task_desc,method,interface_name,id_group_name,priority,status,reverses\n"
    path = write(
        tmp_path,
        "tasks.csv",
        header + "post,Post,post,^/posts/$,,,in_use,\npost-delete,Delete,POST,^/posts/(?P<id>\\d+)/delete/$,id,5,editing,post\n",
    )
    import_rules(path, "tasks", *AS_OP)
    assert list(TaskConfig.objects.order_by("task_type").values_list("task_type", "method", "priority", "reverses")) == [
        ("post", "POST", 0, ""),
        ("post-delete", "POST", 5, "post"),
    ]


def test_object_points_for_a_draft_rule_and_refused_for_an_active_one(tmp_path, post_task):
    ScoreRuleFactory(task_type="post", score_type="draft-rule", status="editing")
    ScoreRuleFactory(task_type="post", score_type="live-rule", status="active")
    header = "score_type,business_id,points\n"
    import_rules(write(tmp_path, "op.csv", header + "draft-rule,42,20\n"), "object-points")
    assert ScoreRuleObjectPoints.objects.get().points == 20
    errors = refused(write(tmp_path, "op2.csv", header + "live-rule,42,20\nno-such-rule,1,2\n"), "object-points")
    assert "cannot change while it is active" in errors
    assert "row 3, column Rule code: No rule has the code 'no-such-rule'." in errors
    assert ScoreRuleObjectPoints.objects.count() == 1


def test_object_points_beyond_the_bound_are_refused(tmp_path, post_task):
    ScoreRuleFactory(task_type="post", score_type="draft-rule", status="editing")
    errors = refused(
        write(tmp_path, "op.csv", "score_type,business_id,points\ndraft-rule,42,4611686018427387904\n"), "object-points"
    )
    assert "row 2, column Points: At most 1000000000 points in one amount" in errors
    assert not ScoreRuleObjectPoints.objects.exists()


def test_broken_xlsx_gets_a_clear_error(tmp_path, post_task):
    path = tmp_path / "rules.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(CommandError, match="Not a readable XLSX file"):
        import_rules(str(path))


def test_formula_cells_in_xlsx_are_refused(tmp_path, post_task):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(RULE_HEADER.strip().split(","))
    sheet.append(["r", "post", "x", "count", "=2+3", "day", 1, None, None, None, None, True, "editing"])
    path = tmp_path / "rules.xlsx"
    book.save(path)
    with pytest.raises(CommandError, match="Row 2, column E holds a formula"):
        import_rules(str(path))
    assert not ScoreRule.objects.exists()


def test_xlsx_with_real_datetimes_and_numbers(tmp_path, post_task, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(RULE_HEADER.strip().split(","))
    sheet.append(["r", "post", "x", "count", 5, "day", 2, 3, None, datetime(2026, 10, 25, 2, 30), None, False, "active"])
    path = tmp_path / "rules.xlsx"
    book.save(path)
    import_rules(str(path), "rules", *AS_OP)
    rule = ScoreRule.objects.get()
    assert (rule.points, rule.required_number_of_times, rule.award_limit_per_period, rule.can_repeat) == (5, 2, 3, False)
    # 02:30 happens twice in Berlin that night; a naive time means the first (CEST, UTC+2).
    assert rule.start_time == datetime(2026, 10, 25, 0, 30, tzinfo=ZoneInfo("UTC"))


def test_malformed_json_and_unknown_extension(tmp_path):
    with pytest.raises(CommandError, match="could not be read"):
        import_rules(write(tmp_path, "rules.json", "[{not json"))
    with pytest.raises(CommandError, match="Unknown file type"):
        import_rules(write(tmp_path, "rules.txt", "x"))


def test_export_escapes_formulas(tmp_path, post_task):
    ScoreRule.objects.create(task_type="post", score_type="r", points=1, score_desc="=1+1")
    path = tmp_path / "rules.csv"
    call_command("export_rules", str(path), "--resource", "rules", stdout=io.StringIO())
    assert ",=1+1," not in path.read_text()


def test_formula_looking_text_survives_export_and_import_unchanged(tmp_path, post_task):
    texts = ["=1+1", "-5 when a post is deleted", "'=already quoted", "plain"]
    for n, text in enumerate(texts):
        ScoreRule.objects.create(task_type="post", score_type=f"r{n}", points=1, score_desc=text)
    for extension in ("csv", "xlsx", "json"):
        path = tmp_path / f"rules.{extension}"
        call_command("export_rules", str(path), "--resource", "rules", stdout=io.StringIO())
        out, _ = import_rules(str(path))
        assert "skip 4" in out, extension
    assert list(ScoreRule.objects.order_by("score_type").values_list("score_desc", flat=True)) == texts
    exported = (tmp_path / "rules.csv").read_text()
    assert ",'=1+1," in exported and ",'-5 when a post is deleted," in exported and ",''=already quoted," in exported


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("score_desc", "Each\u0000post", "control character"),
        ("score_type", "post\u0007each", "control character"),
        ("score_desc", "Each \ud800 post", "lone surrogate"),
    ],
)
def test_control_characters_and_lone_surrogates_in_cells_are_refused(tmp_path, post_task, column, value, message):
    row = {"score_type": "post-each", "task_type": "post", "score_desc": "Each post", "kind": "count", "points": 5}
    row.update({"statistical_period": "day", "required_number_of_times": 1, "status": "editing", column: value})
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([row]), encoding="utf-8")  # NUL and the surrogate as \u escapes
    errors = refused(str(path))
    assert f"item 1, column {LABELS[column]}" in errors and message in errors
    assert not ScoreRule.objects.exists()


def test_line_breaks_and_tabs_in_a_description_are_kept(tmp_path, post_task):
    row = 'post-each,post,"Each post:\tone point\nper post",count,5,day,1,,,,,true,editing\n'
    import_rules(write(tmp_path, "rules.csv", RULE_HEADER + row))
    assert ScoreRule.objects.get().score_desc == "Each post:\tone point\nper post"


class TestStatusChangesNeedTheOperatorsRights:
    """From a shell as in the admin (G9): a sheet changes a status only for an operator allowed to."""

    SHEET = RULE_HEADER + "draft,post,,count,5,day,1,,,,,true,active\nlive,post,,count,5,day,1,,,,,true,retired\n"

    @pytest.fixture
    def rules(self, post_task):
        ScoreRuleFactory(task_type="post", score_type="draft", points=5, status="editing")
        ScoreRuleFactory(task_type="post", score_type="live", points=5, status="active")

    def statuses(self) -> dict[str, str]:
        return dict(ScoreRule.objects.values_list("score_type", "status"))

    def test_without_user_no_status_changes(self, tmp_path, rules):
        errors = refused(write(tmp_path, "rules.csv", self.SHEET))
        assert "row 2, column Status: You may not change the status from editing to active" in errors
        assert "row 3, column Status: You may not change the status from active to retired" in errors
        assert self.statuses() == {"draft": "editing", "live": "active"}

    def test_a_rule_editor_named_with_user_cannot_either(self, tmp_path, rules):
        editor = UserFactory(username="eddie", is_staff=True)
        editor.groups.add(Group.objects.get(name="rule editors"))
        with pytest.raises(CommandError, match="nothing was applied"):
            import_rules(write(tmp_path, "rules.csv", self.SHEET), "rules", "--user", "eddie")
        assert self.statuses() == {"draft": "editing", "live": "active"}

    def test_an_operator_without_add_and_change_rights_cannot_import(self, tmp_path, rules):
        approver = UserFactory(username="abby", is_staff=True)
        approver.groups.add(Group.objects.get(name="rule approvers"))
        with pytest.raises(CommandError, match="abby may not import this sheet"):
            import_rules(write(tmp_path, "rules.csv", self.SHEET), "rules", "--user", "abby")
        with pytest.raises(CommandError, match="No active user is called nobody"):
            import_rules(write(tmp_path, "rules.csv", self.SHEET), "rules", "--user", "nobody")
        assert self.statuses() == {"draft": "editing", "live": "active"}

    def test_an_operator_with_both_roles_changes_them_and_is_in_history(self, tmp_path, rules):
        both = UserFactory(username="both", is_staff=True)
        both.groups.add(*Group.objects.filter(name__in=("rule editors", "rule approvers")))
        import_rules(write(tmp_path, "rules.csv", self.SHEET), "rules", "--user", "both")
        assert self.statuses() == {"draft": "active", "live": "retired"}
        assert ScoreRule.objects.get(score_type="draft").history.latest().history_user == both


class TestColumnsAreTheAdminsLabels:
    """Exports head their columns with the admin's labels; imports read those, in either language, and the old codes."""

    def test_export_headers_are_the_admins_labels(self, tmp_path, post_task):
        ScoreRuleFactory(task_type="post", score_type="post-each", score_desc="Each post", number_limit_all=100)
        path = str(tmp_path / "rules.csv")
        call_command("export_rules", path, "--resource", "rules", stdout=io.StringIO())
        header = Path(path).read_text(encoding="utf-8").splitlines()[0].split(",")
        assert header[:3] == ["Rule code", "Task type", "Description"]
        assert "Recipient cap" in header and "Award limit per period" in header
        assert not {"score_desc", "number_limit_all", "Score Desc", "Number Limit All"} & set(header)

    def test_an_exported_sheet_imports_unchanged(self, tmp_path, post_task):
        ScoreRuleFactory(task_type="post", score_type="post-each", score_desc="Each post", points=5)
        path = str(tmp_path / "rules.csv")
        call_command("export_rules", path, "--resource", "rules", stdout=io.StringIO())
        out, _ = import_rules(path, "rules", *AS_OP)
        assert ScoreRule.objects.get().score_desc == "Each post"

    def test_a_sheet_with_the_old_code_headers_still_imports(self, tmp_path, post_task):
        import_rules(write(tmp_path, "rules.csv", RULE_HEADER + "post-each,post,Each post,count,5,day,1,10,100,,,true,editing\n"))
        rule = ScoreRule.objects.get()
        assert (rule.score_desc, rule.award_limit_per_period, rule.number_limit_all) == ("Each post", 10, 100)

    def test_a_sheet_headed_in_chinese_imports_in_english(self, tmp_path, post_task):
        from django.utils import translation

        with translation.override("zh-hans"):
            labels = [
                str(ScoreRule._meta.get_field(name).verbose_name)
                for name in ("score_type", "task_type", "score_desc", "points", "statistical_period", "number_limit_all")
            ]
        assert labels[0] != "rule code"  # the catalogue has them
        import_rules(write(tmp_path, "rules.csv", ",".join(labels) + "\npost-each,post,Each post,5,day,100\n"))
        assert ScoreRule.objects.get().number_limit_all == 100

    def test_a_missing_key_column_is_named_by_its_label(self, tmp_path, post_task):
        errors = io.StringIO()
        with pytest.raises(CommandError, match="The sheet has no column Rule code"):
            call_command("import_rules", write(tmp_path, "rules.csv", "points\n5\n"), stdout=io.StringIO(), stderr=errors)


MESSAGE = "Points must be a positive whole number (0 only for a rule that grants a badge)."


@pytest.mark.parametrize("value", ["-5", "0"])
def test_points_below_one_get_one_message_in_the_admin_form_and_in_a_sheet(tmp_path, post_task, client, op, value):
    """The same cell, the same words, once: not "≥ 0" in one place and "a positive whole number" in another."""
    errors = refused(write(tmp_path, "rules.csv", RULE_HEADER + f"r,post,x,count,{value},day,1,,,,,true,editing\n"))
    assert errors.strip() == "row 2, column Points: " + MESSAGE

    from django.urls import reverse

    client.force_login(op)
    response = client.post(
        reverse("admin:rules_scorerule_add"),
        {"task_type": "post", "score_type": "r", "kind": "count", "points": value, "statistical_period": "day"},
    )
    form_errors = response.context["adminform"].form.errors
    assert form_errors["points"] == [MESSAGE]


# --- The badge column (SPEC §12): by the badge's code; empty is none ------------------------------

BADGE_HEADER = "score_type,task_type,kind,points,badge,statistical_period,status\n"


def test_the_badge_column_grants_a_badge_by_code_and_empty_is_none(tmp_path, post_task):
    from apps.rules.models import Badge

    first = Badge.objects.create(code="first-post", name="First post")
    rows = "first,post,count,0,first-post,none,editing\neach,post,count,5,,day,editing\n"
    import_rules(write(tmp_path, "rules.csv", BADGE_HEADER + rows))
    assert ScoreRule.objects.get(score_type="first").badge == first
    assert ScoreRule.objects.get(score_type="each").badge is None
    exported = str(tmp_path / "out.json")
    call_command("export_rules", exported, stdout=io.StringIO())
    rows = json.loads(Path(exported).read_text(encoding="utf-8"))
    assert {row["Rule code"]: row["Badge"] for row in rows} == {"first": "first-post", "each": ""}


def test_an_unknown_badge_code_is_a_row_error_naming_the_codes(tmp_path, post_task):
    from apps.rules.models import Badge

    Badge.objects.create(code="first-post", name="First post")
    errors = refused(write(tmp_path, "rules.csv", BADGE_HEADER + "first,post,count,0,fist-post,none,editing\n"))
    assert "row 2, column Badge: No badge has the code 'fist-post'; use one of: first-post" in errors
    assert not ScoreRule.objects.exists()


def test_zero_points_without_a_badge_is_refused_by_the_sheet(tmp_path, post_task):
    errors = refused(write(tmp_path, "rules.csv", BADGE_HEADER + "first,post,count,0,,none,editing\n"))
    assert "0 only for a rule that grants a badge" in errors
    assert not ScoreRule.objects.exists()

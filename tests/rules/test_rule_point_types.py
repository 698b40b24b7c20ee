"""Each rule awards one point type (SPEC §11): the rule admin, the rule sheets, copy as draft and the dry run say which."""

import io
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import PointType, ScoreRecord
from apps.ledger.point_types import default_point_type_id
from apps.rules.models import ScoreRule
from apps.rules.services import workflow
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "score_type,task_type,points,point_type,statistical_period,status\n"


@pytest.fixture
def exp(db):
    return PointType.objects.create(code="exp", name="Experience", spendable=False)


@pytest.fixture
def op(db):
    return UserFactory(username="op", is_staff=True, is_superuser=True)


@pytest.fixture
def post_task(db):
    return TaskConfigFactory(task_type="post", interface_name=r"^/posts/$")


def import_rules(tmp_path, text: str, *extra: str) -> str:
    path = tmp_path / "rules.csv"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    call_command("import_rules", str(path), "--resource", "rules", "--user", "op", *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(tmp_path, text: str) -> str:
    path = tmp_path / "rules.csv"
    path.write_text(text, encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was applied"):
        call_command("import_rules", str(path), "--resource", "rules", "--user", "op", stderr=err, stdout=io.StringIO())
    return err.getvalue()


class TestSheets:
    def test_the_column_names_a_type_by_code_and_an_empty_cell_is_the_default(self, tmp_path, op, post_task, exp):
        out = import_rules(tmp_path, HEADER + "post-exp,post,20,exp,day,editing\npost-each,post,5,,day,editing\n")
        assert "applied: new 2" in out
        assert ScoreRule.objects.get(score_type="post-exp").point_type == exp
        assert ScoreRule.objects.get(score_type="post-each").point_type_id == default_point_type_id()

    def test_a_sheet_without_the_column_keeps_each_rules_type(self, tmp_path, op, post_task, exp):
        ScoreRuleFactory(task_type="post", score_type="post-exp", status="editing", point_type=exp)
        import_rules(tmp_path, "score_type,task_type,points,statistical_period,status\npost-exp,post,30,day,editing\n")
        rule = ScoreRule.objects.get(score_type="post-exp")
        assert (rule.points, rule.point_type) == (30, exp)

    def test_an_unknown_code_is_refused_row_by_row_and_nothing_applies(self, tmp_path, op, post_task, exp):
        errors = refused(tmp_path, HEADER + "good,post,5,exp,day,editing\nbad,post,5,gold,day,editing\n")
        assert "row 3, column Point type: No point type has the code 'gold'; use one of: points, exp" in errors
        assert "row 2" not in errors
        assert not ScoreRule.objects.exists()

    def test_the_type_of_an_active_rule_is_frozen(self, tmp_path, op, post_task, exp):
        ScoreRuleFactory(task_type="post", score_type="post-each", points=5, status="active")
        errors = refused(tmp_path, HEADER + "post-each,post,5,exp,day,active\n")
        assert "row 2, column Point type: point type cannot change while post-each is active" in errors
        assert ScoreRule.objects.get().point_type_id == default_point_type_id()

    def test_export_writes_the_code_and_reads_back_unchanged(self, tmp_path, op, post_task, exp):
        ScoreRuleFactory(task_type="post", score_type="post-exp", points=20, status="active", point_type=exp)
        path = tmp_path / "out.csv"
        call_command("export_rules", str(path), "--resource", "rules", stdout=io.StringIO())
        text = path.read_text(encoding="utf-8")
        header, row = text.splitlines()[:2]
        assert "Point type" in header.split(",") and ",exp," in f",{row},"
        out = io.StringIO()
        call_command("import_rules", str(path), "--resource", "rules", "--user", "op", stdout=out, stderr=io.StringIO())
        assert out.getvalue().strip() == "rules: applied: skip 1"  # unchanged
        assert ScoreRule.objects.get().point_type == exp


class TestWorkflowAndAdmin:
    def test_copy_as_draft_keeps_the_type(self, post_task, exp, op):
        rule = ScoreRuleFactory(task_type="post", score_type="post-exp", status="active", point_type=exp)
        draft = workflow.score_rule_copy_as_draft(rule=rule, actor=op)
        assert draft.status == "editing" and draft.point_type == exp

    def test_the_rule_form_list_and_filter_show_the_type(self, client, op, post_task, exp):
        client.force_login(op)
        ScoreRuleFactory(task_type="post", score_type="post-exp", status="editing", point_type=exp)
        ScoreRuleFactory(task_type="post", score_type="post-each", status="editing")
        listed = client.get(reverse("admin:rules_scorerule_changelist")).content.decode()
        assert '<td class="field-points_column">1<br><span class="jifen-point-type">Experience</span></td>' in listed
        filtered = client.get(reverse("admin:rules_scorerule_changelist"), {"point_type__id__exact": exp.pk}).content.decode()
        assert "post-exp" in filtered and "post-each" not in filtered
        rule = ScoreRule.objects.get(score_type="post-exp")
        form = client.get(reverse("admin:rules_scorerule_change", args=[rule.pk])).content.decode()
        assert 'name="point_type"' in form

    def test_an_active_rules_type_is_read_only_and_activation_says_the_type(self, client, op, post_task, exp):
        client.force_login(op)
        draft = ScoreRuleFactory(task_type="post", score_type="post-exp", status="editing", point_type=exp)
        confirm = client.get(reverse("admin:rules_scorerule_workflow", args=[draft.pk, "activate"])).content.decode()
        assert "Its points are Experience (the point type exp)." in confirm
        workflow.score_rule_activate(rule=draft, actor=op)
        form = client.get(reverse("admin:rules_scorerule_change", args=[draft.pk])).content.decode()
        assert 'name="point_type"' not in form and "Experience" in form

    def test_the_dry_run_says_which_points(self, client, op, post_task, exp):
        client.force_login(op)
        rule = ScoreRuleFactory(task_type="post", score_type="post-exp", status="editing", point_type=exp, points=20)
        alice = UserFactory(username="alice")
        event_process(
            event=Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="post", occurred_at=timezone.now() - timedelta(days=1))
        )
        since = (timezone.localdate() - timedelta(days=3)).isoformat()
        html = client.get(reverse("admin:rules_scorerule_dry_run", args=[rule.pk]), {"since": since}).content.decode()
        assert '<td id="dry-run-points">20 <span class="help">Experience</span>' in html


def test_a_rule_of_another_type_awards_that_types_account(post_task, exp):
    ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
    ScoreRuleFactory(task_type="post", score_type="post-exp", points=20, point_type=exp)
    alice = UserFactory(username="alice")
    event_process(event=Event(event_id=uuid.uuid4(), user_id=alice.pk, task_type="post", occurred_at=timezone.now()))
    by_type = dict(ScoreRecord.objects.filter(user=alice).values_list("point_type__code", "trade_amount"))
    assert by_type == {"points": 5, "exp": 20}

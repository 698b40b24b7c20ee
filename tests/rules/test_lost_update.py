"""G12: an operator's save of a live rule never overwrites what workers own (its recipient count).

Each test reads the rule as an operator's request would, lets a worker hand out capped places
meanwhile, then saves a harmless change (a typo in the description) by every path an operator
has: the service, the admin's change form, a sheet import. The cap must stay exact afterwards.
"""

import io
import threading
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.rules.models import RuleRecipient, ScoreRule
from apps.rules.services.workflow import score_rule_update
from apps.tracking.events import Event
from apps.tracking.services.pipeline import event_process, events_process_batch
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory

TZ = ZoneInfo("Asia/Shanghai")
CAP = 2


@pytest.fixture
def capped(db):
    TaskConfigFactory(task_type="post")
    return ScoreRuleFactory(task_type="post", score_type="first-post", points=10, statistical_period="none", number_limit_all=CAP)


def post(user) -> None:
    event_process(
        event=Event(event_id=uuid.uuid4(), user_id=user.pk, task_type="post", occurred_at=datetime(2026, 11, 2, 12, tzinfo=TZ))
    )


def assert_cap_exact(rule: ScoreRule) -> None:
    rule.refresh_from_db()
    assert rule.recipients_count == RuleRecipient.objects.filter(rule=rule).count() == CAP


def test_a_service_save_keeps_the_places_a_worker_gave_out_meanwhile(capped):
    stale = ScoreRule.objects.get(pk=capped.pk)  # the operator's request reads the rule: no recipients yet
    for name in ("u1", "u2"):
        post(UserFactory(username=name))
    score_rule_update(rule=stale, score_desc="First post ever (typo fixed)")
    post(UserFactory(username="u3"))  # the cap is reached: no third place
    assert_cap_exact(capped)
    assert ScoreRule.objects.get(pk=capped.pk).score_desc == "First post ever (typo fixed)"


def test_an_admin_save_keeps_the_places_a_worker_gave_out_meanwhile(capped, monkeypatch):
    operator = UserFactory(username="op", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    real_clean = ScoreRule.clean
    raced = []

    def clean_while_a_worker_works(rule):
        # Between the admin reading the rule and saving it, a worker gives out both places.
        if not raced:
            raced.append(True)
            for name in ("u1", "u2"):
                post(UserFactory(username=name))
        return real_clean(rule)

    monkeypatch.setattr(ScoreRule, "clean", clean_while_a_worker_works)
    data = {
        "task_type": "post",
        "score_type": "first-post",
        "score_desc": "First post ever",
        "kind": "count",
        "points": 10,
        "statistical_period": "none",
        "required_number_of_times": 1,
        "number_limit_all": CAP,
        "can_repeat": "on",
        "cooldown": "",
        "cooldown_scope": "user",
        "start_time_0": "",
        "start_time_1": "",
        "end_time_0": "",
        "end_time_1": "",
        "object_points-TOTAL_FORMS": 0,
        "object_points-INITIAL_FORMS": 0,
    }
    response = client.post(reverse("admin:rules_scorerule_change", args=[capped.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert raced
    post(UserFactory(username="u3"))
    assert_cap_exact(capped)


def test_a_sheet_import_keeps_the_places_a_worker_gave_out_meanwhile(capped, tmp_path, monkeypatch):
    from apps.core import sheets

    real_save = sheets.SheetResourceMixin.do_instance_save

    def save_after_a_worker(self, instance, is_create):
        for name in ("u1", "u2"):  # the sheet's row was read before these places were given out
            post(UserFactory(username=name))
        return real_save(self, instance, is_create)

    monkeypatch.setattr(sheets.SheetResourceMixin, "do_instance_save", save_after_a_worker)
    path = tmp_path / "rules.csv"
    path.write_text(
        "score_type,task_type,score_desc,kind,points,statistical_period,required_number_of_times,"
        "award_limit_per_period,number_limit_all,start_time,end_time,can_repeat,status\n"
        f"first-post,post,First post ever,count,10,none,1,,{CAP},,,true,active\n",
        encoding="utf-8",
    )
    call_command("import_rules", str(path), "--resource", "rules", stdout=io.StringIO(), stderr=io.StringIO())
    post(UserFactory(username="u3"))
    assert_cap_exact(capped)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_and_an_operator_racing_on_one_capped_rule_keep_the_cap():
    """Real threads: one saves the rule's description over and over while another gives out places."""
    TaskConfigFactory(task_type="post")
    rule = ScoreRuleFactory(task_type="post", score_type="first-post", points=10, statistical_period="none", number_limit_all=20)
    users = [UserFactory(username=f"racer-{i}") for i in range(120)]
    done = threading.Event()
    errors: list[BaseException] = []

    def operator() -> None:
        try:
            n = 0
            while not done.is_set():
                stale = ScoreRule.objects.get(pk=rule.pk)
                score_rule_update(rule=stale, score_desc=f"First post ever ({n})")
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            connection.close()  # the thread's own connection

    thread = threading.Thread(target=operator)
    thread.start()
    try:
        for start in range(0, len(users), 10):
            events_process_batch(
                payloads=[
                    Event(
                        event_id=uuid.uuid4(),
                        user_id=user.pk,
                        task_type="post",
                        occurred_at=datetime(2026, 11, 2, 12, tzinfo=TZ),
                    ).to_payload()
                    for user in users[start : start + 10]
                ]
            )
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    rule.refresh_from_db()
    assert rule.recipients_count == RuleRecipient.objects.filter(rule=rule).count() == 20

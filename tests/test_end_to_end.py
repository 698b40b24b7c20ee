"""The thin path, for real: a request on the site, the broker, a worker process, the ledger."""

import pytest
from django.urls import reverse

from apps.ledger.models import ScoreRecord
from apps.tasks.models import UserTaskRecord
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.workers import WorkerProcess, wait_until


@pytest.fixture
def worker(transactional_db):
    process = WorkerProcess()
    yield process
    process.stop()


@pytest.mark.worker
def test_sign_in_reaches_the_ledger_through_a_real_worker(client, worker):
    TaskConfigFactory(task_type="sign-in", interface_name=r"^/checkin/$", success_json_field="code", success_json_value="0")
    rule = ScoreRuleFactory(task_type="sign-in", score_type="sign-in-daily", points=1, award_limit_per_period=1)
    alice = UserFactory(username="alice")
    client.force_login(alice)

    response = client.post(reverse("checkin"))
    assert response.json()["code"] == 0

    entry = wait_until(lambda: ScoreRecord.objects.filter(user=alice).first(), timeout_s=20)
    assert entry is not None, "no ledger entry within 20 s; worker log:\n" + worker.log()
    assert (entry.kind, entry.trade_amount, entry.amount_before_trade, entry.amount_after_trade) == ("award", 1, 0, 1)
    assert entry.rule_id == rule.pk
    completion = UserTaskRecord.objects.get(user=alice)
    assert completion.decisions[0]["reason"] == "awarded"

    # The second sign-in of the day is refused by the site itself ({"code": 1}): no new event.
    assert client.post(reverse("checkin")).json()["code"] == 1
    page = client.get(reverse("my-points"))
    assert b'id="balance">1<' in page.content
    assert UserTaskRecord.objects.filter(user=alice).count() == 1

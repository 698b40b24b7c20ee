"""Issue 6's story, end to end with a real worker: an operator plans a new rule on a site with a
history, dry-runs it, activates it with a backfill, watches the leaderboard move as another service
posts its events (some forged), and answers a user's "why didn't I get points?"."""

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone

from apps.ledger.models import ScoreRecord
from apps.rules.models import BackfillRun, ScoreRule
from apps.rules.selectors.dry_run import rule_dry_run
from apps.tasks.models import UserTaskRecord
from apps.tasks.services import NewCompletion, completions_create
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def worker(transactional_db):
    process = WorkerProcess()
    yield process
    process.stop()


def signed_post(client, key_id: str, secret: str, body: dict):
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(secret.encode(), b"\n".join([stamp.encode(), b"POST", b"/api/events", raw]), hashlib.sha256)
    headers = {"X-Jifen-Key": key_id, "X-Jifen-Timestamp": stamp, "X-Jifen-Signature": signature.hexdigest()}
    return client.post("/api/events", data=raw, content_type="application/json", headers=headers)


def awarded(rule: ScoreRule) -> dict[int, list[int]]:
    rows = ScoreRecord.objects.filter(rule=rule, kind="award").values("user_id").annotate(p=Sum("trade_amount"), n=Count("id"))
    return {row["user_id"]: [row["p"], row["n"]] for row in rows}


def board(client, rule: ScoreRule) -> list[tuple[int, str, int]]:
    response = client.get("/api/leaderboards", {"period": "all", "rule": rule.score_type})
    assert response.status_code == 200, response.content
    return [(entry["rank"], entry["username"], entry["points"]) for entry in response.json()["entries"]]


def test_plan_dry_run_backfill_leaderboard_events_from_another_service_and_why(client, operator, worker):
    config = TaskConfigFactory(task_type="share", interface_name=r"^/posts/(?P<post>\d+)/share/$", id_group_name="post")
    ann, ben, cat = (UserFactory(username=name) for name in ("ann", "ben", "cat"))
    now = timezone.now()
    # Last week's shares, recorded while no rule of the task was active: ann on four days, ben on
    # two, cat twice within ten minutes (farming).
    history = [(ann, days, str(days)) for days in (1, 2, 3, 4)] + [(ben, 2, "20"), (ben, 3, "21")]
    history += [(cat, 2, "30"), (cat, 2, "31")]
    completions_create(
        completions=[
            NewCompletion(
                task_id=config.pk,
                user_id=user.pk,
                event_id=uuid.uuid4(),
                occurred_at=now - timedelta(days=days) + timedelta(minutes=10 * (business == "31")),
                business_id=business,
            )
            for user, days, business in history
        ]
    )
    rule = ScoreRuleFactory(
        task_type="share",
        score_type="share-bonus",
        status="editing",
        points=5,
        statistical_period="day",
        award_limit_per_period=1,
        cooldown=timedelta(hours=1),
        start_time=now - timedelta(days=7),
    )

    # 1. The dry run, on the draft: what the rule would have awarded, and what stopped the rest.
    dry = rule_dry_run(rule=rule, since=None)
    assert dry.tally.per_user == {ann.pk: [20, 4], ben.pk: [10, 2], cat.pk: [5, 1]}
    assert dry.tally.reasons["cooldown"] == 1
    page = client.get(reverse("admin:rules_scorerule_dry_run", args=[rule.pk]), {"since": (now - timedelta(days=7)).date()})
    assert page.status_code == 200 and "ann" in page.content.decode()

    # 2. Activating it shows those figures first, then awards the past completions once.
    step = reverse("admin:rules_scorerule_workflow", args=[rule.pk, "activate"])
    offer = client.post(step)
    assert offer.status_code == 200 and 'value="backfill"' in offer.content.decode()
    assert client.post(step, {"choice": "backfill"}).status_code == 302
    run = wait_until(lambda: BackfillRun.objects.filter(rule=rule, status__in=["done", "failed"]).first(), timeout_s=60)
    assert run is not None, "the backfill did not finish; worker log:\n" + worker.log()
    assert run.status == "done", run.error
    assert awarded(rule) == dry.tally.per_user
    assert board(client, rule) == [(1, "ann", 20), (2, "ben", 10), (3, "cat", 5)]

    # 3. Another service posts shares through the API: the forged post changes nothing, the
    #    genuine ones reach the ledger through the worker and move cat up the board.
    key, secret = service_key_create(name="blog-app", task_types="share")
    share = {"user": "cat", "method": "POST", "occurred_at": timezone.localtime(now).isoformat()}
    forged = {"events": [{**share, "event_id": str(uuid.uuid4()), "path": "/posts/90/share/"}]}
    assert signed_post(client, key.key_id, "not-the-secret", forged).status_code == 401
    genuine = {"events": [{**share, "event_id": str(uuid.uuid4()), "path": "/posts/91/share/"}]}
    assert signed_post(client, key.key_id, secret, genuine).status_code == 202
    earned = ScoreRecord.objects.filter(rule=rule, user=cat, completion__business_id="91")
    assert wait_until(earned.exists, timeout_s=30), worker.log()
    assert not UserTaskRecord.objects.filter(business_id="90").exists()
    assert board(client, rule) == [(1, "ann", 20), (2, "ben", 10), (2, "cat", 10)]  # a tie: ben got there first

    # 4. Cat asks why the second share of that day earned nothing: the operator sees the cooldown.
    farmed = UserTaskRecord.objects.get(user=cat, business_id="31")
    why = client.get(reverse("admin:tasks_usertaskrecord_why"), {"username": "cat", "completion": farmed.pk})
    assert why.status_code == 200
    assert "cooldown" in why.content.decode()

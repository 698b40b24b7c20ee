"""Another system posts its events through the API, some forged: a real worker records exactly the genuine ones."""

import hashlib
import hmac
import json
import time
import uuid

import pytest

from apps.ledger.models import Account, ScoreRecord
from apps.tasks.models import UserTaskRecord
from apps.tracking.services.service_keys import service_key_create
from tests.factories import ScoreRuleFactory, TaskConfigFactory, UserFactory
from tests.workers import WorkerProcess, wait_until


@pytest.fixture
def worker(transactional_db):
    process = WorkerProcess()
    yield process
    process.stop()


def post(client, key_id: str, secret: str, body: dict, *, timestamp: float | None = None):
    raw = json.dumps(body).encode()
    stamp = str(int(time.time() if timestamp is None else timestamp))
    signature = hmac.new(secret.encode(), b"\n".join([stamp.encode(), b"POST", b"/api/events", raw]), hashlib.sha256)
    headers = {"X-Jifen-Key": key_id, "X-Jifen-Timestamp": stamp, "X-Jifen-Signature": signature.hexdigest()}
    return client.post("/api/events", data=raw, content_type="application/json", headers=headers)


def purchase(n: int, user: str, order: str) -> dict:
    return {
        "event_id": str(uuid.UUID(int=n)),
        "user": user,
        "method": "POST",
        "path": f"/orders/{order}/pay/",
        "occurred_at": "2026-11-20T09:00:00+08:00",
        "country": "CN",
    }


@pytest.mark.worker
def test_genuine_events_reach_the_ledger_once_and_forged_ones_never(client, worker):
    TaskConfigFactory(task_type="purchase", interface_name=r"^/orders/(?P<order>\d+)/pay/$", id_group_name="order")
    ScoreRuleFactory(task_type="purchase", score_type="purchase", points=10, can_repeat=False, statistical_period="none")
    alice, bob, mallory = (UserFactory(username=name) for name in ("alice", "bob", "mallory"))
    key, secret = service_key_create(name="shop", task_types="purchase")

    batch = {"events": [purchase(1, "alice", "100"), purchase(2, "bob", "200"), purchase(3, "alice", "101")]}
    stamp = time.time()
    response = post(client, key.key_id, secret, batch, timestamp=stamp)
    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 3

    # Forged: a guessed secret, an altered copy, a replay, and a bad batch smuggling one event in.
    forged = {"events": [purchase(4, "mallory", "999")]}
    assert post(client, key.key_id, "guessed-secret", forged).status_code == 401
    assert post(client, "jk_0000000000000000", secret, forged).status_code == 401
    assert post(client, key.key_id, secret, forged, timestamp=time.time() - 3600).status_code == 401
    assert post(client, key.key_id, secret, batch, timestamp=stamp).status_code == 409
    smuggled = {"events": [purchase(5, "mallory", "998"), {**purchase(6, "nobody", "997")}]}
    assert post(client, key.key_id, secret, smuggled).status_code == 422

    done = wait_until(lambda: UserTaskRecord.objects.count() == 3, timeout_s=30)
    assert done, "the batch was not processed within 30 s; worker log:\n" + worker.log()
    # The same batch, posted again and signed anew, while the same event is also in flight twice.
    again = post(client, key.key_id, secret, batch, timestamp=time.time() + 1)
    assert again.status_code == 202
    assert again.json()["accepted"] == 0 and len(again.json()["already_recorded"]) == 3
    twice = {"events": [purchase(7, "bob", "201")]}
    assert post(client, key.key_id, secret, twice).status_code == 202
    assert post(client, key.key_id, secret, twice, timestamp=time.time() + 2).status_code == 202

    assert wait_until(lambda: UserTaskRecord.objects.count() == 4, timeout_s=30), worker.log()
    time.sleep(1)  # give a wrongly doubled event the time to show up
    assert UserTaskRecord.objects.count() == 4
    assert sorted(UserTaskRecord.objects.values_list("business_id", flat=True)) == ["100", "101", "200", "201"]
    assert Account.objects.get(user=alice).balance == 20
    assert Account.objects.get(user=bob).balance == 20
    assert not Account.objects.filter(user=mallory).exists()
    assert ScoreRecord.objects.count() == 4
    assert set(ScoreRecord.objects.values_list("country", flat=True)) == {"CN"}

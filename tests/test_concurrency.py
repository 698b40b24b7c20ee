"""Guarantees G3, G5 and G6 (SPEC §9) under real concurrency: several OS processes, one PostgreSQL.

Each test commits its users, task configs and rules, then hands a pool of worker processes their
shares of the event payloads; each worker runs `event_process` over its share. The workers are
connected beforehand and wait at a barrier (a file), so their transactions truly overlap instead
of running one after another.
A worker does not retry: a deadlock or serialization failure is reported as a test failure, with
its traceback, because the account-lock-first design is meant to make them impossible.
"""

import itertools
import json
import os
import random
import subprocess
import sys
import time
import traceback
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection
from django.db.models import Exists, OuterRef

from apps.ledger.models import Account, ScoreRecord
from apps.rules.models import RuleRecipient, ScoreRule, ScoreRuleObjectPoints
from apps.tasks.models import UserTaskRecord
from apps.tracking.events import Event
from apps.tracking.services.pipeline import Outcome, event_process, events_process_batch
from tests.conftest import database_url_for_workers
from tests.factories import ScoreRuleFactory, TaskConfigFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
WORKERS = 4
READY_TIMEOUT_S = 60
ROUND_TIMEOUT_S = 120
POLL_S = 0.01

# The child imports this module after django.setup(), so the worker code is linted with the tests.
_WORKER_COMMAND = "import sys, django; django.setup(); from tests.test_concurrency import worker_main; worker_main(*sys.argv[1:])"


def _wait_for(path: Path, *, stop: Path, parent_pid: int) -> bool:
    """Wait until `path` exists (True), or `stop` does or the test process is gone (False)."""
    while not path.exists():
        if stop.exists() or os.getppid() != parent_pid:
            return False
        time.sleep(POLL_S)
    return True


def worker_main(pool_dir: str, index: str) -> None:
    """Child process: for each round, wait for its start file, process this worker's payloads, write the outcomes."""
    pool, parent_pid = Path(pool_dir), os.getppid()
    # Connect before the first round, so that connecting does not stagger the start.
    connection.ensure_connection()
    (pool / f"ready-{index}").touch()
    for round_number in itertools.count():
        job = pool / f"round-{round_number}"
        if not _wait_for(job / "go", stop=pool / "stop", parent_pid=parent_pid):
            return
        share = json.loads((job / f"payloads-{index}.json").read_text())
        started = time.time()
        outcomes, errors = [], []
        if isinstance(share, dict):  # batches, as the inbox's drain hands them over
            _process_batches(share["batches"], outcomes, errors)
        for payload in share if isinstance(share, list) else ():
            try:
                outcomes.append(str(event_process(event=Event.from_payload(payload))))
            except Exception:
                errors.append(traceback.format_exc())
        result = {"outcomes": outcomes, "errors": errors, "started": started, "finished": time.time()}
        # Written aside and renamed, so the test never reads half a file.
        (job / f"result-{index}.tmp").write_text(json.dumps(result))
        (job / f"result-{index}.tmp").rename(job / f"result-{index}.json")


def _process_batches(batches: list[list[dict]], outcomes: list[str], errors: list[str]) -> None:
    """events_process_batch over each batch; events it puts back (their accounts were busy) join the next one."""
    queue, later = list(batches), []
    while queue or later:
        batch, later = later + (queue.pop(0) if queue else []), []
        try:
            counts = events_process_batch(payloads=batch, put_back=later.extend)
        except Exception:
            errors.append(traceback.format_exc())
            return
        outcomes.extend(outcome for outcome, n in counts.items() for _ in range(n))


class WorkerPool:
    """OS processes started once and connected to the test database, given payloads round by round.

    Starting Django costs seconds of CPU per process, so the module shares one pool; within a
    round, all workers leave the barrier (the round's start file) within a poll interval.
    """

    def __init__(self, directory: Path, *, size: int) -> None:
        self.directory, self.size, self.rounds = directory, size, 0
        env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "DJANGO_SETTINGS_MODULE": "tests.django_settings"}
        self.processes = []
        for index in range(size):
            with (directory / f"log-{index}.txt").open("w") as log:
                command = [sys.executable, "-c", _WORKER_COMMAND, str(directory), str(index)]
                self.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        self._wait_for_files([directory / f"ready-{index}" for index in range(size)], READY_TIMEOUT_S, "start")

    def run(self, shares: list[list[dict]] | list[dict]) -> list[dict]:
        """Process share i in worker i, all at once; return each worker's outcomes, errors and timings.

        A share is a list of payloads for `event_process`, or {"batches": [[payload, …], …]} for
        `events_process_batch`.
        """
        assert len(shares) == self.size
        job = self.directory / f"round-{self.rounds}"
        self.rounds += 1
        job.mkdir()
        for index, share in enumerate(shares):
            (job / f"payloads-{index}.json").write_text(json.dumps(share))
        (job / "go").touch()
        results = [job / f"result-{index}.json" for index in range(self.size)]
        self._wait_for_files(results, ROUND_TIMEOUT_S, "finish the round")
        return [json.loads(path.read_text()) for path in results]

    def _wait_for_files(self, paths: list[Path], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(path.exists() for path in paths):
            assert all(p.poll() is None for p in self.processes), f"a worker died:\n{self.logs()}"
            assert time.monotonic() < deadline, f"the workers did not {what} in {timeout_s} s:\n{self.logs()}"
            time.sleep(POLL_S)

    def logs(self) -> str:
        logs = (self.directory / f"log-{index}.txt" for index in range(self.size))
        return "\n".join(f"--- worker {index} ---\n{log.read_text()[-4000:]}" for index, log in enumerate(logs))

    def stop(self) -> None:
        (self.directory / "stop").touch()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def pool(django_db_setup, tmp_path_factory):
    """Worker processes on the test database (created by `django_db_setup`), for the whole module."""
    workers = WorkerPool(tmp_path_factory.mktemp("workers"), size=WORKERS)
    yield workers
    workers.stop()


def assert_clean_overlapping_run(results: list[dict]) -> Counter:
    """No worker hit an error, and their processing windows overlapped; return the outcome counts."""
    errors = [error for result in results for error in result["errors"]]
    assert not errors, f"{len(errors)} event(s) failed in the workers; first:\n{errors[0]}"
    assert max(r["started"] for r in results) < min(r["finished"] for r in results), "the workers did not run at the same time"
    return Counter(outcome for result in results for outcome in result["outcomes"])


def make_event(*, user_id: int, task_type: str, when: datetime, business_id: str = "", rng: random.Random | None = None) -> dict:
    event_id = uuid.UUID(int=rng.getrandbits(128), version=4) if rng else uuid.uuid4()
    return Event(
        event_id=event_id, user_id=user_id, task_type=task_type, occurred_at=when, business_id=business_id, location="10.0.0.1"
    ).to_payload()


def create_users(prefix: str, count: int) -> list[int]:
    """Create `count` users in one statement; return their ids."""
    user_model = get_user_model()
    unusable = make_password(None)
    user_model.objects.bulk_create([user_model(username=f"{prefix}{i}", password=unusable) for i in range(count)])
    return list(user_model.objects.filter(username__startswith=prefix).order_by("id").values_list("id", flat=True))


def live_awards() -> Counter:
    """{(completion, rule): live awards}: awards that no reversal entry compensates.

    Events raced in any order re-score what arrived late (SPEC §6), which may take an award back and
    grant it to the completion the time order gives it: invariant 3 is about the live ones.
    """
    compensated = ScoreRecord.objects.filter(reverses=OuterRef("pk"))
    return Counter(ScoreRecord.objects.filter(kind="award").exclude(Exists(compensated)).values_list("completion_id", "rule_id"))


def test_g3_each_event_delivered_five_times_at_once_is_recorded_and_awarded_once(pool):
    TaskConfigFactory(task_type="post")
    each = ScoreRuleFactory(task_type="post", score_type="post-each", points=5)
    third = ScoreRuleFactory(task_type="post", score_type="post-every-third", points=7, required_number_of_times=3)
    users = create_users("g3-user", 5)
    events = [
        make_event(user_id=users[i % 5], task_type="post", when=datetime(2026, 11, 2, 9 + i // 5, tzinfo=TZ)) for i in range(20)
    ]
    # Copy k of event i goes to worker (i + k) % 4: every worker holds every event, so each one is raced.
    shares: list[list[dict]] = [[] for _ in range(WORKERS)]
    for i, payload in enumerate(events):
        for copy in range(5):
            shares[(i + copy) % WORKERS].append(payload)
    rng = random.Random(3)
    for share in shares:
        rng.shuffle(share)

    outcomes = assert_clean_overlapping_run(pool.run(shares))

    assert outcomes == {Outcome.PROCESSED: 20, Outcome.DUPLICATE: 80}
    recorded = Counter(UserTaskRecord.all_objects.values_list("event_id", flat=True))
    assert recorded == {uuid.UUID(p["event_id"]): 1 for p in events}
    per_pair = live_awards()
    assert set(per_pair.values()) == {1}
    # Each user posted 4 times on one day: 4 "each" awards and one "every third" award.
    assert Counter(rule_id for _, rule_id in per_pair) == {each.pk: 20, third.pk: 5}
    assert sorted(Account.objects.values_list("balance", flat=True)) == [4 * 5 + 7] * 5

    # Delivered once more, later: nothing changes.
    entries = ScoreRecord.objects.count()
    assert {event_process(event=Event.from_payload(p)) for p in events} == {Outcome.DUPLICATE}
    assert UserTaskRecord.all_objects.count() == 20
    assert ScoreRecord.objects.count() == entries


def test_g5_a_thousand_users_racing_for_a_hundred_places_make_exactly_a_hundred_recipients(pool):
    TaskConfigFactory(task_type="post")
    first_post = ScoreRuleFactory(
        task_type="post",
        score_type="first-post-first-100",
        points=10,
        statistical_period=ScoreRule.Period.NONE,
        award_limit_per_period=1,
        number_limit_all=100,
    )
    users = create_users("g5-racer", 1000)
    when = datetime(2026, 11, 2, 12, tzinfo=TZ)
    events = [make_event(user_id=user_id, task_type="post", when=when) for user_id in users]
    shares = [events[index::WORKERS] for index in range(WORKERS)]

    outcomes = assert_clean_overlapping_run(pool.run(shares))

    assert outcomes == {Outcome.PROCESSED: 1000}
    first_post.refresh_from_db()
    assert first_post.recipients_count == 100
    assert RuleRecipient.objects.filter(rule=first_post).count() == 100
    awards = ScoreRecord.objects.filter(rule=first_post, kind="award")
    assert awards.count() == 100
    assert awards.values("user_id").distinct().count() == 100
    assert set(awards.values_list("user_id", flat=True)) == set(RuleRecipient.objects.values_list("user_id", flat=True))
    reasons = Counter(record.decisions[0]["reason"] for record in UserTaskRecord.objects.all())
    assert reasons == {"awarded": 100, "cap_reached": 900}


SEED = 20261126
G6_USERS = 8
G6_EVENTS_PER_USER = 30
G6_SHARE_CAP = 3


def random_workload(rng: random.Random, users: list[int]) -> list[dict]:
    """Events over two weeks for every user, a fifth of them delivered two or three times, shuffled."""
    tasks, weights = ["sign-in", "post", "share", "post-delete"], [3, 4, 2, 1]
    payloads = []
    for user_id in users:
        for _ in range(G6_EVENTS_PER_USER):
            task = rng.choices(tasks, weights)[0]
            when = datetime(2026, 11, rng.randint(1, 14), rng.randrange(24), rng.randrange(60), tzinfo=TZ)
            business_id = "" if task == "sign-in" else rng.choice(["", "1", "2", "3"])
            payload = make_event(user_id=user_id, task_type=task, when=when, business_id=business_id, rng=rng)
            payloads += [payload] * rng.choices([1, 2, 3], [8, 1, 1])[0]
    rng.shuffle(payloads)
    return payloads


@pytest.fixture
def mixed_rules():
    """Sign-ins, posts (with a reversal and a per-object amount) and shares, with a capped first-share rule (returned)."""
    for task_type in ("sign-in", "post", "share"):
        TaskConfigFactory(task_type=task_type)
    TaskConfigFactory(task_type="post-delete", reverses="post")
    ScoreRuleFactory(task_type="sign-in", score_type="sign-in-daily", points=1, award_limit_per_period=1)
    ScoreRuleFactory(
        task_type="sign-in", score_type="sign-in-streak", kind=ScoreRule.Kind.STREAK, points=2, required_number_of_times=3
    )
    post_each = ScoreRuleFactory(task_type="post", score_type="post-each", points=5, award_limit_per_period=3, can_repeat=False)
    ScoreRuleObjectPoints.objects.create(rule=post_each, business_id="2", points=50)
    ScoreRuleFactory(
        task_type="post", score_type="post-every-second", points=3, statistical_period="week", required_number_of_times=2
    )
    first_share = ScoreRuleFactory(
        task_type="share",
        score_type="first-share",
        points=10,
        statistical_period=ScoreRule.Period.NONE,
        award_limit_per_period=1,
        number_limit_all=G6_SHARE_CAP,
    )
    return first_share


def test_g6_ledger_verifies_clean_after_a_random_concurrent_workload(pool, mixed_rules):
    first_share = mixed_rules
    users = create_users("g6-user", G6_USERS)
    payloads = random_workload(random.Random(SEED), users)
    distinct = {p["event_id"] for p in payloads}
    shares = [payloads[index::WORKERS] for index in range(WORKERS)]

    outcomes = assert_clean_overlapping_run(pool.run(shares))

    assert outcomes == {Outcome.PROCESSED: len(distinct), Outcome.DUPLICATE: len(payloads) - len(distinct)}, f"seed {SEED}"
    assert UserTaskRecord.all_objects.count() == len(distinct)
    call_command("verify_ledger")
    assert RuleRecipient.objects.filter(rule=first_share).count() == G6_SHARE_CAP
    # The workload reached the paths it is meant to test: awards, reversals, the cap.
    kinds = Counter(ScoreRecord.objects.values_list("kind", flat=True))
    assert kinds["award"] > 50 and kinds["reversal"] > 0, kinds


def test_g3_g5_g6_hold_when_workers_process_batches_of_shared_users(pool, mixed_rules):
    """The worker's real path: batches that share users, so accounts are skipped, put back and retried."""
    first_share = mixed_rules
    users = create_users("batch-user", G6_USERS)
    payloads = random_workload(random.Random(SEED + 1), users)
    distinct = {p["event_id"] for p in payloads}
    # Small batches, each worker's drawn from the whole shuffled workload: every batch meets others' users.
    shares = [
        {"batches": [payloads[i : i + 10] for i in range(index * 10, len(payloads), 10 * WORKERS)]} for index in range(WORKERS)
    ]

    outcomes = assert_clean_overlapping_run(pool.run(shares))

    assert outcomes.pop("put_back", 0) > 0, "no batch ever found an account busy: the test did not race"
    assert outcomes == {Outcome.PROCESSED: len(distinct), Outcome.DUPLICATE: len(payloads) - len(distinct)}, f"seed {SEED + 1}"
    assert Counter(UserTaskRecord.all_objects.values_list("event_id", flat=True)) == {uuid.UUID(e): 1 for e in distinct}
    per_pair = live_awards()
    assert set(per_pair.values()) == {1}
    call_command("verify_ledger")
    assert RuleRecipient.objects.filter(rule=first_share).count() == G6_SHARE_CAP
    kinds = Counter(ScoreRecord.objects.values_list("kind", flat=True))
    assert kinds["award"] > 50 and kinds["reversal"] > 0, kinds


def test_leaderboard_totals_equal_the_ledger_when_workers_award_the_same_few_users_at_once(pool, mixed_rules):
    """Every batch of every worker awards the same six users, so their totals' rows are upserted from all sides."""
    from apps.ledger.models import LeaderboardTotal
    from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_problems

    users = create_users("board-user", 6)
    rng = random.Random(SEED + 2)
    payloads = [
        make_event(
            user_id=users[i % 6],
            task_type=rng.choice(["post", "post", "sign-in", "share", "post-delete"]),
            when=datetime(2026, 11, rng.randint(1, 3), rng.randrange(24), rng.randrange(60), tzinfo=TZ),
            business_id=rng.choice(["1", "2", "3"]),
            rng=rng,
        )
        for i in range(480)
    ]
    shares = [
        {"batches": [payloads[i : i + 12] for i in range(index * 12, len(payloads), 12 * WORKERS)]} for index in range(WORKERS)
    ]

    assert_clean_overlapping_run(pool.run(shares))

    assert leaderboard_problems() == []
    net = Counter()
    for user_id, amount in ScoreRecord.objects.filter(kind__in=["award", "reversal"]).values_list("user_id", "trade_amount"):
        net[user_id] += amount
    overall = dict(LeaderboardTotal.objects.filter(board=0, period="all").values_list("user_id", "points"))
    assert overall == dict(net) and len(overall) == 6
    listed = leaderboard_page(rule=None, period="all").entries
    assert [e.points for e in listed] == sorted(net.values(), reverse=True)
    assert ScoreRecord.objects.filter(kind="reversal").exists()

"""G14 (SPEC §9): the expiry job run twice, concurrently, and killed midway expires every due lot once.

On PostgreSQL, with committed data: two runs in real threads, started together at a barrier; a
`manage.py expire_points` process killed with SIGKILL between its chunks' commits, then run again.
After each, every due lot is empty, each account has exactly one expiry entry for exactly what its
due lots held, the lots not yet due are untouched, and `verify_ledger` is clean (invariant 6).
"""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Sum

from apps.ledger.models import PointLot, PointType, ScoreRecord
from apps.ledger.services.entries import EntrySpec, accounts_ensure, accounts_lock, ledger_post_batch
from apps.ledger.services.expiry import points_expire
from tests.conftest import database_url_for_workers

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
RUN_AT = datetime(2025, 1, 1, 0, 5, tzinfo=SHANGHAI)  # the 2023 points are due, the 2024 ones not yet


def seed(users: int, coins: PointType) -> dict[int, int]:
    """`users` users, each with three 2023 credits of coins (due at RUN_AT), one of 2024, and a spend.

    Returns {coins account id: the points its due lots hold}. Written through the ledger's own
    batch posting, a hundred users per transaction.
    """
    model = get_user_model()
    model.objects.bulk_create([model(username=f"x{n:05d}", password="!") for n in range(users)])  # noqa: S106
    ids = list(model.objects.filter(username__startswith="x").order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), 100):
        part = ids[start : start + 100]
        accounts_ensure(user_ids=part)
        with transaction.atomic():
            locked = accounts_lock(user_ids=part)
            postings = []
            for user_id in part:
                specs = [
                    EntrySpec(
                        amount=10 + (user_id + n) % 7,
                        kind="adjustment",  # a credit dated like a backfilled award, off the leaderboards
                        idempotency_key=f"seed-{user_id}-{n}",
                        earned_at=datetime(2023, 2 + 3 * n, 1 + user_id % 27, 12, tzinfo=SHANGHAI),
                        point_type_id=coins.pk,
                    )
                    for n in range(3)
                ]
                specs.append(
                    EntrySpec(
                        amount=25,
                        kind="adjustment",
                        idempotency_key=f"seed-{user_id}-new",
                        earned_at=datetime(2024, 3, 1, tzinfo=SHANGHAI),
                        point_type_id=coins.pk,
                    )
                )
                # A spend takes the soonest-expiring lot first: part of the due points are gone already.
                specs.append(
                    EntrySpec(
                        amount=-(1 + user_id % 9), kind="spend", idempotency_key=f"seed-{user_id}-s", point_type_id=coins.pk
                    )
                )
                postings.append((locked[user_id], specs))
            ledger_post_batch(postings=postings)
    due = (
        PointLot.objects.filter(remaining__gt=0, expires_at__lte=RUN_AT)
        .values("account_id")
        .annotate(total=Sum("remaining"))
        .order_by()
    )
    return {row["account_id"]: row["total"] for row in due}


@pytest.fixture
def coins(settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return PointType.objects.create(code="coins", name="积分", expiry=PointType.Expiry.YEAR_END)


def expired_once(due: dict[int, int], not_due_before: int) -> None:
    """Every due lot expired once, and nothing else."""
    per_account = (
        ScoreRecord.objects.filter(kind=ScoreRecord.Kind.EXPIRY)
        .values("account_id")
        .annotate(entries=Count("id"), total=Sum("trade_amount"))
        .order_by()
    )
    found = {row["account_id"]: (row["entries"], -row["total"]) for row in per_account}
    assert found == {account_id: (1, total) for account_id, total in due.items()}
    assert not PointLot.objects.filter(remaining__gt=0, expires_at__lte=RUN_AT).exists()
    assert PointLot.objects.filter(expires_at__gt=RUN_AT).aggregate(left=Sum("remaining"))["left"] == not_due_before
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()


def not_due_points() -> int:
    return PointLot.objects.filter(expires_at__gt=RUN_AT).aggregate(left=Sum("remaining"))["left"]


def test_run_twice_expires_nothing_more(coins):
    due = seed(40, coins)
    later = not_due_points()
    first = points_expire(at=RUN_AT, chunk_size=7)
    second = points_expire(at=RUN_AT, chunk_size=7)
    third = points_expire(at=RUN_AT + timedelta(hours=1), chunk_size=7)
    assert (first.accounts, first.points) == (len(due), sum(due.values()))
    assert second.points == third.points == 0
    expired_once(due, later)


@pytest.mark.parametrize("same_time", [True, False], ids=["same run time", "run times a minute apart"])
def test_two_runs_at_once_expire_each_lot_once(coins, same_time):
    """Runs a minute apart have different idempotency keys: only the lock and the re-read under it keep them apart."""
    due = seed(120, coins)
    later = not_due_points()
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def run(at, chunk_size):
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            reports.append(points_expire(at=at, chunk_size=chunk_size))
        except Exception as exc:  # reported below with the other run's outcome
            errors.append(exc)
        finally:
            connection.close()

    times = [RUN_AT, RUN_AT if same_time else RUN_AT + timedelta(minutes=1)]
    # Chunks of different sizes overlap: each run waits for the other's locks and takes over accounts midway.
    threads = [threading.Thread(target=run, args=(at, size)) for at, size in zip(times, (5, 7), strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(report.points for report in reports) == sum(due.values())
    assert sum(report.accounts for report in reports) == len(due)
    expired_once(due, later)


def test_killed_midway_then_run_again(coins):
    due = seed(600, coins)
    later = not_due_points()
    env = {**os.environ, "DATABASE_URL": database_url_for_workers(), "DJANGO_SETTINGS_MODULE": "tests.django_settings"}
    command = [sys.executable, "manage.py", "expire_points", "--at", RUN_AT.isoformat(), "--chunk-size", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    expired = ScoreRecord.objects.filter(kind=ScoreRecord.Kind.EXPIRY)
    deadline = time.monotonic() + 60
    try:
        while expired.count() < 20:  # some chunks committed: it is running
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the command committed nothing within 60 s"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    done = expired.count()
    assert 0 < done < len(due), f"the run was not killed midway ({done} of {len(due)} accounts expired)"
    # What the killed run committed is whole: its chunks' entries, lots and balances agree.
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    assert "Ledger OK" in out.getvalue()

    out = io.StringIO()
    call_command("expire_points", "--at", RUN_AT.isoformat(), stdout=out)
    assert f"from {len(due) - done:,} accounts" in out.getvalue()
    expired_once(due, later)

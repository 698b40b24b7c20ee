"""Expiry runs and the points they expire are counted by point type, as each chunk commits, on either path."""

import pytest
from django.db import connection, transaction

from apps.ledger.services.expiry import points_expire
from tests.factories import UserFactory
from tests.ledger.test_expiry import coins, post, shanghai  # noqa: F401 - coins is a fixture
from tests.metrics import Reading

pytestmark = pytest.mark.django_db

PATHS = [False] + ([True] if connection.vendor == "postgresql" else [])


@pytest.mark.parametrize("set_based", PATHS, ids=lambda on: "set-based" if on else "posted")
def test_a_run_counts_once_and_its_points_by_type(coins, set_based, django_capture_on_commit_callbacks):  # noqa: F811
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    for user in (alice, bob):
        post(user, 10, "award", f"{user}-1", coins, earned_at=shanghai(2024, 1, 1))
        post(user, 5, "award", f"{user}-2", coins, earned_at=shanghai(2024, 7, 1))
    runs, expired = Reading("jifen_expiry_runs_total"), Reading("jifen_points_expired_total", point_type="coins")
    with django_capture_on_commit_callbacks(execute=True):
        points_expire(at=shanghai(2026, 1, 1, 0, 5), chunk_size=1, set_based=set_based)
        points_expire(at=shanghai(2026, 1, 1, 0, 5), chunk_size=1, set_based=set_based)  # nothing left: a run all the same
    assert (runs.moved(), expired.moved()) == (2, 30)


def test_a_run_rolled_back_by_its_caller_counts_nothing(coins, django_capture_on_commit_callbacks):  # noqa: F811
    alice = UserFactory(username="alice")
    post(alice, 10, "award", "a-1", coins, earned_at=shanghai(2024, 1, 1))
    runs, expired = Reading("jifen_expiry_runs_total"), Reading("jifen_points_expired_total", point_type="coins")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        assert points_expire(at=shanghai(2026, 1, 1, 0, 5)).points == 10
        raise RuntimeError("the caller failed after")
    assert (runs.moved(), expired.moved()) == (0, 0)

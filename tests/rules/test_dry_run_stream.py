"""The dry run's raw read gives exactly the rows, order and instants the ORM gives."""

from datetime import UTC, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.rules.selectors import dry_run
from apps.rules.selectors.dry_run import Window, completions_query, rule_completions
from tests.rules.test_backfill import seed_history


@pytest.mark.django_db
def test_the_raw_stream_reads_what_the_orm_reads(monkeypatch):
    seed_history(completions=300)
    monkeypatch.setattr(dry_run, "STREAM_CHUNK", 7)  # many chunks, one cut inside a run of equal times
    now = timezone.now()
    window = Window(now - timedelta(days=9), now - timedelta(hours=1))
    expected = list(completions_query(task_type="post", window=window))
    with transaction.atomic():
        got = list(rule_completions(task_type="post", window=window))
    assert 150 < len(got) < 300  # the window and the reversed ones cut some
    assert got == expected
    # Aware, in UTC, to the microsecond: the instants the engine saw through the ORM.
    assert all(row[0].utcoffset() == timedelta(0) and row[0].tzinfo is not None for row in got)
    assert [row[0].astimezone(UTC).isoformat() for row in got] == [row[0].astimezone(UTC).isoformat() for row in expected]
    assert [type(value) for value in got[0]] == [type(value) for value in expected[0]]


@pytest.mark.django_db(transaction=True)
def test_the_postgresql_stream_refuses_to_run_outside_a_transaction():
    if connection.vendor != "postgresql":
        pytest.skip("a plain SQLite cursor needs no transaction")
    seed_history(completions=5)
    window = Window(None, timezone.now())
    with pytest.raises(transaction.TransactionManagementError):
        list(rule_completions(task_type="post", window=window))


@pytest.mark.django_db
def test_a_task_type_never_configured_has_no_completions():
    with transaction.atomic():
        assert list(rule_completions(task_type="never", window=Window(None, timezone.now()))) == []

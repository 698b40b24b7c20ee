"""Multi-row INSERT and UPDATE: what goes in comes back unchanged, in order, on either database."""

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction

from apps.core.multirow import rows_insert, rows_update
from apps.tasks.models import UserTaskRecord
from tests.factories import TaskConfigFactory, UserFactory

COLUMNS = (
    "task_id",
    "user_id",
    "event_id",
    "occurred_at",
    "business_id",
    "path",
    "status_code",
    "decisions",
    "created_at",
    "updated_at",
    "method",
    "location",
    "country",
    "lang_type",
)
# Text that array literals, quoting and escaping could get wrong.
AWKWARD = ["", 'say "hi"', "back\\slash", "{braces},commas", "NULL", "quote ' it", "中文 ✓", "  spaced  "]


@pytest.fixture
def rows(db):
    task, user = TaskConfigFactory(task_type="post"), UserFactory()
    when = datetime(2026, 11, 2, 23, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    return [
        (
            task.pk,
            user.pk,
            uuid.uuid4(),
            when + timedelta(seconds=i),
            text,
            f"/p/{text}",
            None if i % 2 else 200,
            [{"rule": text, "n": i}],
            when,
            when,
            "POST",
            "",
            "",
            "",
        )
        for i, text in enumerate(AWKWARD)
    ]


@pytest.mark.django_db
def test_insert_stores_every_value_as_given_and_returns_ids_in_order(rows):
    returned = rows_insert(UserTaskRecord, COLUMNS, rows, returning=("id", "business_id"))
    assert [business_id for _, business_id in returned] == AWKWARD
    for (pk, _), row in zip(returned, rows, strict=True):
        stored = UserTaskRecord.objects.get(pk=pk)
        assert (stored.event_id, stored.occurred_at, stored.business_id, stored.path) == row[2:6]
        assert stored.status_code == row[6]
        assert stored.decisions == row[7]
        assert stored.reversed_at is None  # a column left out is NULL


@pytest.mark.django_db
def test_insert_of_a_used_unique_key_raises_and_writes_nothing(rows):
    rows_insert(UserTaskRecord, COLUMNS, rows[:1])
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(UserTaskRecord, COLUMNS, [rows[1], rows[0]])
    assert UserTaskRecord.objects.count() == 1


@pytest.mark.django_db
def test_update_sets_each_row_its_own_values(rows):
    ids = [pk for (pk,) in rows_insert(UserTaskRecord, COLUMNS, rows, returning=("id",))]
    later = datetime(2027, 1, 1, tzinfo=UTC)
    rows_update(
        UserTaskRecord,
        ("business_id", "status_code", "reversed_at", "decisions"),
        [(pk, text[::-1], i, later if i % 2 else None, {"i": i}) for i, (pk, text) in enumerate(zip(ids, AWKWARD, strict=True))],
    )
    for i, (pk, text) in enumerate(zip(ids, AWKWARD, strict=True)):
        stored = UserTaskRecord.objects.get(pk=pk)
        assert (stored.business_id, stored.status_code, stored.decisions) == (text[::-1], i, {"i": i})
        assert stored.reversed_at == (later if i % 2 else None)


@pytest.mark.django_db
def test_update_with_a_column_of_nulls_only(rows):
    ids = [pk for (pk,) in rows_insert(UserTaskRecord, COLUMNS, rows, returning=("id",))]
    rows_update(UserTaskRecord, ("status_code",), [(pk, None) for pk in ids])
    assert set(UserTaskRecord.objects.values_list("status_code", flat=True)) == {None}

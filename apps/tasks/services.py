"""Writes for task configs and completions."""

from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction

from apps.tasks.models import TaskConfig, UserTaskRecord


def completion_record(
    *,
    config: TaskConfig,
    user_id: int,
    event_id: UUID,
    occurred_at: datetime,
    business_id: str = "",
    method: str = "",
    path: str = "",
    status_code: int | None = None,
    location: str = "",
    country: str = "",
    lang_type: str = "",
) -> UserTaskRecord | None:
    """Record one completion; return None, changing nothing, if `event_id` was recorded before.

    The unique constraint on event_id, not a lookup, is what makes this exactly-once.
    """
    try:
        with transaction.atomic():
            return UserTaskRecord.objects.create(
                user_id=user_id,
                task=config,
                event_id=event_id,
                occurred_at=occurred_at,
                business_id=business_id,
                method=method,
                path=path,
                status_code=status_code,
                location=location,
                country=country,
                lang_type=lang_type,
            )
    except IntegrityError:
        if UserTaskRecord.all_objects.filter(event_id=event_id).exists():
            return None
        raise

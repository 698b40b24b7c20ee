"""Writes for task configs and completions, and the pairing of reversals with what they undo."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.core.lifecycle import Actor, copy_fields, free_copy_code, save_with_history, transition, update_fields
from apps.core.multirow import rows_insert
from apps.core.review import review_send_back, review_submit
from apps.tasks.models import TaskConfig, UserTaskRecord
from apps.tasks.reversals import Moment, reversal_pairs


@dataclass(frozen=True, slots=True)
class NewCompletion:
    """One completion to record with `completions_create` (the fields of UserTaskRecord it sets)."""

    task_id: int
    user_id: int
    event_id: uuid.UUID
    occurred_at: datetime
    business_id: str = ""
    method: str = ""
    path: str = ""
    status_code: int | None = None
    location: str = ""
    country: str = ""
    lang_type: str = ""
    decisions: Sequence[dict] = ()


def completion_create(*, completion: NewCompletion) -> UserTaskRecord:
    """Record one completion as a model instance (a reversal needs it); IntegrityError if its event_id was recorded before.

    Callers check first under the user's account lock; the unique constraint on event_id is what
    guarantees exactly-once if two callers ever race.
    """
    fields = {name: getattr(completion, name) for name in NewCompletion.__dataclass_fields__}
    return UserTaskRecord.objects.create(**{**fields, "decisions": list(completion.decisions)})


# The columns a batch writes for each new completion (the benches build their SQL from the same list).
COMPLETION_COLUMNS = (
    "task_id",
    "user_id",
    "event_id",
    "occurred_at",
    "business_id",
    "method",
    "path",
    "status_code",
    "location",
    "country",
    "lang_type",
    "decisions",
    "created_at",
    "updated_at",
)


def completions_create(*, completions: Sequence[NewCompletion]) -> list[int]:
    """Record completions with one INSERT; return their ids in order.

    IntegrityError (aborting the caller's transaction) if any event_id was recorded before:
    callers check first under the users' account locks, and the unique constraint guarantees
    exactly-once if two callers ever race.
    """
    now = timezone.now()
    rows = [
        (
            c.task_id,
            c.user_id,
            c.event_id,
            c.occurred_at,
            c.business_id,
            c.method,
            c.path,
            c.status_code,
            c.location,
            c.country,
            c.lang_type,
            list(c.decisions),
            now,
            now,
        )
        for c in completions
    ]
    returned = rows_insert(UserTaskRecord, COMPLETION_COLUMNS, rows, returning=("id", "event_id"))
    # SQLite returns the UUID as its hex text.
    if [e if isinstance(e, uuid.UUID) else uuid.UUID(e) for _, e in returned] != [c.event_id for c in completions]:
        raise RuntimeError("completion rows came back out of order")
    return [pk for pk, _ in returned]


# A copy keeps everything that decides routing (the frozen fields) under a new task type.
_COPIED_FIELDS = ("task_desc", *(name for name in TaskConfig.FROZEN_FIELDS if name != "task_type"))


def task_config_create(*, actor: Actor = None, **fields: Any) -> TaskConfig:
    """Create a task config (`editing` unless `status` says otherwise); raise ValidationError if invalid."""
    return save_with_history(TaskConfig(**fields), actor=actor, reason="created")


def task_config_update(*, config: TaskConfig, actor: Actor = None, **changes: Any) -> TaskConfig:
    """Change a config; raise ValidationError, storing nothing, on a frozen field of one in use."""
    return update_fields(config, changes=changes, actor=actor)


def task_config_put_in_use(*, config: TaskConfig, actor: Actor = None) -> TaskConfig:
    """editing → in_use: requests matching it count from the next route-table refresh on."""
    return transition(config, source=TaskConfig.Status.EDITING, target=TaskConfig.Status.IN_USE, actor=actor)


def task_config_submit_for_review(*, config: TaskConfig, actor: Actor = None) -> TaskConfig:
    """A draft goes into the approvers' review queue (rule editors may)."""
    return review_submit(config, actor=actor)


def task_config_send_back(*, config: TaskConfig, actor: Actor = None, comment: str = "") -> TaskConfig:
    """A draft in review goes back to its editor with the approver's comment; it stays a draft."""
    return review_send_back(config, actor=actor, comment=comment)


def task_config_deprecate(*, config: TaskConfig, actor: Actor = None) -> TaskConfig:
    """in_use → deprecated: its requests stop counting."""
    return transition(config, source=TaskConfig.Status.IN_USE, target=TaskConfig.Status.DEPRECATED, actor=actor)


def task_config_copy_as_draft(*, config: TaskConfig, actor: Actor = None) -> TaskConfig:
    """A new `editing` config with the same settings, under a new task type."""
    return task_config_create(
        actor=actor,
        task_type=free_copy_code(TaskConfig, "task_type", config.task_type),
        status=TaskConfig.Status.EDITING,
        **copy_fields(config, _COPIED_FIELDS),
    )


@dataclass(frozen=True, slots=True)
class LiveChange:
    """A completion whose live state a reversal pairing changed: it was undone, or is live again."""

    completion_id: int
    occurred_at: datetime
    live: bool
    decisions: Sequence[dict]


def reversals_pair(*, user_id: int, task_type: str, business_id: str) -> list[LiveChange]:
    """Pair the user's reversals of `task_type` for `business_id` with the completions they undo, in time order.

    Stores the pairing of `apps.tasks.reversals.reversal_pairs` (`reversed_at` and `reversed_by`
    on the undone completions; a reversal that undoes nothing stays pending) and returns the
    completions whose live state changed, for the caller to re-score their rules. Runs under the
    user's account lock, in the transaction that recorded the events.
    """
    completions = list(
        UserTaskRecord.objects.filter(
            user_id=user_id, task__task_type=task_type, business_id=business_id, deleted_at__isnull=True
        ).values_list("pk", "occurred_at", "event_id", "reversed_at", "reversed_by_id", "decisions")
    )
    reversals = list(
        UserTaskRecord.objects.filter(
            user_id=user_id, task__reverses=task_type, business_id=business_id, deleted_at__isnull=True
        ).values_list("pk", "occurred_at", "event_id")
    )
    pairs = reversal_pairs(
        completions=[Moment(pk, at, str(event_id)) for pk, at, event_id, *_ in completions],
        reversals=[Moment(pk, at, str(event_id)) for pk, at, event_id in reversals],
    )
    undone_by = {target: reversal for reversal, target in pairs.items() if target is not None}
    now = timezone.now()
    changes: list[LiveChange] = []
    for pk, occurred_at, _event_id, reversed_at, reversed_by, decisions in completions:
        reverser = undone_by.get(pk)
        if reverser == reversed_by and (reverser is None) == (reversed_at is None):
            continue
        UserTaskRecord.objects.filter(pk=pk).update(
            reversed_by_id=reverser, reversed_at=(reversed_at or now) if reverser else None, updated_at=now
        )
        if (reverser is None) != (reversed_at is None):
            changes.append(LiveChange(pk, occurred_at, live=reverser is None, decisions=decisions))
    return changes

"""Parking: setting aside an event that cannot be processed, for an operator, whatever it holds (G7)."""

import logging
import math
import reprlib
import uuid

from django.db import OperationalError, transaction

from apps.core import metrics
from apps.tracking.models import FailedEvent

logger = logging.getLogger(__name__)

# The keys of a parked payload that is not the event as received (escaped, or not stored at all).
_ESCAPED, _UNSTORABLE = "escaped", "unstorable"

# How deep a parked payload is kept as it is; deeper levels are stored as their (shortened) repr.
_STORABLE_DEPTH = 32
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 8, 50, 50, 2000, 200, 200


def event_park(*, payload: object, error: str, attempts: int) -> FailedEvent | None:
    """Set a failing event aside for an operator, so the rest keep flowing (G7); returns the parked row.

    Parking cannot fail on what the payload holds: it is stored made storable (`payload_storable`),
    and when that changed anything, the error text keeps the payload as received (its repr). Raises
    only OperationalError, when the database is unreachable: then the batch is put back and comes
    again once it is. Any other failure to store the row is logged and returns None.
    """
    stored, changed = payload_storable(payload)
    known = stored if isinstance(stored, dict) else {}
    try:
        event_id = uuid.UUID(str(known["event_id"])) if known.get("event_id") else None
    except ValueError:
        event_id = None
    error = _text_storable(error)
    logger.error(
        "event %s for user %s (task %s) parked after %d attempt(s): %s",
        event_id,
        known.get("user_id"),
        known.get("task_type"),
        attempts,
        error,
    )
    if changed or stored is None:  # a JSON null would be SQL NULL, which the column refuses
        # Wrapped, so that the escaped copy is never taken for the event itself (by "Send again").
        stored = {_ESCAPED: stored}
        error = f"{error}\n(payload stored escaped; as received: {_repr_storable(payload)})"
    try:
        with transaction.atomic():
            return _parked(_park_write(event_id, stored, error, attempts))
    except OperationalError:
        raise
    except Exception as exc:
        logger.exception("event %s could not be parked as it is; parking its repr only", event_id)
        error = f"{error}\n(payload could not be stored: {_text_storable(repr(exc))}; as received: {_repr_storable(payload)})"
    try:
        with transaction.atomic():
            return _parked(_park_write(event_id, {_UNSTORABLE: True}, error, attempts))
    except OperationalError:
        raise
    except Exception:
        logger.critical("event %s could not be parked at all: %s", event_id, error, exc_info=True)
        return None


def _parked(row: FailedEvent) -> FailedEvent:
    """Count the row parked once its transaction commits (a caller's that rolls back parked nothing)."""
    metrics.after_commit(metrics.EVENTS_PARKED.inc)
    return row


def _park_write(event_id: uuid.UUID | None, payload: object, error: str, attempts: int) -> FailedEvent:
    if event_id is None:
        return FailedEvent.objects.create(payload=payload, error=error, attempts=attempts)
    parked, _ = FailedEvent.objects.update_or_create(
        event_id=event_id,
        defaults={"payload": payload, "error": error, "attempts": attempts, "status": FailedEvent.Status.FAILED},
    )
    return parked


def _text_storable(text: str) -> str:
    """`text` as PostgreSQL text and jsonb take it: NUL and lone surrogates written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _repr_storable(value: object) -> str:
    """A shortened repr of anything (NUL, surrogates and all escaped by repr itself); never raises."""
    try:
        return _text_storable(_REPR.repr(value))
    except Exception:  # a repr that raises, or a number too long to spell
        return f"<{type(value).__name__} that cannot be shown>"


def payload_storable(payload: object) -> tuple[object, bool]:
    """`payload` as JSON that jsonb and SQLite both store, and whether anything had to change.

    Strings lose NUL and lone surrogates to escapes, numbers JSON cannot hold (NaN, huge integers)
    and other objects become their repr, keys become strings, and nesting deeper than
    _STORABLE_DEPTH becomes a repr. Never raises.
    """
    changed = False

    def walk(value: object, depth: int) -> object:
        nonlocal changed
        if isinstance(value, str):
            kept = _text_storable(value)
        elif value is None or isinstance(value, bool):
            kept = value
        elif isinstance(value, int):
            kept = value if -(2**63) <= value < 2**63 else _repr_storable(value)
        elif isinstance(value, float):
            kept = value if math.isfinite(value) else repr(value)
        elif depth >= _STORABLE_DEPTH or not isinstance(value, dict | list):
            changed = True
            return _repr_storable(value)
        elif isinstance(value, dict):
            return {
                (walk(key, depth + 1) if isinstance(key, str) else _repr_storable(key)): walk(item, depth + 1)
                for key, item in value.items()
            }
        else:
            return [walk(item, depth + 1) for item in value]
        changed = changed or kept != value
        return kept

    try:
        return walk(payload, 0), changed
    except Exception:
        return {_UNSTORABLE: _repr_storable(payload)}, True


def failed_event_sendable(*, failed: FailedEvent) -> bool:
    """Whether the parked payload is the event as received, so that sending it again means anything."""
    payload = failed.payload
    return not (isinstance(payload, dict) and len(payload) == 1 and (_ESCAPED in payload or _UNSTORABLE in payload))

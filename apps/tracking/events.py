"""The event: one completed task, as it travels from the web process to a worker (SPEC §2)."""

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from apps.core.text import text_problem

# An event's years (SPEC §9, G8). Far outside them a time cannot even be moved to UTC (year 1 or
# 9999 with an offset overflows), and well before them it is a typo; periods and streaks counted
# from such a time would be nonsense either way.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200

# The longest each text field may be: its column's length. Longer is refused, never cut: a cut
# business id could collide with another object's.
FIELD_MAX_LENGTHS = {
    "task_type": 64,
    "business_id": 255,
    "method": 8,
    "path": 2048,
    "location": 64,
    "country": 8,
    "lang_type": 35,
}


class EventError(ValueError):
    """The payload is not a well-formed event; the message names the field."""

    @property
    def field(self) -> str | None:
        """The field the message starts with ("user: no user named 'bob'" -> "user"), or None."""
        head, colon, _ = str(self).partition(": ")
        return head if colon and head.isidentifier() else None


def text_check(name: str, value: str, *, longest: int | None = None) -> str:
    """Return `value` if it may be stored as event field `name`; raise EventError saying why not.

    Refuses control characters, lone surrogates and, given `longest`, more characters than that.
    """
    # Every field of an event is a one-line identifier or request meta: a tab or a line break is a
    # bug upstream as much as NUL is, so no control character at all (apps.core.text).
    problem = text_problem(value)
    if problem is not None:
        raise EventError(f"{name}: {problem}")
    if longest is not None and len(value) > longest:
        raise EventError(f"{name}: longer than {longest} characters ({len(value)})")
    return value


def time_check(name: str, value: datetime) -> datetime:
    """Return `value` if its year is within EARLIEST_YEAR..LATEST_YEAR; raise EventError otherwise."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise EventError(f"{name}: the year must be between {EARLIEST_YEAR} and {LATEST_YEAR}, not {value.year}")
    return value


def time_parse(name: str, raw: object) -> datetime | None:
    """An ISO 8601 time within the allowed years (naive if it has no offset), or None if `raw` is none."""
    if not isinstance(raw, str):
        return None
    text_check(name, raw, longest=64)
    try:
        parsed = parse_datetime(raw)
    except ValueError:  # well formed but no such time (month 13)
        parsed = None
    return None if parsed is None else time_check(name, parsed)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: uuid.UUID
    user_id: int
    task_type: str
    occurred_at: datetime
    business_id: str = ""
    method: str = ""
    path: str = ""
    status: int | None = None
    location: str = ""
    country: str = ""
    lang_type: str = ""
    # When Jifen accepted the event (Unix seconds, stamped by the hand-off: `ACCEPTED_AT`), for
    # jifen_event_to_ledger_seconds only. None for an event not handed off yet, or queued by a
    # version before it. No part of the event's identity, so not compared.
    accepted_at: float | None = field(default=None, compare=False)

    def to_payload(self) -> dict:
        """A JSON-ready dict, the form in which events are queued."""
        # Spelled out rather than dataclasses.asdict(), which deep-copies and costs ~10x more on
        # the request path.
        payload = {
            "event_id": str(self.event_id),
            "user_id": self.user_id,
            "task_type": self.task_type,
            "occurred_at": self.occurred_at.isoformat(),
            "business_id": self.business_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "location": self.location,
            "country": self.country,
            "lang_type": self.lang_type,
        }
        if self.accepted_at is not None:
            payload[ACCEPTED_AT] = self.accepted_at
        return payload

    @classmethod
    def from_payload(cls, payload: dict) -> "Event":
        """Rebuild an event from `to_payload`'s dict; raise EventError naming a bad field.

        The one check of an event's fields, for the API, `ingest_events` and the workers alike:
        each text field a string within its column's length, free of control characters and lone
        surrogates; the time within EARLIEST_YEAR..LATEST_YEAR. Nothing is cut or coerced.
        """
        if not isinstance(payload, dict):
            raise EventError("an event must be a JSON object")
        try:
            event_id = uuid.UUID(str(payload["event_id"]))
        except (KeyError, ValueError):
            raise EventError("event_id: missing or not a UUID") from None
        user_id = payload.get("user_id")
        if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id < 2**63:
            raise EventError("user_id: missing or not an integer")
        texts = {}
        for name, longest in FIELD_MAX_LENGTHS.items():
            value = payload.get(name)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise EventError(f"{name}: must be a string")
            texts[name] = text_check(name, value, longest=longest)
        if not texts["task_type"]:
            raise EventError("task_type: missing")
        occurred_at = time_parse("occurred_at", payload.get("occurred_at"))
        if occurred_at is None or occurred_at.tzinfo is None:
            raise EventError("occurred_at: missing or not an ISO 8601 time with an offset")
        status = payload.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599):
            raise EventError("status: must be an HTTP status code")
        return cls(
            event_id=event_id,
            user_id=user_id,
            occurred_at=occurred_at,
            status=status,
            accepted_at=accepted_at_read(payload.get(ACCEPTED_AT)),
            **texts,
        )


# The payload's key for when Jifen accepted the event. Set by the hand-off (event_dispatch,
# events_accept), never by a client: the API and ingest_events build their payloads field by field.
ACCEPTED_AT = "accepted_at"


def accepted_at_read(raw: object) -> float | None:
    """The acceptance time a payload carries, or None when it has none that makes sense.

    Never refuses the event: the time only feeds a histogram, and a payload from an older version
    has none.
    """
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
        return float(raw)
    return None

"""The event: one completed task, as it travels from the web process to a worker (SPEC §2)."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.utils.dateparse import parse_datetime


class EventError(ValueError):
    """The payload is not a well-formed event; the message names the field."""

    @property
    def field(self) -> str | None:
        """The field the message starts with ("user: no user named 'bob'" -> "user"), or None."""
        head, colon, _ = str(self).partition(": ")
        return head if colon and head.isidentifier() else None


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

    def to_payload(self) -> dict:
        """A JSON-ready dict, the form in which events are queued."""
        # Spelled out rather than dataclasses.asdict(), which deep-copies and costs ~10x more on
        # the request path.
        return {
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

    @classmethod
    def from_payload(cls, payload: dict) -> "Event":
        """Rebuild an event from `to_payload`'s dict; raise EventError naming a bad field."""
        if not isinstance(payload, dict):
            raise EventError("an event must be a JSON object")
        try:
            event_id = uuid.UUID(str(payload["event_id"]))
        except (KeyError, ValueError):
            raise EventError("event_id: missing or not a UUID") from None
        user_id = payload.get("user_id")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise EventError("user_id: missing or not an integer")
        task_type = payload.get("task_type")
        if not isinstance(task_type, str) or not task_type:
            raise EventError("task_type: missing")
        occurred_at = parse_datetime(str(payload.get("occurred_at", "")))
        if occurred_at is None or occurred_at.tzinfo is None:
            raise EventError("occurred_at: missing or not an ISO 8601 time with an offset")
        status = payload.get("status")
        return cls(
            event_id=event_id,
            user_id=user_id,
            task_type=task_type,
            occurred_at=occurred_at,
            business_id=str(payload.get("business_id") or "")[:255],
            method=str(payload.get("method") or "")[:8],
            path=str(payload.get("path") or "")[:2048],
            status=status if isinstance(status, int) else None,
            location=str(payload.get("location") or "")[:64],
            country=str(payload.get("country") or "")[:8],
            lang_type=str(payload.get("lang_type") or "")[:35],
        )

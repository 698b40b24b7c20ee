"""The rule engine: what one completion means for one rule, decided from plain data.

Nothing here touches the database. `rules.services` reads the user's progress under row locks,
asks `evaluate` for a decision per rule, and applies the decisions in one transaction; the same
functions serve the dry run and the tests.
"""

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from zoneinfo import ZoneInfo

from apps.core.periods import NONE, next_period_start, period_bounds

COUNT, STREAK = "count", "streak"


def quick_init(cls: type) -> type:
    """Give a frozen dataclass an `__init__` that fills the instance's `__dict__` in one call.

    The generated one calls `object.__setattr__` once per field, which made building the
    `Progress` and `Decision` of each completion a third of a replay's time. Same signature,
    defaults and values; the instance stays frozen (its `__setattr__` is untouched).
    """
    params, defaults = [], {}
    for item in fields(cls):
        if item.default_factory is not MISSING or not item.init or item.kw_only:
            raise TypeError(f"quick_init: {cls.__name__}.{item.name} needs the generated __init__")
        if item.default is MISSING:
            params.append(item.name)
        else:
            defaults[f"_default_{item.name}"] = item.default
            params.append(f"{item.name}=_default_{item.name}")
    values = ", ".join(f"{item.name}={item.name}" for item in fields(cls))
    namespace: dict = {}
    exec(f"def __init__(self, {', '.join(params)}):\n    self.__dict__.update({values})\n", defaults, namespace)  # noqa: S102
    namespace["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = namespace["__init__"]
    return cls


class Reason(StrEnum):
    """Why a rule did or did not count a completion, and did or did not award."""

    AWARDED = "awarded"
    COUNTED = "counted"  # counted toward N, no award at this step
    NOT_ACTIVE = "not_active"
    OUTSIDE_WINDOW = "outside_window"
    DUPLICATE_OBJECT = "duplicate_object"  # can_repeat is off and this business id already counted
    LIMIT_REACHED = "limit_reached"  # award_limit_per_period awards already in this period
    CAP_REACHED = "cap_reached"  # number_limit_all recipients already exist
    PERIOD_ALREADY_COUNTED = "period_already_counted"  # streak: this period already counts
    LATE_EVENT = "late_event"  # streak: older than the last counted period (the pipeline re-scores such events instead)
    COOLDOWN = "cooldown"  # too close in time to another counted completion (of the same object, if per object)
    REVERSED = "reversed"  # the completion was undone by a reversal (SPEC §6); recorded by a re-score, never by `evaluate`


@dataclass(frozen=True)
class RuleSpec:
    id: int
    code: str
    kind: str
    period: str
    required: int
    points: int
    award_limit: int | None = None
    recipient_cap: int | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    can_repeat: bool = True
    active: bool = True
    object_points: Mapping[str, int] = field(default_factory=dict)
    recipients_count: int = 0  # places taken when the rule was read (may lag; never runs ahead)
    cooldown: timedelta | None = None  # least time between two counted completions of one user
    cooldown_per_object: bool = False  # the cooldown is per user and business id, not per user
    point_type_id: int | None = None  # which points it awards (None: the default type)
    badge_id: int | None = None  # the badge its awards grant (None: none)

    def amount_for(self, business_id: str) -> int:
        return self.object_points.get(business_id, self.points)

    def in_window(self, at: datetime) -> bool:
        # Compare instants: two times in one zone compare by wall clock, wrong in a repeated hour.
        start, end = self._utc_window
        if start is None and end is None:
            return True
        if at.tzinfo is not UTC:
            at = at.astimezone(UTC)
        return (start is None or start <= at) and (end is None or at < end)

    @cached_property
    def _utc_window(self) -> tuple[datetime | None, datetime | None]:
        """(start_time, end_time) in UTC, worked out once: `in_window` runs for every completion."""
        return (
            self.start_time.astimezone(UTC) if self.start_time is not None else None,
            self.end_time.astimezone(UTC) if self.end_time is not None else None,
        )


@dataclass(frozen=True)
class Completion:
    occurred_at: datetime
    business_id: str = ""


@quick_init
@dataclass(frozen=True)
class Progress:
    """What the engine needs to know about one user and one rule before this completion.

    For count rules, `count`, `awards` and `object_seen` describe the period of the completion.
    For streak rules, `last_period_start` and `streak` describe the latest counted period, and
    `awards` is for the completion's period (0 when that period has not counted yet).
    `counted_before` / `counted_after` are read only when the rule has a cooldown.
    """

    count: int = 0
    awards: int = 0
    object_seen: bool = False
    last_period_start: datetime | None = None
    streak: int = 0
    is_recipient: bool = False
    recipients: int = 0
    # For a rule with a cooldown: the user's counted completions of this rule (of the same business
    # id, if the cooldown is per object) nearest to this one, at or before it and after it.
    counted_before: datetime | None = None
    counted_after: datetime | None = None


@quick_init
@dataclass(frozen=True)
class Decision:
    rule_id: int
    rule_code: str
    reason: Reason
    counted: bool
    period_start: datetime
    deadline: datetime | None
    progress: int = 0  # count (count rules) or streak length (streak rules) after this completion
    points: int = 0  # awarded now; 0 unless reason is AWARDED
    takes_recipient_place: bool = False
    # Reason COOLDOWN only: the rule's cooldown, and when the counted completion that blocked this one lets another count.
    cooldown: timedelta | None = None
    cooldown_ends: datetime | None = None

    @property
    def awarded(self) -> bool:
        return self.reason is Reason.AWARDED

    def capped(self) -> "Decision":
        """The same decision, after the database refused the last recipient place."""
        return Decision(**{**asdict(self), "reason": Reason.CAP_REACHED, "points": 0, "takes_recipient_place": False})

    def as_record(self) -> dict:
        """A JSON-ready summary kept on the completion, for operators asking "why no points?"."""
        record = {
            "rule": self.rule_code,
            "rule_id": self.rule_id,
            "counted": self.counted,
            "reason": str(self.reason),
            "progress": self.progress,
            "points": self.points,
        }
        if self.cooldown is not None and self.cooldown_ends is not None:
            record["cooldown_s"] = int(self.cooldown.total_seconds())
            record["cooldown_ends"] = self.cooldown_ends.astimezone(UTC).isoformat()
        return record


def evaluate(rule: RuleSpec, completion: Completion, progress: Progress, tz: ZoneInfo) -> Decision:
    """Decide what `completion` means for `rule`, given the user's `progress` before it."""
    start, deadline = period_bounds(rule.period, completion.occurred_at, tz)

    def decided(reason: Reason, *, counted: bool = False, value: int = 0) -> Decision:
        return Decision(rule.id, rule.code, reason, counted, start, deadline, progress=value)

    if not rule.active:
        return decided(Reason.NOT_ACTIVE)
    if not rule.in_window(completion.occurred_at):
        return decided(Reason.OUTSIDE_WINDOW)

    if rule.kind == STREAK:
        if rule.period == NONE:
            raise ValueError(f"rule {rule.code}: a streak needs a period")
        last = progress.last_period_start
        if last is not None and start < last:
            return decided(Reason.LATE_EVENT, value=progress.streak)
        if last is not None and start == last:
            return decided(Reason.PERIOD_ALREADY_COUNTED, value=progress.streak)
        continues = last is not None and next_period_start(rule.period, last, tz) == start
        value = progress.streak + 1 if continues else 1
    else:
        if not rule.can_repeat and progress.object_seen:
            return decided(Reason.DUPLICATE_OBJECT, value=progress.count)
        value = progress.count + 1

    if rule.cooldown is not None and in_cooldown(rule.cooldown, completion.occurred_at, progress):
        value = progress.streak if rule.kind == STREAK else progress.count
        return Decision(
            rule.id,
            rule.code,
            Reason.COOLDOWN,
            False,
            start,
            deadline,
            progress=value,
            cooldown=rule.cooldown,
            cooldown_ends=cooldown_ends(rule.cooldown, completion.occurred_at, progress),
        )

    if value % rule.required:
        return decided(Reason.COUNTED, counted=True, value=value)
    if rule.award_limit is not None and progress.awards >= rule.award_limit:
        return decided(Reason.LIMIT_REACHED, counted=True, value=value)
    takes_place = rule.recipient_cap is not None and not progress.is_recipient
    if takes_place and progress.recipients >= rule.recipient_cap:
        return decided(Reason.CAP_REACHED, counted=True, value=value)
    return Decision(
        rule.id,
        rule.code,
        Reason.AWARDED,
        True,
        start,
        deadline,
        progress=value,
        points=rule.amount_for(completion.business_id),
        takes_recipient_place=takes_place,
    )


def in_cooldown(cooldown: timedelta, at: datetime, progress: Progress) -> bool:
    """Whether a completion at `at` lies within `cooldown` of a counted one, on either side.

    Both sides, because events may arrive out of order: a late event inside the cooldown of a
    counted one is refused just as an early one would have been.
    """
    before, after = progress.counted_before, progress.counted_after
    return (before is not None and at - before < cooldown) or (after is not None and after - at < cooldown)


def cooldown_ends(cooldown: timedelta, at: datetime, progress: Progress) -> datetime | None:
    """When the latest counted completion within `cooldown` of `at` lets another one count; None if none is."""
    near = [
        moment
        for moment in (progress.counted_before, progress.counted_after)
        if moment is not None and abs(at - moment) < cooldown
    ]
    return max(near) + cooldown if near else None

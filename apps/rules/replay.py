"""Replaying a rule over past completions, in memory: what it would have decided for each.

Plain Python over plain data, like the engine it drives: the dry run feeds it rows read from the
database and tallies the decisions; the backfill writes them. Completions must come in
(occurred_at, id) order; per-user state holds only what the engine reads for the user's latest
period (count rules) or latest counted period (streaks), so memory grows with users, not with
completions.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from apps.core.periods import period_bounds
from apps.rules.engine import STREAK, Completion, Decision, Progress, RuleSpec, evaluate


class _UserState:
    """One user's progress on the replayed rule."""

    __slots__ = ("awards", "count", "period_start", "seen", "streak", "streak_start")

    def __init__(self) -> None:
        self.period_start: datetime | None = None  # of `count`, `awards` and `seen`
        self.count = 0
        self.awards = 0
        self.seen: set[str] | None = None  # business ids counted this period (can_repeat = false)
        self.streak_start: datetime | None = None  # the latest counted period (streaks)
        self.streak = 0


class Replay:
    """The engine's decisions for a stream of completions of one rule, with the progress they leave.

    `step` must be called in (occurred_at, id) order. The rule is treated as active; its window
    still applies (the engine's own check). Cooldowns see the user's (or user and object's)
    previous counted completion: in time order there is never a counted one after.
    """

    def __init__(self, spec: RuleSpec, tz: ZoneInfo, *, recipients: int = 0, recipient_ids: set[int] | None = None):
        self.spec = spec
        self.tz = tz
        self.users: dict[int, _UserState] = {}
        self.recipient_ids: set[int] = set(recipient_ids or ())
        self.recipients = recipients
        self.last_counted: dict = {}  # user id, or (user id, business id): occurred_at of the last counted completion
        self._bounds: tuple[datetime, datetime | None] | None = None
        self._exclusive = not spec.can_repeat and spec.kind != STREAK

    def seed(self, user_id: int, *, streak_start: datetime | None, streak: int, last_counted: dict | None = None) -> None:
        """Start a user from what the periods before the replayed ones left (a re-score from a period on).

        `streak_start` and `streak`: the latest counted period before the first replayed one and the
        streak it ended with; `last_counted`: for a rule with a cooldown, {user id, or (user id,
        business id): when the last counted completion before it occurred}.
        """
        state = self.users.setdefault(user_id, _UserState())
        state.streak_start, state.streak = streak_start, streak
        self.last_counted.update(last_counted or {})

    def _period_start(self, at: datetime) -> datetime:
        # Completions come in time order, so one period's bounds serve a run of them.
        bounds = self._bounds
        if bounds is None or at < bounds[0] or (bounds[1] is not None and at >= bounds[1]):
            bounds = self._bounds = period_bounds(self.spec.period, at, self.tz)
        return bounds[0]

    def progress(self, user_id: int, occurred_at: datetime, business_id: str) -> Progress:
        """The user's progress before this completion, as the engine reads it."""
        spec = self.spec
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = _UserState()
        start = self._period_start(occurred_at)
        if state.period_start != start:
            state.period_start, state.count, state.awards, state.seen = start, 0, 0, None
        counted_before = None
        if spec.cooldown is not None:
            counted_before = self.last_counted.get((user_id, business_id) if spec.cooldown_per_object else user_id)
        return Progress(
            count=state.count,
            awards=state.awards,
            object_seen=state.seen is not None and business_id in state.seen,
            last_period_start=state.streak_start,
            streak=state.streak,
            is_recipient=user_id in self.recipient_ids,
            recipients=self.recipients,
            counted_before=counted_before,
        )

    def decide(self, user_id: int, occurred_at: datetime, business_id: str) -> Decision:
        """The engine's decision on one completion, keeping nothing yet (see `apply`)."""
        progress = self.progress(user_id, occurred_at, business_id)
        return evaluate(self.spec, Completion(occurred_at, business_id), progress, self.tz)

    def step(self, user_id: int, occurred_at: datetime, business_id: str) -> Decision:
        """Decide one completion and keep what it changes."""
        decision = self.decide(user_id, occurred_at, business_id)
        self.apply(user_id, occurred_at, business_id, decision)
        return decision

    def apply(self, user_id: int, occurred_at: datetime, business_id: str, decision: Decision) -> None:
        """Keep what `decision` (the engine's, or one the database changed) does to the user's progress."""
        if not decision.counted:
            return
        spec, state = self.spec, self.users[user_id]
        if spec.kind == STREAK:
            state.streak_start, state.streak = decision.period_start, decision.progress
        else:
            state.count = decision.progress
            if self._exclusive:
                if state.seen is None:
                    state.seen = set()
                state.seen.add(business_id)
        if spec.cooldown is not None:
            self.last_counted[(user_id, business_id) if spec.cooldown_per_object else user_id] = occurred_at
        if decision.awarded:
            state.awards += 1
            if decision.takes_recipient_place:
                self.recipient_ids.add(user_id)
                self.recipients += 1


@dataclass
class Tally:
    """What a replay decided, summed: recipients, awards, points, per user, and reasons."""

    completions: int = 0
    counted: int = 0
    awards: int = 0
    points: int = 0
    reasons: Counter = field(default_factory=Counter)
    per_user: dict[int, list[int]] = field(default_factory=dict)  # user id: [points, awards]
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def add(self, user_id: int, decision: Decision) -> None:
        self.completions += 1
        self.reasons[decision.reason.value] += 1
        if decision.counted:
            self.counted += 1
        if decision.points:
            self.awards += 1
            self.points += decision.points
            mine = self.per_user.get(user_id)
            if mine is None:
                self.per_user[user_id] = [decision.points, 1]
            else:
                mine[0] += decision.points
                mine[1] += 1

    def stop(self) -> "Tally":
        self.seconds = time.perf_counter() - self.started
        return self

    @property
    def recipients(self) -> int:
        """Distinct users who would be awarded."""
        return len(self.per_user)

    def top(self, n: int) -> list[tuple[int, int, int]]:
        """The `n` users with the most points: (user id, points, awards), ties by user id."""
        ranked = sorted(self.per_user.items(), key=lambda item: (-item[1][0], item[0]))[:n]
        return [(user_id, points, awards) for user_id, (points, awards) in ranked]

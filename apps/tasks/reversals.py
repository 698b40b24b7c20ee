"""Which completion each reversal undoes, decided from plain data in time order (SPEC §6).

A reversal (a completion of a task whose config `reverses` another) undoes the user's latest live
completion of the reversed task with the same business id whose `occurred_at` is at or before its
own. Taken in time order, that is a stack: each completion goes on it, each reversal takes the
top, or finds it empty and stays pending. The answer depends only on the times, never on the
order in which the events arrived; `apps.tasks.services.reversals_pair` stores it.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Moment:
    """A completion or a reversal of one user, task pair and business id: its row id and when it happened."""

    pk: int
    occurred_at: datetime
    event_id: str  # the tie-breaker of (occurred_at, event_id) order


def reversal_pairs(*, completions: list[Moment], reversals: list[Moment]) -> dict[int, int | None]:
    """{reversal pk: the completion pk it undoes, or None while it is pending}.

    A completion and a reversal at the same instant: the completion comes first, since a reversal
    undoes a completion "at or before" its own time.
    """
    stream = sorted(
        [(c.occurred_at, 0, c.event_id, c.pk) for c in completions] + [(r.occurred_at, 1, r.event_id, r.pk) for r in reversals]
    )
    live: list[int] = []
    pairs: dict[int, int | None] = {}
    for _, is_reversal, _, pk in stream:
        if not is_reversal:
            live.append(pk)
        else:
            pairs[pk] = live.pop() if live else None
    return pairs

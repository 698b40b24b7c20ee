"""What a batch of ledger entries announces (SPEC §12): awards, reversals, adjustments, expiry, levels reached.

Called by the posting itself (`ledger_post_batch`) and by the expiry job's set-based path, in
their transaction, so every entry that commits is announced once and none that rolls back is.
Spends and refunds are announced by what caused them (a redemption, a hold), which knows more.

Webhooks get one delivery per entry, with the entry's id and the balance after it. Users get one
notification per completion for its awards (a sign-in that earns coins and exp reads as one line),
and one per completion for what a reversal or re-score took back.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from apps.core import metrics
from apps.core.multirow import fetch
from apps.ledger.models import Level, PointType
from apps.notifications import events
from apps.notifications.services.announce import Announcement, announce

_ENTRY_EVENTS = {
    "award": events.POINTS_AWARDED,
    "reversal": events.POINTS_REVERSED,
    "adjustment": events.POINTS_ADJUSTED,
    "expiry": events.POINTS_EXPIRED,
}
# Kinds whose user notification is one per (user, completion) rather than one per entry.
_PER_COMPLETION = frozenset({"award", "reversal"})
_per_user: ContextVar[bool] = ContextVar("notices_per_user", default=False)


@contextmanager
def notices_per_user() -> Iterator[None]:
    """Within: a posting's awards make one notification per user, not one per completion.

    For the backfill, which awards a rule's past completions at once: a user with a hundred past
    sign-ins reads one line ("+500 points for 100 completions"), not a hundred. Webhooks still get
    one delivery per entry.
    """
    token = _per_user.set(True)
    try:
        yield
    finally:
        _per_user.reset(token)


@dataclass(frozen=True, slots=True)
class Posted:
    """One entry as the posting wrote it."""

    entry_id: int
    user_id: int
    point_type_id: int
    kind: str
    amount: int
    balance: int  # after the entry
    key: str  # the entry's idempotency key
    business_type: str = ""
    completion_id: int | None = None
    earned_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Earned:
    """An account whose lifetime earned points moved in the batch: levels between the two may have been reached."""

    account_id: int
    user_id: int
    point_type_id: int
    before: int
    after: int
    seq: int  # the account's last entry after the batch: keys a level reached again after a reversal apart


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def _types_and_levels() -> tuple[dict[int, str], dict[int, list[tuple[int, str, int]]]]:
    """({point type id: code}, {point type id: [(level id, name, threshold)] by threshold}): one small read, always fresh."""
    codes: dict[int, str] = {}
    levels: dict[int, list[tuple[int, str, int]]] = {}
    for type_id, code, level_id, name, threshold in fetch(
        f"SELECT t.id, t.code, l.id, l.name, l.threshold FROM {PointType._meta.db_table} t "  # noqa: S608 - the models' tables
        f"LEFT JOIN {Level._meta.db_table} l ON l.point_type_id = t.id ORDER BY t.id, l.threshold"
    ):
        codes[type_id] = code
        if level_id is not None:
            levels.setdefault(type_id, []).append((level_id, name, threshold))
    return codes, levels


def entries_announce(*, posted: Sequence[Posted], earned: Iterable[Earned] = (), now: datetime, notified: bool = False) -> None:
    """Announce `posted` entries and the levels `earned` crossed upwards; in the caller's transaction.

    `notified`: the caller wrote the users' notifications of entries told one by one (adjustments,
    expiry) itself, as the expiry job's set-based statement does; webhooks and counts still happen here.
    """
    wanted = [p for p in posted if p.kind in _ENTRY_EVENTS]
    rising = [e for e in earned if e.after > e.before]
    if not wanted and not rising:
        return
    codes, levels = _types_and_levels()
    _entries_count(wanted, codes)
    out: list[Announcement] = []
    grouped: dict[tuple[int, int, str], list[Posted]] = {}
    per_user = _per_user.get()
    for p in wanted:
        event = _ENTRY_EVENTS[p.kind]
        data = {
            "entry_id": p.entry_id,
            "user_id": p.user_id,
            "point_type": codes.get(p.point_type_id, ""),
            "amount": p.amount,
            "balance": p.balance,
        }
        if p.kind in _PER_COMPLETION:
            data.update(rule=p.business_type, completion_id=p.completion_id, earned_at=_iso(p.earned_at))
            grouped.setdefault((p.user_id, 0 if per_user else p.completion_id or 0, event), []).append(p)
        elif p.kind == "adjustment":
            data["reason"] = p.business_type
        out.append(Announcement(event, p.user_id, p.key, data, notify=p.kind not in _PER_COMPLETION and not notified))
    for (user_id, completion_id, event), entries in grouped.items():
        first = entries[0]
        rules = list(dict.fromkeys(p.business_type for p in entries))
        amounts: dict[str, int] = {}
        for p in entries:
            code = codes.get(p.point_type_id, "")
            amounts[code] = amounts.get(code, 0) + p.amount
        data = {
            "completion_id": completion_id or None,
            "completions": len({p.completion_id for p in entries}),
            "earned_at": _iso(first.earned_at),
            "rules": rules,
            "amounts": [{"point_type": code, "amount": amount} for code, amount in amounts.items() if amount],
        }
        if data["amounts"]:  # a re-score that took back and gave again the same is no news
            out.append(Announcement(event, user_id, f"notice:{first.key}", data, webhook=False))
    out.extend(_levels_reached(rising, codes, levels))
    announce(out, now=now)


def _entries_count(posted: list[Posted], codes: dict[int, str]) -> None:
    """Count awards, points awarded, reversed and expired by rule and point type code, once the entries commit.

    Here because every award, reversal and expiry entry is announced here, in its posting's
    transaction, with the type codes already read: no statement of its own.
    """
    awards: dict[tuple[str, str], list[int]] = {}
    reversed_points: dict[tuple[str, str], int] = {}
    expired: dict[str, int] = {}
    for p in posted:
        code = codes.get(p.point_type_id, "")
        if p.kind == "award":
            found = awards.setdefault((p.business_type, code), [0, 0])
            found[0] += 1
            found[1] += p.amount
        elif p.kind == "reversal":
            reversed_points[(p.business_type, code)] = reversed_points.get((p.business_type, code), 0) - p.amount
        elif p.kind == "expiry":
            expired[code] = expired.get(code, 0) - p.amount
    if not (awards or reversed_points or expired):
        return

    def count() -> None:
        for (rule, code), (entries, points) in awards.items():
            metrics.AWARDS.labels(rule=rule, point_type=code).inc(entries)
            # Awards are credits (a rule awards at least 1 point) and reversals and expiry debits; the
            # guards only keep a counter from being asked to go down (prometheus_client raises then).
            if points > 0:
                metrics.POINTS_AWARDED.labels(rule=rule, point_type=code).inc(points)
        for (rule, code), points in reversed_points.items():
            if points > 0:
                metrics.POINTS_REVERSED.labels(rule=rule, point_type=code).inc(points)
        for code, points in expired.items():
            if points > 0:
                metrics.POINTS_EXPIRED.labels(point_type=code).inc(points)

    metrics.after_commit(count)


def _levels_reached(rising: list[Earned], codes: dict[int, str], levels: dict) -> list[Announcement]:
    out = []
    for e in rising:
        for pk, name, threshold in levels.get(e.point_type_id, ()):
            if e.before < threshold <= e.after:
                data = {
                    "user_id": e.user_id,
                    "point_type": codes.get(e.point_type_id, ""),
                    "level": name,
                    "level_id": pk,
                    "threshold": threshold,
                    "earned": e.after,
                }
                out.append(Announcement(events.LEVEL_REACHED, e.user_id, f"level:{e.account_id}:{pk}:{e.seq}", data))
    return out

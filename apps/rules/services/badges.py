"""Badges (SPEC §12): a badge-granting rule's awards, one `BadgeAward` row each; a user holds the badge while one is live.

Scoring records the rows of its awards (`badges_grant`); the re-score makes the rows of a user and
rule agree with its replay (`badges_settle`), revoking those whose award the replay no longer
makes. So what a user holds follows the time-ordered replay of the live completions (§6), whatever
the order events arrived in. Both run under the user's account lock, in the transaction of the
awards, and announce `badge.earned` when a user comes to hold a badge and `badge.revoked` when
the last live award of it goes.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from apps.core.multirow import fetch, int_list, rows_insert
from apps.notifications import events
from apps.notifications.services.announce import Announcement, announce
from apps.rules.models import Badge, BadgeAward, ScoreRule


@dataclass(frozen=True, slots=True)
class Granted:
    """One award of a badge-granting rule."""

    user_id: int
    badge_id: int
    rule_id: int
    completion_id: int
    earned_at: datetime


_COLUMNS = ("user_id", "badge_id", "rule_id", "completion_id", "earned_at", "created_at")


def _held(pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of the (user id, badge id) pairs have a live award: one query."""
    pairs = set(pairs)
    if not pairs:
        return set()
    users, badges = int_list({u for u, _ in pairs}), int_list({b for _, b in pairs})
    found = fetch(
        f"SELECT DISTINCT user_id, badge_id FROM {BadgeAward._meta.db_table} "  # noqa: S608 - integers only
        f"WHERE revoked_at IS NULL AND user_id IN ({users}) AND badge_id IN ({badges})"
    )
    return {pair for pair in map(tuple, found) if pair in pairs}


def _announcement(event: str, row_id: int, granted: Granted, badges: dict[int, tuple[str, str]], rules: dict[int, str]):
    code, name = badges[granted.badge_id]
    data = {
        "user_id": granted.user_id,
        "badge": code,
        "badge_name": name,
        "rule": rules.get(granted.rule_id, ""),
        "completion_id": granted.completion_id,
        "earned_at": granted.earned_at.astimezone(UTC).isoformat(),
    }
    return Announcement(event, granted.user_id, f"{event}:{row_id}", data)


def _names(badge_ids: Iterable[int], rule_ids: Iterable[int]) -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    found = Badge.objects.filter(pk__in=set(badge_ids)).values_list("pk", "code", "name")
    badges = {pk: (code, name) for pk, code, name in found}
    rules = dict(ScoreRule.all_objects.filter(pk__in=set(rule_ids)).values_list("pk", "score_type"))
    return badges, rules


def badges_grant(*, granted: Sequence[Granted], now: datetime) -> None:
    """Record the awards of badge-granting rules; announce each badge a user did not hold yet. Under the users' locks."""
    if not granted:
        return
    held = _held((g.user_id, g.badge_id) for g in granted)
    ids = rows_insert(
        BadgeAward,
        _COLUMNS,
        [(g.user_id, g.badge_id, g.rule_id, g.completion_id, g.earned_at, now) for g in granted],
        returning=("id",),
    )
    first: dict[tuple[int, int], tuple[int, Granted]] = {}
    for g, (row_id,) in zip(granted, ids, strict=True):
        if (g.user_id, g.badge_id) not in held:
            first.setdefault((g.user_id, g.badge_id), (row_id, g))
    if first:
        badges, rules = _names({g.badge_id for _, g in first.values()}, {g.rule_id for _, g in first.values()})
        announce([_announcement(events.BADGE_EARNED, row_id, g, badges, rules) for row_id, g in first.values()], now=now)


def badges_settle(
    *, user_id: int, rule: ScoreRule, completion_ids: Sequence[int], awarded: dict[int, datetime], now: datetime
) -> None:
    """Make `rule`'s badge awards for `user_id` among `completion_ids` be exactly the `awarded` ones ({completion id: when}).

    Rows whose award is gone are revoked (kept, with `revoked_at`), missing ones added. Under the
    user's lock, after the re-score decided; announces the change of what the user holds, if any.
    """
    if rule.badge_id is None or not completion_ids:
        return
    badge_id = rule.badge_id
    live = dict(
        BadgeAward.objects.filter(
            rule_id=rule.pk, user_id=user_id, completion_id__in=list(completion_ids), revoked_at__isnull=True
        ).values_list("completion_id", "pk")
    )
    gone = [pk for completion_id, pk in live.items() if completion_id not in awarded]
    new = [Granted(user_id, badge_id, rule.pk, cid, at) for cid, at in sorted(awarded.items()) if cid not in live]
    if not gone and not new:
        return
    held_before = bool(_held([(user_id, badge_id)]))
    if gone:
        BadgeAward.objects.filter(pk__in=gone).update(revoked_at=now)
    ids = rows_insert(
        BadgeAward,
        _COLUMNS,
        [(g.user_id, g.badge_id, g.rule_id, g.completion_id, g.earned_at, now) for g in new],
        returning=("id",),
    )
    held_after = bool(_held([(user_id, badge_id)]))
    if held_before == held_after:
        return
    badges, rules = _names([badge_id], [rule.pk])
    if held_after:
        announce([_announcement(events.BADGE_EARNED, ids[0][0], new[0], badges, rules)], now=now)
    else:
        row = BadgeAward.objects.get(pk=gone[0])
        revoked = Granted(user_id, badge_id, rule.pk, row.completion_id, row.earned_at)
        announce([_announcement(events.BADGE_REVOKED, row.pk, revoked, badges, rules)], now=now)

"""A user's standing in each point type: balance, lifetime earned points, level and the next one (SPEC §11)."""

from dataclasses import dataclass
from datetime import datetime

from apps.ledger.models import Account, Level, PointType


@dataclass(frozen=True)
class Standing:
    point_type: PointType
    balance: int
    earned: int  # lifetime earned: what levels count
    level: Level | None  # None: below the first level, or the type has no levels
    next_level: Level | None
    held: bool = False  # the user has an account of this type (has ever had its points)
    entries: int = 0  # ledger entries in the type's account
    last_activity_at: datetime | None = None

    @property
    def to_next(self) -> int | None:
        """Earned points still needed for the next level, or None at the top."""
        return None if self.next_level is None else self.next_level.threshold - self.earned

    @property
    def percent(self) -> int | None:
        """How far from the current level (or from 0) to the next one, 0–100; None at the top or without levels."""
        if self.next_level is None:
            return None
        start = self.level.threshold if self.level is not None else 0
        span = self.next_level.threshold - start
        return max(0, min(100, (self.earned - start) * 100 // span)) if span > 0 else 0


def level_for(levels: list[Level], earned: int) -> tuple[Level | None, Level | None]:
    """(the level reached with `earned` points, the next one) among `levels` sorted by threshold."""
    reached, following = None, None
    for level in levels:
        if level.threshold <= earned:
            reached = level
        else:
            following = level
            break
    return reached, following


def standings_of(*, user_id: int) -> list[Standing]:
    """The user's standing in every point type, in the types' order: three queries whatever the number of types."""
    types = list(PointType.objects.all())
    accounts = {a.point_type_id: a for a in Account.objects.filter(user_id=user_id)}
    levels: dict[int, list[Level]] = {}
    for level in Level.objects.order_by("threshold"):
        levels.setdefault(level.point_type_id, []).append(level)
    standings = []
    for point_type in types:
        account = accounts.get(point_type.pk)
        balance, earned = (account.balance, account.earned_total) if account else (0, 0)
        reached, following = level_for(levels.get(point_type.pk, []), earned)
        activity = (account.last_seq, account.last_activity_at) if account else (0, None)
        standings.append(Standing(point_type, balance, earned, reached, following, account is not None, *activity))
    return standings


def level_of(*, user_id: int, point_type_id: int) -> Level | None:
    """The user's level in one point type, or None."""
    earned = Account.objects.filter(user_id=user_id, point_type_id=point_type_id).values_list("earned_total", flat=True).first()
    return Level.objects.filter(point_type_id=point_type_id, threshold__lte=earned or 0).order_by("-threshold").first()


def user_levels(*, user_id: int) -> list[tuple[PointType, Level]]:
    """(type, level reached) for each type with levels in which the user has one, in the types' order.

    What the site shows beside a user's name: one query when no type has levels, two otherwise.
    """
    levels: dict[int, list[Level]] = {}
    for level in Level.objects.select_related("point_type").order_by("threshold"):
        levels.setdefault(level.point_type_id, []).append(level)
    if not levels:
        return []
    earned = dict(
        Account.objects.filter(user_id=user_id, point_type_id__in=list(levels)).values_list("point_type_id", "earned_total")
    )
    reached = []
    for type_levels in levels.values():
        level, _ = level_for(type_levels, earned.get(type_levels[0].point_type_id, 0))
        if level is not None:
            reached.append((level.point_type, level))
    return sorted(reached, key=lambda pair: (pair[0].position, pair[0].pk))

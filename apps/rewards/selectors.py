"""Reads for the shop page and the API: what is on offer to a user and why not, and their redemptions."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.ledger.models import Account
from apps.rewards import eligibility
from apps.rewards.eligibility import RedemptionRefused
from apps.rewards.models import Redemption, RewardItem


@dataclass(frozen=True)
class Offer:
    item: RewardItem
    stock_left: int | None  # None: unlimited; as read, a hint (redeeming decides)
    refusal: RedemptionRefused | None  # why the user may not redeem it now; None: they may (or nobody is signed in)

    @property
    def may_redeem(self) -> bool:
        return self.refusal is None

    @property
    def limit_text(self) -> str | None:
        return eligibility.limit_text(self.item)


def shop_items(*, now: datetime | None = None) -> QuerySet[RewardItem]:
    """Active items whose window is open now, in the shop's order."""
    now = now or timezone.now()
    return (
        RewardItem.objects.filter(status=RewardItem.Status.ACTIVE)
        .filter(Q(start_time__isnull=True) | Q(start_time__lte=now), Q(end_time__isnull=True) | Q(end_time__gt=now))
        .select_related("point_type", "min_level__point_type")
        .order_by("position", "id")
    )


def shop_offers(*, user_id: int | None, now: datetime | None = None) -> list[Offer]:
    """Each item in the shop with what is left and, for a signed-in user, why they may not redeem it (four queries)."""
    now = now or timezone.now()
    items = list(shop_items(now=now))
    if user_id is None:
        return [Offer(item, eligibility.stock_left(item), None) for item in items]
    rows = Account.objects.filter(user_id=user_id).values_list("point_type_id", "balance", "earned_total")
    accounts = {type_id: (balance, earned) for type_id, balance, earned in rows}
    used = _used_in_windows(user_id, items, now=now)
    offers = []
    for item in items:
        earned = accounts.get(item.min_level.point_type_id, (0, 0))[1] if item.min_level else 0
        refusal = eligibility.refusal_of(
            item,
            now=now,
            earned=earned,
            used=used[item.pk],
            balance=accounts.get(item.point_type_id, (0, 0))[0],
        )
        offers.append(Offer(item, eligibility.stock_left(item), refusal))
    return offers


def _used_in_windows(user_id: int, items: list[RewardItem], *, now: datetime) -> Counter:
    """{item id: the user's redemptions of it, not cancelled, in its limit's current period} for limited items."""
    windows = {item.pk: window for item in items if (window := eligibility.limit_window(item, now=now)) is not None}
    used: Counter = Counter()
    if not windows:
        return used
    since = min(start for start, _ in windows.values())
    rows = (
        Redemption.objects.filter(user_id=user_id, item_id__in=list(windows), created_at__gte=since)
        .exclude(status=Redemption.Status.CANCELLED)
        .values_list("item_id", "created_at")
    )
    for item_id, created_at in rows:
        start, end = windows[item_id]
        if created_at >= start and (end is None or created_at < end):
            used[item_id] += 1
    return used


@dataclass(frozen=True)
class RedemptionPage:
    redemptions: list[Redemption]
    next_before: int | None  # the id to pass as `before` for the next, older page; None on the last page


def redemptions_of(*, user_id: int, before: int | None = None, limit: int = 20) -> RedemptionPage:
    """The user's redemptions, newest first, `limit` at a time, keyed by id (pages do not shift as new ones come)."""
    rows = Redemption.objects.filter(user_id=user_id).select_related("item", "point_type").order_by("-id")
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows[: limit + 1])
    has_next = len(page) > limit
    page = page[:limit]
    return RedemptionPage(page, page[-1].pk if has_next else None)


def pending_redemptions_count() -> int:
    """Redemptions waiting for an operator (the queue's `status` index)."""
    return Redemption.objects.filter(status=Redemption.Status.PENDING).count()

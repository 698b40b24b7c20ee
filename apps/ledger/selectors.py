"""Reads of balances and ledger history."""

from django.db.models import QuerySet

from apps.ledger.models import Account, ScoreRecord


def balance_of(*, user_id: int) -> int:
    return Account.objects.filter(user_id=user_id).values_list("balance", flat=True).first() or 0


def recent_entries(*, user_id: int, limit: int = 20) -> QuerySet[ScoreRecord]:
    return ScoreRecord.objects.filter(user_id=user_id).select_related("rule").order_by("-id")[:limit]

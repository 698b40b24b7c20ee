"""Writes to the ledger. Every balance change goes through `ledger_post_entry`."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.ledger.models import Account, ScoreRecord


class InsufficientBalanceError(Exception):
    """An adjustment would take the balance below zero."""


@dataclass(frozen=True)
class EntryMeta:
    """Where the points were earned: copied from the event onto the entry."""

    location: str = ""
    country: str = ""
    lang_type: str = ""


def account_lock(*, user_id: int) -> Account:
    """Return the user's account, created if missing, locked until the transaction ends.

    Every write that concerns one user (completions, progress, ledger entries) happens under this
    lock, so one user's events are applied one at a time whatever the number of workers. Callers
    that need several accounts must lock them in ascending user id order.
    """
    account = Account.objects.select_for_update().filter(user_id=user_id).first()
    if account is None:  # first points ever: create, then lock like everyone else
        Account.objects.get_or_create(user_id=user_id)
        account = Account.objects.select_for_update().get(user_id=user_id)
    return account


@dataclass(frozen=True)
class EntrySpec:
    """One entry to post: what moves and why. Balances and sequence numbers are the ledger's."""

    amount: int
    kind: str
    idempotency_key: str
    business_type: str = ""
    rule_id: int | None = None
    completion_id: int | None = None
    score_info_id: int | None = None
    reverses_id: int | None = None
    meta: EntryMeta = EntryMeta()


def ledger_post_entries(*, account: Account, entries: list[EntrySpec]) -> list[ScoreRecord]:
    """Append `entries` to `account` in order and move its balance; return the new rows.

    `account` must come from `account_lock` in the current transaction. One INSERT for all the
    entries and one UPDATE of the account. A repeated idempotency key raises IntegrityError from
    the database, which aborts the caller's transaction: nothing is half-posted. Raises
    InsufficientBalanceError when an adjustment would take the balance below zero.
    """
    rows = []
    balance, seq = account.balance, account.last_seq
    now = timezone.now()
    for entry in entries:
        if entry.amount == 0:
            raise ValueError("a ledger entry moves a non-zero amount")
        if entry.kind == ScoreRecord.Kind.ADJUSTMENT and balance + entry.amount < 0:
            raise InsufficientBalanceError(f"balance {balance} cannot take {entry.amount}")
        seq += 1
        rows.append(
            ScoreRecord(
                account=account,
                user_id=account.user_id,
                serial_number=f"{now:%Y%m%d%H%M%S}{now.microsecond:06d}-{account.pk}-{seq}",
                seq=seq,
                trade_amount=entry.amount,
                amount_before_trade=balance,
                amount_after_trade=balance + entry.amount,
                business_type=entry.business_type[:255],
                kind=entry.kind,
                rule_id=entry.rule_id,
                completion_id=entry.completion_id,
                score_info_id=entry.score_info_id,
                reverses_id=entry.reverses_id,
                location=entry.meta.location,
                country=entry.meta.country,
                lang_type=entry.meta.lang_type,
                idempotency_key=entry.idempotency_key,
                created_at=now,
            )
        )
        balance += entry.amount
    if not rows:
        return []
    ScoreRecord.objects.bulk_create(rows)
    account.balance, account.last_seq, account.last_activity_at = balance, seq, now
    account.save(update_fields=["balance", "last_seq", "last_activity_at", "updated_at"])
    return rows


def ledger_post_entry(*, account: Account, **entry) -> ScoreRecord | None:
    """Post one entry; return it, or None, changing nothing, if its idempotency key was used before.

    Takes the same fields as EntrySpec. The savepoint lets the caller's transaction go on after a
    repeated key; `ledger_post_entries` is the faster path for callers that know the keys are new.
    """
    try:
        with transaction.atomic():
            return ledger_post_entries(account=account, entries=[EntrySpec(**entry)])[0]
    except IntegrityError:
        if ScoreRecord.objects.filter(idempotency_key=entry["idempotency_key"]).exists():
            return None
        raise

"""Accounts and ledger entries: every balance change goes through `ledger_post_entry` or its batch forms."""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core.clock import serial_stamp
from apps.core.multirow import fetch, int_list, rows_insert, rows_update
from apps.ledger.models import Account, ScoreRecord
from apps.ledger.services.leaderboard import COUNTED_KINDS, Contribution, leaderboard_totals_add


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


def accounts_ensure(*, user_ids: Iterable[int]) -> None:
    """Create the accounts that do not exist yet (balance 0), outside any lock; existing ones are left alone.

    Run before a batch's transaction, so that the batch can lock every account in one statement.
    """
    Account.objects.bulk_create([Account(user_id=user_id) for user_id in user_ids], ignore_conflicts=True)


def accounts_lock(*, user_ids: Iterable[int], skip_locked: bool = False) -> dict[int, Account]:
    """Lock the existing accounts of `user_ids` until the transaction ends, in ascending user id order.

    One statement: PostgreSQL sorts the rows before locking them, so every caller takes its locks
    in the same global order and two callers cannot deadlock on accounts. With `skip_locked`,
    accounts that another transaction holds are left out instead of waited for. Returns
    {user_id: account}; users without an account are missing from it (see `accounts_ensure`).
    """
    users = int_list(sorted(user_ids))
    if not users:
        return {}
    lock = ""
    if connection.features.has_select_for_update:
        lock = (
            " FOR UPDATE SKIP LOCKED" if skip_locked and connection.features.has_select_for_update_skip_locked else " FOR UPDATE"
        )
    # Only what posting reads (the other fields are deferred, as with `.only()`): a batch locks a
    # hundred accounts, and a hand-written read costs a fraction of the ORM's Python.
    columns = ("id", "user_id", "balance", "last_seq")
    rows = fetch(f"SELECT {', '.join(columns)} FROM {Account._meta.db_table} WHERE user_id IN ({users}) ORDER BY user_id{lock}")  # noqa: S608 - integers only
    return {row[1]: Account.from_db(connection.alias, columns, row) for row in rows}


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
    # Leaderboards: when the points were earned, the occurred_at of the completion whose award
    # this is (for a reversal, of the award it undoes). Required for awards and reversals that
    # name a completion or an award; without either, the entry's own created_at is used.
    earned_at: datetime | None = None


def _contribution(user_id: int, entry: EntrySpec, created_at: datetime) -> Contribution | None:
    """What `entry` adds to its user's leaderboard totals, or None for entries that do not count."""
    if entry.kind not in COUNTED_KINDS:
        return None
    if entry.earned_at is None and (entry.completion_id or entry.reverses_id):
        raise ValueError("an award or reversal of a completion needs earned_at (the completion's occurred_at)")
    return Contribution(user_id, entry.rule_id, entry.earned_at or created_at, entry.amount, created_at)


def _numbered(account: Account, entries: Sequence[EntrySpec], now) -> Iterator[tuple[EntrySpec, int, int, str]]:
    """(entry, seq, balance before, serial number) for each entry appended to `account` in order.

    Checks each entry; raises ValueError on a zero amount and InsufficientBalanceError when an
    adjustment would take the balance below zero. The caller moves the account afterwards.
    """
    balance, seq = account.balance, account.last_seq
    stamp = serial_stamp(now)  # the site's date and time, like every date an operator sees
    for entry in entries:
        if entry.amount == 0:
            raise ValueError("a ledger entry moves a non-zero amount")
        if entry.kind == ScoreRecord.Kind.ADJUSTMENT and balance + entry.amount < 0:
            raise InsufficientBalanceError(f"balance {balance} cannot take {entry.amount}")
        seq += 1
        yield entry, seq, balance, f"{stamp}-{account.pk}-{seq}"
        balance += entry.amount


def ledger_post_entries(*, account: Account, entries: list[EntrySpec]) -> list[ScoreRecord]:
    """Append `entries` to `account` in order and move its balance; return the new rows.

    `account` must come from `account_lock` in the current transaction. One INSERT for all the
    entries, one UPDATE of the account and, for awards and reversals, one upsert of the user's
    leaderboard totals (apps.ledger.services.leaderboard). A repeated idempotency key raises IntegrityError from
    the database, which aborts the caller's transaction: nothing is half-posted. Raises
    InsufficientBalanceError when an adjustment would take the balance below zero.
    """
    now = timezone.now()
    rows = [
        ScoreRecord(
            account=account,
            user_id=account.user_id,
            serial_number=serial,
            seq=seq,
            trade_amount=entry.amount,
            amount_before_trade=before,
            amount_after_trade=before + entry.amount,
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
        for entry, seq, before, serial in _numbered(account, entries, now)
    ]
    if not rows:
        return []
    ScoreRecord.objects.bulk_create(rows)  # created_at: auto_now_add stamps each row as it goes
    contributions = [
        c for entry, row in zip(entries, rows, strict=True) if (c := _contribution(account.user_id, entry, row.created_at))
    ]
    leaderboard_totals_add(contributions=contributions)
    account.balance, account.last_seq, account.last_activity_at = rows[-1].amount_after_trade, rows[-1].seq, now
    account.save(update_fields=["balance", "last_seq", "last_activity_at", "updated_at"])
    return rows


# The columns a batch writes for each new entry (the benches build their SQL from the same list).
ENTRY_COLUMNS = (
    "account_id",
    "user_id",
    "serial_number",
    "seq",
    "trade_amount",
    "amount_before_trade",
    "amount_after_trade",
    "business_type",
    "kind",
    "score_info_id",
    "rule_id",
    "completion_id",
    "reverses_id",
    "location",
    "country",
    "lang_type",
    "idempotency_key",
    "created_at",
)


def ledger_post_batch(*, postings: Sequence[tuple[Account, Sequence[EntrySpec]]]) -> int:
    """Append entries to several accounts at once: one INSERT for every entry, one UPDATE for every account.

    Each account must come from `account_lock`/`accounts_lock` in the current transaction and
    appear once. The same checks and the same rows as `ledger_post_entries`, without building a
    model instance per entry (the worker's batches), and one upsert for the leaderboard totals of
    all the entries. Returns the number of entries written.
    """
    now = timezone.now()
    rows, moved, contributions = [], [], []
    for account, entries in postings:
        last = None
        for entry, seq, before, serial in _numbered(account, entries, now):
            meta = entry.meta
            if contribution := _contribution(account.user_id, entry, now):
                contributions.append(contribution)
            rows.append(
                (
                    account.pk,
                    account.user_id,
                    serial,
                    seq,
                    entry.amount,
                    before,
                    before + entry.amount,
                    entry.business_type[:255],
                    entry.kind,
                    entry.score_info_id,
                    entry.rule_id,
                    entry.completion_id,
                    entry.reverses_id,
                    meta.location,
                    meta.country,
                    meta.lang_type,
                    entry.idempotency_key,
                    now,
                )
            )
            last = (seq, before + entry.amount)
        if last is not None:
            account.last_seq, account.balance, account.last_activity_at, account.updated_at = *last, now, now
            moved.append((account.pk, account.balance, account.last_seq, now, now))
    rows_insert(ScoreRecord, ENTRY_COLUMNS, rows)
    rows_update(Account, ("balance", "last_seq", "last_activity_at", "updated_at"), moved)
    leaderboard_totals_add(contributions=contributions)
    return len(rows)


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

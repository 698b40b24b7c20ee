"""Expiry (积分过期, SPEC §11): the lots that reached their end leave their accounts, once (G14).

`points_expire(at)` posts, for every account whose lots reached their end (`expires_at <= at`,
`remaining > 0`), one `expiry` entry per run for the sum of those lots, and empties them. Beat runs
it daily, shortly after local midnight (JIFEN_EXPIRY_RUN_AT), and `manage.py expire_points
[--at ISO_TIME] [--dry-run]` runs the same job by hand.

Exactly once, however it is run (twice, concurrently, or killed midway and run again):

- accounts go in chunks (JIFEN_EXPIRY_CHUNK), each chunk one transaction that first locks its
  users' main accounts (`accounts_lock`, ascending user id: no deadlock with any other locker);
- the due lots are read again *under* the lock, so a lot another run (or a spend) emptied in the
  meantime is not counted twice; a killed run leaves its committed chunks done and the rest
  untouched, and the next run finds only what is still due;
- the entry's idempotency key is per (account, run time), and a chunk skips the accounts that
  already have theirs: the same `--at` run again posts nothing new.

What an expiry entry does is what `ledger_post_batch` does with a debit of kind `expiry` for the
sum of the due lots: a debit takes the soonest-expiring lots first, so exactly the due lots (to 0;
an expiry records no `LotTake`, as nothing ever gives it back); the account's balance, last_seq
and last activity move; earned totals (levels) and leaderboards do not (expiry is not earning).
On PostgreSQL a chunk is one set-based statement after the lock (each lot's update found by its
row address, no round trip per lot or account: SPEC P9); elsewhere (SQLite, the embedded demo) it
goes through `ledger_post_batch` itself. Both leave the same rows (tests/ledger/test_expiry.py).

Nothing expires from an account whose balance is below the due sum: by invariant 6 that is only an
account below zero, whose lots are all empty anyway (SPEC §11: nothing expires from an account
below zero). An account whose lots disagree with its balance is left alone and reported, for
`verify_ledger` to name.
"""

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core import metrics
from apps.core.clock import serial_stamp
from apps.core.multirow import db_time, fetch, int_list
from apps.ledger.models import Account, PointLot, PointType, ScoreRecord
from apps.ledger.services.announcements import Posted, entries_announce
from apps.ledger.services.entries import EntrySpec, accounts_ensure, accounts_lock, ledger_post_batch
from apps.notifications.models import Notification

logger = logging.getLogger(__name__)

BUSINESS_TYPE = "expiry"


@dataclass
class Expired:
    """What one point type lost in a run (or would lose, in a dry run)."""

    accounts: int = 0
    lots: int = 0
    points: int = 0


@dataclass
class ExpiryReport:
    at: datetime
    dry_run: bool = False
    by_type: dict[int, Expired] = field(default_factory=lambda: defaultdict(Expired))
    # Accounts with due lots whose balance is below their sum (invariant 6 broken): left alone.
    disagreeing: list[int] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.by_type.values())

    @property
    def accounts(self) -> int:
        return sum(e.accounts for e in self.by_type.values())

    @property
    def lots(self) -> int:
        return sum(e.lots for e in self.by_type.values())


def idempotency_key(account_id: int, at: datetime) -> str:
    """The expiry entry's key: one per account and run time."""
    return f"{key_prefix(at)}{account_id}"


def key_prefix(at: datetime) -> str:
    # The run's moment in microseconds since the epoch: the same instant gives the same key in any zone.
    micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"expiry:{micros}:"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def due_accounts(*, at: datetime) -> list[tuple[int, int]]:
    """(user id, account id) of every account with lots that reached their end by `at`, by user id.

    One read on the partial index of due lots; no lock: each chunk reads its lots again under the lock.
    """
    lots, accounts = _table(PointLot), _table(Account)
    return fetch(
        f"SELECT a.user_id, a.id FROM {accounts} a WHERE a.id IN ("  # noqa: S608 - the models' own tables
        f"SELECT l.account_id FROM {lots} l WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= %s) "
        "ORDER BY a.user_id, a.id",
        [db_time(at)],
    )


def _chunks(pairs: Sequence[tuple[int, int]], size: int) -> Iterator[tuple[list[int], list[int]]]:
    """(user ids, account ids) of at most `size` users at a time; a user's accounts stay together."""
    users: list[int] = []
    accounts: list[int] = []
    for user_id, account_id in pairs:
        if users and users[-1] != user_id and len(users) >= size:
            yield users, accounts
            users, accounts = [], []
        if not users or users[-1] != user_id:
            users.append(user_id)
        accounts.append(account_id)
    if users:
        yield users, accounts


def _lock(user_ids: list[int]) -> dict[int, Account]:
    """Lock the users' main accounts (creating those missing first: a user without one would be unguarded)."""
    locked = accounts_lock(user_ids=user_ids)
    missing = [u for u in user_ids if u not in locked]
    if missing:
        accounts_ensure(user_ids=missing)
        locked.update(accounts_lock(user_ids=missing))
    return locked


# One chunk, in one statement: the due lots read under the lock, then the entries, the accounts and
# the lots written together. Every CTE sees the same snapshot, taken after the lock was granted.
_CHUNK_SQL = """
WITH due AS (
    SELECT l.ctid AS tid, l.account_id, l.remaining
    FROM {lots} l
    WHERE l.account_id = ANY(%(accounts)s) AND l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= %(at)s
),
sums AS (
    SELECT account_id, SUM(remaining)::bigint AS total, COUNT(*) AS lots FROM due GROUP BY account_id
),
chunk AS (
    SELECT a.id, a.user_id, a.point_type_id, a.balance, a.last_seq, s.total, s.lots
    FROM {accounts} a JOIN sums s ON s.account_id = a.id
    WHERE a.id = ANY(%(accounts)s)
),
moved AS (
    SELECT c.id, c.user_id, c.point_type_id, c.balance, c.last_seq + 1 AS seq, c.total, c.lots FROM chunk c
    WHERE c.balance >= c.total
      AND NOT EXISTS (SELECT 1 FROM {entries} e WHERE e.idempotency_key = %(key)s::text || c.id)
),
entries AS (
    INSERT INTO {entries} (account_id, user_id, point_type_id, serial_number, seq, trade_amount, amount_before_trade,
        amount_after_trade, business_type, kind, location, country, lang_type, idempotency_key, created_at)
    SELECT id, user_id, point_type_id, %(stamp)s::text || '-' || id || '-' || seq, seq, -total, balance, balance - total,
        %(business)s::text, 'expiry', '', '', '', %(key)s::text || id, %(now)s
    FROM moved ORDER BY id
    RETURNING id, account_id, user_id, point_type_id, trade_amount, amount_after_trade, idempotency_key
),
accounts AS (
    UPDATE {accounts} a SET balance = a.balance - m.total, last_seq = m.seq, last_activity_at = %(now)s, updated_at = %(now)s
    FROM moved m WHERE a.id = m.id
),
emptied AS (
    UPDATE {lots} l SET remaining = 0
    FROM due d
    WHERE l.ctid = d.tid AND d.account_id IN (SELECT id FROM moved)
),
-- What entries_announce would tell each user (a points.expired notification, the same data), written
-- here rather than sent back and forth as a thousand JSON literals.
notices AS (
    INSERT INTO {notifications} (user_id, kind, data, key, created_at)
    SELECT e.user_id, 'points.expired', jsonb_build_object('entry_id', e.id, 'user_id', e.user_id, 'point_type', t.code,
        'amount', e.trade_amount, 'balance', e.amount_after_trade), '', %(now)s
    FROM entries e JOIN {types} t ON t.id = e.point_type_id ORDER BY e.id
)
SELECT m.lots, NULL::bigint[], e.id, e.user_id, e.point_type_id, e.trade_amount, e.amount_after_trade, e.idempotency_key
FROM moved m JOIN entries e ON e.account_id = m.id
UNION ALL
SELECT 0, ARRAY_AGG(id), NULL, NULL, NULL, NULL, NULL, NULL FROM chunk WHERE balance < total HAVING COUNT(*) > 0
"""


def _chunk_set_based(account_ids: list[int], *, at: datetime, now: datetime, report: ExpiryReport) -> None:
    sql = _CHUNK_SQL.format(
        lots=_table(PointLot),
        accounts=_table(Account),
        entries=_table(ScoreRecord),
        notifications=_table(Notification),
        types=_table(PointType),
    )
    params = {
        "accounts": account_ids,
        "at": at,
        "now": now,
        "stamp": serial_stamp(now),
        "key": key_prefix(at),
        "business": BUSINESS_TYPE,
    }
    posted = []
    for lots, short, entry_id, user_id, point_type_id, amount, balance, key in fetch(sql, params):
        if entry_id is None:
            report.disagreeing.extend(short or [])
            continue
        found = report.by_type[point_type_id]
        found.accounts, found.lots, found.points = found.accounts + 1, found.lots + lots, found.points - amount
        posted.append(Posted(entry_id, user_id, point_type_id, ScoreRecord.Kind.EXPIRY, amount, balance, key, BUSINESS_TYPE))
    # What `ledger_post_batch` would announce for the same entries (no earning: no level); the
    # statement wrote the users' notifications already, so only webhooks and counts are left.
    entries_announce(posted=posted, now=now, notified=True)


def _due_sums(account_ids: list[int], at: datetime) -> list[tuple[int, int, int, int, int]]:
    """(account id, point type id, balance, lots, due points) of the accounts' due lots, read now."""
    lots, accounts = _table(PointLot), _table(Account)
    return fetch(
        f"SELECT a.id, a.point_type_id, a.balance, COUNT(*), SUM(l.remaining) FROM {lots} l "  # noqa: S608 - integers only
        f"JOIN {accounts} a ON a.id = l.account_id WHERE l.account_id IN ({int_list(account_ids)}) AND l.remaining > 0 "
        "AND l.expires_at IS NOT NULL AND l.expires_at <= %s GROUP BY a.id, a.point_type_id, a.balance ORDER BY a.id",
        [db_time(at)],
    )


def _chunk_posted(account_ids: list[int], locked: dict[int, Account], *, at: datetime, report: ExpiryReport) -> None:
    """The same chunk through the ledger's own posting: one `expiry` debit of the due sum per account."""
    sums = _due_sums(account_ids, at)
    keys = {pk: idempotency_key(pk, at) for pk, *_ in sums}
    done = set(ScoreRecord.objects.filter(idempotency_key__in=keys.values()).values_list("idempotency_key", flat=True))
    owners = dict(Account.objects.filter(pk__in=keys).values_list("pk", "user_id"))
    postings: dict[int, list[EntrySpec]] = defaultdict(list)
    counted: list[tuple[int, int, int]] = []
    for pk, point_type_id, balance, lots, total in sums:
        total = int(total)
        if balance < total:
            report.disagreeing.append(pk)
            continue
        if keys[pk] in done:
            continue
        postings[owners[pk]].append(
            EntrySpec(
                amount=-total,
                kind=ScoreRecord.Kind.EXPIRY,
                idempotency_key=keys[pk],
                business_type=BUSINESS_TYPE,
                point_type_id=point_type_id,
            )
        )
        counted.append((point_type_id, lots, total))
    ledger_post_batch(postings=[(locked[user_id], entries) for user_id, entries in sorted(postings.items())])
    for point_type_id, lots, total in counted:
        found = report.by_type[point_type_id]
        found.accounts, found.lots, found.points = found.accounts + 1, found.lots + lots, found.points + total


def points_expire(*, at: datetime | None = None, chunk_size: int | None = None, set_based: bool | None = None) -> ExpiryReport:
    """Expire every lot that reached its end by `at` (default: now), once; return what expired, per point type.

    Each chunk of accounts commits on its own, so a run stopped midway keeps what it did and the
    next run does the rest. `set_based` (default: on PostgreSQL) picks the one-statement path; the
    other posts through `ledger_post_batch`.
    """
    at = at or timezone.now()
    size = chunk_size or settings.JIFEN_EXPIRY_CHUNK
    if set_based is None:
        set_based = connection.vendor == "postgresql"
    report = ExpiryReport(at=at)
    for user_ids, account_ids in _chunks(due_accounts(at=at), size):
        with transaction.atomic():
            locked = _lock(user_ids)
            if set_based:
                _chunk_set_based(account_ids, at=at, now=timezone.now(), report=report)
            else:
                _chunk_posted(account_ids, locked, at=at, report=report)
    # A run that got this far (its points are counted by type as each chunk commits, in entries_announce).
    metrics.after_commit(metrics.EXPIRY_RUNS.inc)
    if report.disagreeing:
        logger.error(
            "expiry: %d accounts have lots that disagree with their balance; left alone (run verify_ledger): %s",
            len(report.disagreeing),
            report.disagreeing[:20],
        )
    if report.points:
        logger.info(
            "expiry: %d points of %d accounts (%d lots) expired as of %s", report.points, report.accounts, report.lots, at
        )
    return report


def points_expire_preview(*, at: datetime) -> ExpiryReport:
    """What `points_expire(at=at)` would expire now, per point type, changing nothing (a dry run)."""
    lots, accounts = _table(PointLot), _table(Account)
    report = ExpiryReport(at=at, dry_run=True)
    rows = fetch(
        f"SELECT a.id, a.point_type_id, a.balance, s.lots, s.total FROM {accounts} a JOIN ("  # noqa: S608 - the models' tables
        f"SELECT account_id, COUNT(*) AS lots, SUM(remaining) AS total FROM {lots} "
        "WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= %s GROUP BY account_id) s ON s.account_id = a.id",
        [db_time(at)],
    )
    for pk, point_type_id, balance, lots_count, total in rows:
        total = int(total)
        if balance < total:
            report.disagreeing.append(pk)
            continue
        found = report.by_type[point_type_id]
        found.accounts, found.lots, found.points = found.accounts + 1, found.lots + lots_count, found.points + total
    return report


def point_type_codes() -> dict[int, str]:
    return dict(PointType.objects.values_list("pk", "code"))

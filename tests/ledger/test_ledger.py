"""The ledger: append-only everywhere, and verify_ledger names what breaks (SPEC §5, G6)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.ledger.models import LedgerImmutableError, ScoreRecord
from apps.ledger.services.entries import InsufficientBalanceError, account_lock, ledger_post_entry
from tests.factories import UserFactory


@pytest.fixture
def entries(db):
    user = UserFactory(username="carol")
    with transaction.atomic():
        account = account_lock(user_id=user.pk)
        for n, amount in enumerate((5, 3, -2), start=1):
            ledger_post_entry(account=account, amount=amount, kind="award", idempotency_key=f"k{n}")
    return list(ScoreRecord.objects.order_by("seq"))


def test_entries_chain_balances(entries):
    assert [(e.seq, e.amount_before_trade, e.amount_after_trade) for e in entries] == [(1, 0, 5), (2, 5, 8), (3, 8, 6)]
    assert entries[-1].account.balance == 6
    assert len({e.serial_number for e in entries}) == 3


def test_same_idempotency_key_posts_once(entries):
    account = entries[0].account
    with transaction.atomic():
        locked = account_lock(user_id=account.user_id)
        assert ledger_post_entry(account=locked, amount=5, kind="award", idempotency_key="k1") is None
    assert ScoreRecord.objects.count() == 3


def test_adjustment_never_takes_balance_below_zero(entries):
    with transaction.atomic():
        account = account_lock(user_id=entries[0].user_id)
        with pytest.raises(InsufficientBalanceError):
            ledger_post_entry(account=account, amount=-7, kind="adjustment", idempotency_key="adj")
    assert ScoreRecord.objects.count() == 3


class TestAppendOnly:
    def test_orm_refuses_update_and_delete(self, entries):
        entry = entries[0]
        entry.trade_amount = 100
        with pytest.raises(LedgerImmutableError):
            entry.save()
        with pytest.raises(LedgerImmutableError):
            entry.delete()
        with pytest.raises(LedgerImmutableError):
            ScoreRecord.objects.filter(pk=entry.pk).update(trade_amount=100)
        with pytest.raises(LedgerImmutableError):
            ScoreRecord.objects.all().delete()

    @pytest.mark.postgres
    def test_raw_sql_update_and_delete_are_refused_by_the_database(self, entries):
        for sql in ("UPDATE ledger_scorerecord SET trade_amount = 100", "DELETE FROM ledger_scorerecord"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
        assert ScoreRecord.objects.filter(trade_amount=100).count() == 0
        assert ScoreRecord.objects.count() == 3


class TestVerifyLedger:
    def test_clean_ledger_passes(self, entries, capsys):
        call_command("verify_ledger")
        assert "Ledger OK" in capsys.readouterr().out

    def test_tampered_entry_is_named(self, entries, capsys):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Only a table owner can do this; the test plays an attacker with those rights.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("ALTER TABLE ledger_scorerecord DISABLE TRIGGER ledger_scorerecord_append_only")
            cursor.execute(
                "UPDATE ledger_scorerecord SET amount_before_trade = 6, trade_amount = 3, amount_after_trade = 9 WHERE seq = 2"
            )
        with pytest.raises(CommandError, match=r"in accounts \d+ \(carol\)"):
            call_command("verify_ledger")
        err = capsys.readouterr().err
        assert "invariant 1" in err
        if connection.vendor == "postgresql":
            assert "invariant 2" in err

"""Adjustments (SPEC §5): posted at once up to the threshold, else approved by a second operator."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.ledger.models import Account, Adjustment, ScoreRecord
from apps.ledger.selectors.ledger import ledger_problems
from apps.ledger.services.adjustments import (
    AdjustmentForbidden,
    AdjustmentRefused,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
)
from tests.factories import UserFactory
from tests.ledger.conftest import APPROVE, REQUEST, give_points, make_operator

pytestmark = pytest.mark.django_db


def request(user, amount, actor, *, reason="goodwill", token=None):
    return adjustment_request(user_id=user.pk, amount=amount, reason=reason, request_token=token or uuid.uuid4(), actor=actor)


def balance(user) -> int:
    return Account.objects.filter(user=user).values_list("balance", flat=True).first() or 0


class TestThreshold:
    def test_at_the_threshold_a_credit_is_posted_at_once(self, alice, requester, threshold):
        result = request(alice, threshold, requester)
        adjustment = result.adjustment
        assert result.created
        assert adjustment.status == Adjustment.Status.POSTED
        assert adjustment.decided_by == requester and adjustment.decided_at is not None
        entry = adjustment.entry
        assert (entry.kind, entry.trade_amount, entry.amount_before_trade, entry.amount_after_trade) == (
            "adjustment",
            threshold,
            0,
            threshold,
        )
        assert entry.business_type == "goodwill"
        assert balance(alice) == threshold

    def test_at_the_threshold_a_debit_is_posted_at_once(self, alice, requester, threshold):
        give_points(alice, 500)
        assert request(alice, -threshold, requester).adjustment.status == Adjustment.Status.POSTED
        assert balance(alice) == 500 - threshold

    @pytest.mark.parametrize("sign", [1, -1])
    def test_one_point_above_waits_for_approval_and_changes_nothing(self, alice, requester, threshold, sign):
        give_points(alice, 500)
        adjustment = request(alice, sign * (threshold + 1), requester).adjustment
        assert adjustment.status == Adjustment.Status.PENDING
        assert adjustment.entry is None and adjustment.decided_by is None
        assert balance(alice) == 500
        assert not ScoreRecord.objects.filter(kind="adjustment").exists()

    def test_a_zero_threshold_sends_every_adjustment_for_approval(self, alice, requester, settings):
        settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE = 0
        assert request(alice, 1, requester).adjustment.status == Adjustment.Status.PENDING


class TestSplittingDoesNotDodgeApproval:
    """The threshold is on one requester's adjustments to one user within 24 hours (G9), not on each one."""

    def test_the_adjustment_that_takes_the_sum_over_waits(self, alice, requester, threshold):
        give_points(alice, 500)
        first, second = request(alice, 40, requester).adjustment, request(alice, -40, requester).adjustment
        assert (first.status, second.status) == (Adjustment.Status.POSTED, Adjustment.Status.POSTED)
        third = request(alice, 40, requester).adjustment  # 40 + |-40| + 40 = 120 > 100
        assert third.status == Adjustment.Status.PENDING and third.entry is None
        assert balance(alice) == 500
        # Pending ones count too: a fourth small one waits as well.
        assert request(alice, 1, requester).adjustment.status == Adjustment.Status.PENDING

    def test_up_to_the_threshold_in_total_is_posted_at_once(self, alice, requester, threshold):
        assert request(alice, 60, requester).adjustment.status == Adjustment.Status.POSTED
        assert request(alice, threshold - 60, requester).adjustment.status == Adjustment.Status.POSTED

    def test_the_requester_still_cannot_approve_the_one_that_waits(self, alice, requester, approver, threshold):
        for _ in range(2):
            request(alice, 40, requester)
        third = request(alice, 40, requester).adjustment
        with pytest.raises(AdjustmentForbidden, match="another operator"):
            adjustment_approve(adjustment=third, actor=requester)
        assert adjustment_approve(adjustment=third, actor=approver).status == Adjustment.Status.POSTED
        assert balance(alice) == 120

    def test_another_requester_or_another_user_is_counted_apart(self, alice, requester, approver, threshold):
        bob = UserFactory(username="bob")
        for _ in range(2):
            request(alice, 40, requester)
        assert request(alice, 40, approver).adjustment.status == Adjustment.Status.POSTED
        assert request(bob, 40, requester).adjustment.status == Adjustment.Status.POSTED
        assert request(bob, 40, requester).adjustment.status == Adjustment.Status.POSTED

    def test_older_than_24_hours_and_rejected_ones_do_not_count(self, alice, requester, approver, threshold):
        for _ in range(2):
            request(alice, 40, requester)
        Adjustment.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
        assert request(alice, 40, requester).adjustment.status == Adjustment.Status.POSTED
        assert request(alice, 40, requester).adjustment.status == Adjustment.Status.POSTED
        waiting = request(alice, 40, requester).adjustment
        assert waiting.status == Adjustment.Status.PENDING
        adjustment_reject(adjustment=waiting, actor=approver)
        assert request(alice, 20, requester).adjustment.status == Adjustment.Status.POSTED


class TestApproval:
    def test_a_second_operator_approves_and_the_entry_is_posted(self, alice, requester, approver, threshold):
        pending = request(alice, 250, requester).adjustment
        approved = adjustment_approve(adjustment=pending, actor=approver)
        assert approved.status == Adjustment.Status.POSTED
        assert approved.decided_by == approver and approved.requested_by == requester
        assert approved.entry.trade_amount == 250 and approved.entry.kind == "adjustment"
        assert balance(alice) == 250
        assert [h.history_user for h in approved.history.order_by("history_id")] == [requester, approver]

    def test_the_requester_can_neither_approve_nor_reject(self, alice, requester, threshold):
        pending = request(alice, 250, requester).adjustment
        with pytest.raises(AdjustmentForbidden, match="another operator"):
            adjustment_approve(adjustment=pending, actor=requester)
        with pytest.raises(AdjustmentForbidden):
            adjustment_reject(adjustment=pending, actor=requester)
        pending.refresh_from_db()
        assert pending.status == Adjustment.Status.PENDING and balance(alice) == 0

    def test_rejected_posts_nothing_and_cannot_be_approved_later(self, alice, requester, approver, threshold):
        pending = request(alice, 250, requester).adjustment
        rejected = adjustment_reject(adjustment=pending, actor=approver)
        assert rejected.status == Adjustment.Status.REJECTED and rejected.decided_by == approver
        with pytest.raises(AdjustmentRefused, match="already rejected"):
            adjustment_approve(adjustment=pending, actor=approver)
        assert rejected.entry is None and balance(alice) == 0
        assert not ScoreRecord.objects.exists()

    def test_approving_twice_posts_once(self, alice, requester, approver, threshold):
        pending = request(alice, 250, requester).adjustment
        adjustment_approve(adjustment=pending, actor=approver)
        third = make_operator("quinn", APPROVE)
        with pytest.raises(AdjustmentRefused, match="already posted"):
            adjustment_approve(adjustment=pending, actor=third)
        assert ScoreRecord.objects.filter(kind="adjustment").count() == 1
        assert balance(alice) == 250

    def test_approving_a_debit_that_no_longer_fits_is_refused_and_stays_pending(self, alice, requester, approver, threshold):
        give_points(alice, 300)
        pending = request(alice, -250, requester).adjustment
        request(alice, -100, approver)  # another operator's, posted at once: 200 left, the pending -250 no longer fits
        with pytest.raises(AdjustmentRefused, match="below zero"):
            adjustment_approve(adjustment=pending, actor=approver)
        pending.refresh_from_db()
        assert pending.status == Adjustment.Status.PENDING and pending.entry is None
        assert balance(alice) == 200

    def test_deciding_needs_the_approve_permission(self, alice, requester, threshold):
        pending = request(alice, 250, requester).adjustment
        clerk = make_operator("clerk", REQUEST)
        with pytest.raises(AdjustmentForbidden, match="permission"):
            adjustment_approve(adjustment=pending, actor=clerk)
        with pytest.raises(AdjustmentForbidden, match="permission"):
            adjustment_reject(adjustment=pending, actor=clerk)

    def test_nobody_decides_an_adjustment_of_their_own_account(self, requester, approver, threshold):
        pending = request(approver, 250, requester).adjustment
        with pytest.raises(AdjustmentForbidden, match="your own account"):
            adjustment_approve(adjustment=pending, actor=approver)


class TestRequest:
    def test_the_same_form_submitted_twice_posts_once(self, alice, requester, threshold):
        token = uuid.uuid4()
        first = request(alice, 50, requester, token=token)
        again = request(alice, 50, requester, token=token)
        assert first.created and not again.created
        assert again.adjustment.pk == first.adjustment.pk
        assert Adjustment.objects.count() == 1
        assert ScoreRecord.objects.count() == 1 and balance(alice) == 50

    def test_a_debit_below_zero_is_refused_and_nothing_changes(self, alice, requester, threshold):
        give_points(alice, 30)
        with pytest.raises(AdjustmentRefused, match=r"below zero \(balance 30, adjustment -31\)"):
            request(alice, -31, requester)
        with pytest.raises(AdjustmentRefused, match="below zero"):
            request(alice, -500, requester)  # above the threshold: refused now, not left pending
        assert not Adjustment.objects.exists()
        assert ScoreRecord.objects.count() == 1 and balance(alice) == 30

    def test_a_debit_to_exactly_zero_is_allowed(self, alice, requester, threshold):
        give_points(alice, 30)
        request(alice, -30, requester)
        assert balance(alice) == 0

    def test_a_user_without_an_account_can_be_credited_but_not_debited(self, alice, requester, threshold):
        with pytest.raises(AdjustmentRefused):
            request(alice, -1, requester)
        assert not Account.objects.filter(user=alice).exists()
        request(alice, 5, requester)
        assert balance(alice) == 5

    @pytest.mark.parametrize(
        ("amount", "reason", "message"),
        [(0, "x", "non-zero"), (10**12, "x", "at most"), (5, "   ", "reason"), (5, "x" * 501, "too long")],
    )
    def test_bad_input_is_refused(self, alice, requester, amount, reason, message):
        with pytest.raises(AdjustmentRefused, match=message):
            request(alice, amount, requester, reason=reason)
        assert not Adjustment.objects.exists()

    def test_requesting_needs_the_add_permission(self, alice, threshold):
        viewer = make_operator("viewer")
        with pytest.raises(AdjustmentForbidden, match="permission"):
            request(alice, 5, viewer)

    def test_operators_cannot_adjust_their_own_balance(self, requester, threshold):
        with pytest.raises(AdjustmentForbidden, match="own balance"):
            request(requester, 5, requester)


class TestLedgerStaysConsistent:
    def test_verify_ledger_is_clean_after_adjustments(self, alice, requester, approver, threshold, capsys):
        give_points(alice, 40)
        request(alice, -40, requester)
        request(alice, 7, requester)
        adjustment_approve(adjustment=request(alice, 400, requester).adjustment, actor=approver)
        adjustment_reject(adjustment=request(alice, -300, requester).adjustment, actor=approver)
        assert ledger_problems() == []
        call_command("verify_ledger")
        assert "Ledger OK" in capsys.readouterr().out
        assert balance(alice) == 407

    def test_verify_ledger_names_a_posted_adjustment_without_its_entry(self, alice, requester, threshold):
        request(alice, 250, requester)  # pending
        Adjustment.objects.update(status=Adjustment.Status.POSTED)  # what a bad hand-made fix would do
        problems = ledger_problems()
        assert [p.invariant for p in problems] == [5]
        assert "does not match its entry" in str(problems[0])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    """Two operators (or two submits) at the same instant, each in its own database session."""

    @staticmethod
    def race(*calls):
        barrier = threading.Barrier(len(calls))
        outcomes: list = [None] * len(calls)

        def run(index, call):
            try:
                barrier.wait()
                outcomes[index] = call()
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
                outcomes[index] = exc
            finally:
                connection.close()

        threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        return outcomes

    def test_two_approvals_at_once_post_once(self, alice, requester, approver, threshold):
        pending = request(alice, 250, requester).adjustment
        third = make_operator("quinn", APPROVE)
        outcomes = self.race(
            lambda: adjustment_approve(adjustment=pending, actor=approver),
            lambda: adjustment_approve(adjustment=pending, actor=third),
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["Adjustment", "AdjustmentRefused"]
        assert ScoreRecord.objects.filter(kind="adjustment").count() == 1
        assert balance(alice) == 250
        assert ledger_problems() == []

    def test_the_same_form_submitted_twice_at_once_posts_once(self, alice, requester, threshold):
        token = uuid.uuid4()
        outcomes = self.race(*[lambda: request(alice, 60, requester, token=token)] * 2)
        assert sorted(o.created for o in outcomes) == [False, True]
        assert Adjustment.objects.count() == 1 and ScoreRecord.objects.count() == 1
        assert balance(alice) == 60

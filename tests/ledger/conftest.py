"""Operators and balances for the ledger's tests."""

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction

from apps.ledger.models import ScoreRecord
from apps.ledger.services.entries import account_lock, ledger_post_entry
from tests.factories import UserFactory

REQUEST = "add_adjustment"
APPROVE = "approve_adjustment"
LEDGER_VIEW = ("view_account", "view_scorerecord", "view_adjustment")


def make_operator(username: str, *codenames: str):
    """A staff user holding exactly these ledger permissions (plus viewing the ledger)."""
    user = UserFactory(username=username, is_staff=True)
    wanted = set(codenames) | set(LEDGER_VIEW)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ledger", codename__in=wanted))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: permissions are cached per instance


def give_points(user, amount: int) -> ScoreRecord:
    """Post an award, as the pipeline would, so the user has a balance to debit."""
    with transaction.atomic():
        account = account_lock(user_id=user.pk)
        return ledger_post_entry(account=account, amount=amount, kind="award", idempotency_key=f"test:{uuid.uuid4()}")


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def requester(db):
    return make_operator("olga", REQUEST, APPROVE)


@pytest.fixture
def approver(db):
    return make_operator("pavel", REQUEST, APPROVE)


@pytest.fixture
def threshold(settings):
    settings.JIFEN_ADJUSTMENT_APPROVAL_ABOVE = 100
    return 100

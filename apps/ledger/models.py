"""The points ledger: one Account per user and its append-only ScoreRecords."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.clock import local_text
from apps.core.points import POINTS_MAX, points_at_least_minus_max, points_at_most_max


class LedgerImmutableError(Exception):
    """Raised on any attempt to change or remove a ledger entry."""


class Account(models.Model):
    """The seed's profile: a user's points balance.

    `balance` and `last_seq` change only in `ledger_post_entry`, under this row's lock, together
    with the entry that explains the change.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="points_account", verbose_name=_("user")
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        # Serves the admin's below-zero filter (a range scan on few rows) and its balance ordering,
        # ties broken by id in the same direction (apps.ledger.changelists.IndexOrderChangeList).
        indexes = [models.Index(fields=["balance", "id"], name="account_balance_id")]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance})"


class ScoreRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise LedgerImmutableError("Ledger entries are never updated; post a correcting entry instead.")

    def delete(self):
        raise LedgerImmutableError("Ledger entries are never deleted; post a correcting entry instead.")

    update.queryset_only = True
    delete.queryset_only = True


class ScoreRecord(models.Model):
    """积分记录: one append-only ledger entry."""

    class Kind(models.TextChoices):
        AWARD = "award", _("award")
        ADJUSTMENT = "adjustment", _("adjustment")
        REVERSAL = "reversal", _("reversal")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="score_records", verbose_name=_("user")
    )
    serial_number = models.CharField(_("serial number"), max_length=40, unique=True)
    seq = models.PositiveBigIntegerField(_("sequence"))
    trade_amount = models.BigIntegerField(_("amount"))
    amount_before_trade = models.BigIntegerField(_("balance before"))
    amount_after_trade = models.BigIntegerField(_("balance after"))
    business_type = models.CharField(_("for"), max_length=255, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    score_info = models.ForeignKey(
        "rules.UserScoreInfo", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("progress")
    )
    # Indexed by scorerecord_rule_recent (rule first), which also serves the foreign key.
    rule = models.ForeignKey(
        "rules.ScoreRule",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("rule"),
    )
    completion = models.ForeignKey(
        "tasks.UserTaskRecord",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="score_records",
        verbose_name=_("task completion"),
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by", verbose_name=_("reverses")
    )
    location = models.CharField(_("client address"), max_length=64, blank=True)
    country = models.CharField(_("country"), max_length=8, blank=True)
    lang_type = models.CharField(_("language"), max_length=35, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = ScoreRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "seq"], name="scorerecord_seq_unique"),
            models.CheckConstraint(
                condition=Q(amount_after_trade=F("amount_before_trade") + F("trade_amount")),
                name="scorerecord_after_is_before_plus_amount",
            ),
        ]
        indexes = [
            # The admin's newest-first list and its date drill-down. Entries posted together share
            # created_at, so the id is in the index too: the order needs no sort at all.
            models.Index(fields=["created_at", "id"], name="scorerecord_created"),
            models.Index(fields=["user", "-created_at"], name="scorerecord_user_recent"),
            # The admin's kind filter. Awards are most of the ledger and the created_at index finds
            # them at once, so the index holds only the rare kinds and award inserts never touch it.
            models.Index(fields=["kind", "-created_at", "-id"], condition=~Q(kind="award"), name="scorerecord_rare_kind_recent"),
            # A rule's live figures (awards and points today and in total) and the rule filter. On
            # PostgreSQL the figures are read from the index alone; it replaces the plain rule index.
            models.Index(fields=["rule", "created_at"], include=["kind", "trade_amount"], name="scorerecord_rule_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.serial_number} {self.trade_amount:+d}"

    def save(self, *args, **kwargs) -> None:
        # Append-only: an entry is written once, by ledger_post_entry, and never again.
        if not self._state.adding:
            raise LedgerImmutableError("Ledger entries are never updated; post a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerImmutableError("Ledger entries are never deleted; post a correcting entry instead.")


class Adjustment(models.Model):
    """An operator's manual credit or debit, posted at once or after a second operator approves."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending approval")
        POSTED = "posted", _("posted")
        REJECTED = "rejected", _("rejected")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjustments", verbose_name=_("user")
    )
    amount = models.BigIntegerField(
        _("amount"),
        help_text=_("Positive credits, negative debits."),
        validators=[points_at_least_minus_max, points_at_most_max],
    )
    reason = models.CharField(_("reason"), max_length=500)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
        help_text=_("Who approved or rejected it; the requester for an adjustment posted at once."),
    )
    entry = models.OneToOneField(
        ScoreRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjustment",
        verbose_name=_("ledger entry"),
    )
    # The form carries this token, so submitting the same form twice creates one adjustment.
    request_token = models.UUIDField(_("request token"), unique=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("adjustment")
        verbose_name_plural = _("adjustments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="adjustment_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(amount__gte=-POINTS_MAX, amount__lte=POINTS_MAX), name="adjustment_amount_bounded"
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="adjustment_recent"),
            models.Index(fields=["status", "-created_at"], name="adjustment_status_recent"),
        ]
        # Requesting is the model's `add` permission; deciding another operator's request above
        # the approval threshold is this one. Nobody may decide their own request.
        permissions = [("approve_adjustment", _("Can approve or reject adjustments"))]

    def __str__(self) -> str:
        return _("%(amount)+d for %(user)s (%(status)s)") % {"amount": self.amount, "user": self.user, "status": self.status}


class LeaderboardTotal(models.Model):
    """A user's points on one leaderboard in one period, kept with the ledger entries that change it.

    A leaderboard (`board`) is one rule's, by its id, or the overall one (0). Awards count, net of
    their reversals, in the periods of the completion that earned them (SPEC-level decision, see
    docs/operators.md, Leaderboards); adjustments do not count. One row per (board, period
    kind, period start, user), changed only by `leaderboard_totals_add` in the transaction of the
    entries, under the user's account lock, or rebuilt from the ledger by `leaderboards_rebuild`.
    """

    class Period(models.TextChoices):
        DAY = "day", _("day")
        WEEK = "week", _("week")
        MONTH = "month", _("month")
        YEAR = "year", _("year")
        ALL = "all", _("all time")

    # Not a foreign key: 0 is the overall board, and rules are never deleted (entries protect them).
    board = models.PositiveIntegerField(_("leaderboard"), help_text=_("The rule's id, or 0 for all rules together."))
    period = models.CharField(_("period"), max_length=5, choices=Period.choices)
    period_start = models.DateTimeField(_("period start"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False, verbose_name=_("user")
    )
    points = models.BigIntegerField(_("points"), default=0)
    # When the total last changed (the latest counting entry's created_at): equal totals are
    # ranked alike and listed in the order their users reached them, then by user id.
    reached_at = models.DateTimeField(_("reached at"))

    class Meta:
        verbose_name = _("leaderboard total")
        verbose_name_plural = _("leaderboards")
        constraints = [
            # The upsert's conflict target.
            models.UniqueConstraint(fields=["board", "period", "period_start", "user"], name="leaderboardtotal_key"),
        ]
        indexes = [
            # A page of a board is a range of this index in display order, and a user's rank is a
            # count of the range above their total: both read the index alone on PostgreSQL.
            models.Index(
                fields=["board", "period", "period_start", "-points", "reached_at", "user"], name="leaderboardtotal_rank"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.board}/{self.period}/{local_text(self.period_start, '%Y-%m-%d')} {self.user_id}: {self.points}"

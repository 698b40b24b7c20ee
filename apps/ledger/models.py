"""The points ledger: one Account per user and its append-only ScoreRecords."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.clock import local_text
from apps.core.points import POINTS_MAX, points_at_least_minus_max, points_at_most_max


class LedgerImmutableError(Exception):
    """Raised on any attempt to change or remove a ledger entry."""


class PointType(models.Model):
    """A kind of points (SPEC §11): `coins` 积分 to spend, `exp` 经验 to rank, each with its own expiry.

    One type is the default (created by a migration, never changed to another): what every rule,
    sheet row, adjustment and API call that names no type uses, so what existed before point types
    keeps working. A type's expiry policy decides the expiry of each lot credited from then on;
    lots already credited keep theirs.
    """

    class Expiry(models.TextChoices):
        NEVER = "never", _("never")
        ROLLING = "rolling", _("N months after earning")
        YEAR_END = "year_end", _("at the end of the year after earning")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    spendable = models.BooleanField(
        _("spendable"), default=True, help_text=_("Can be spent in the shop and held by other systems.")
    )
    expiry = models.CharField(_("expiry"), max_length=8, choices=Expiry.choices, default=Expiry.NEVER)
    expiry_months = models.PositiveSmallIntegerField(
        _("months until expiry"), null=True, blank=True, help_text=_("For “N months after earning” only: N, from 1 to 120.")
    )
    is_default = models.BooleanField(_("default"), default=False, editable=False)
    adjustment_approval_above = models.PositiveIntegerField(
        _("adjustments approved above"),
        null=True,
        blank=True,
        help_text=_(
            "An operator's adjustments of this type to one user are posted at once while they add up to at most this "
            "many points within 24 hours; beyond, a second operator must approve. Empty: the site's setting "
            "(JIFEN_ADJUSTMENT_APPROVAL_ABOVE)."
        ),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0, help_text=_("Where it is listed: lowest first."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("point type")
        verbose_name_plural = _("point types")
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="pointtype_one_default"),
            models.CheckConstraint(
                condition=Q(expiry="rolling", expiry_months__gte=1, expiry_months__lte=120)
                | (~Q(expiry="rolling") & Q(expiry_months__isnull=True)),
                name="pointtype_expiry_months",
            ),
        ]

    def __str__(self) -> str:
        # A name in the catalogue (the demo's, apps/community/demo_texts.py) reads in the page's language.
        return gettext(self.name) if self.name else self.code

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        if self.expiry == self.Expiry.ROLLING and not (self.expiry_months and 1 <= self.expiry_months <= 120):
            raise ValidationError({"expiry_months": _("Say after how many months the points expire (1 to 120).")})
        if self.expiry != self.Expiry.ROLLING:
            self.expiry_months = None

    @property
    def expires(self) -> bool:
        return self.expiry != self.Expiry.NEVER


class Level(models.Model):
    """等级: reached when a user's lifetime earned points of the type reach `threshold` (SPEC §11).

    Earned = awards less their reversals, plus credit adjustments (`Account.earned_total`), so
    spending and expiry never demote anyone.
    """

    # A type's levels are part of it: a type nothing uses any more may be deleted, its levels with it.
    point_type = models.ForeignKey(PointType, on_delete=models.CASCADE, related_name="levels", verbose_name=_("point type"))
    name = models.CharField(_("name"), max_length=64)
    threshold = models.BigIntegerField(
        _("threshold"), validators=[points_at_most_max], help_text=_("Lifetime earned points needed: 0 for the first level.")
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("level")
        verbose_name_plural = _("levels")
        ordering = ["point_type", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["point_type", "threshold"], name="level_threshold_unique"),
            models.UniqueConstraint(fields=["point_type", "name"], name="level_name_unique"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="level_threshold_not_negative"),
        ]

    def __str__(self) -> str:
        return gettext(self.name) if self.name else ""


class Account(models.Model):
    """A user's balance of one point type (SPEC §5, §11).

    The account of the default type is the user's *main* account, created first, and its row lock
    is the user's lock: every write that concerns the user (completions, progress, any type's
    entries, lots, redemptions, holds) takes it first (`account_lock`, `accounts_lock`), so the
    user's other accounts need no lock of their own. `balance`, `last_seq` and `earned_total`
    change only in the ledger's posting, together with the entry that explains the change.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="points_accounts", verbose_name=_("user")
    )
    point_type = models.ForeignKey(PointType, on_delete=models.PROTECT, related_name="+", verbose_name=_("point type"))
    earned_total = models.BigIntegerField(
        _("earned in all"),
        default=0,
        editable=False,
        help_text=_("Awards less their reversals, plus credit adjustments: what levels count."),
    )
    balance = models.BigIntegerField(_("balance"), default=0)
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [models.UniqueConstraint(fields=["user", "point_type"], name="account_user_type_unique")]
        # Serves the admin's below-zero filter (a range scan on few rows) and its balance ordering,
        # ties broken by id in the same direction (apps.ledger.changelists.IndexOrderChangeList).
        indexes = [models.Index(fields=["balance", "id"], name="account_balance_id")]

    def __str__(self) -> str:
        return f"{self.user} ({self.balance} {self.point_type.code})"


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
        SPEND = "spend", _("spend")
        REFUND = "refund", _("refund")
        EXPIRY = "expiry", _("expiry")

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="score_records", verbose_name=_("user")
    )
    # The account's type, copied so that lists filter by type without a join. No database foreign
    # key: the account's own is the constraint (a check per inserted row would cost every award),
    # and verify_ledger checks that the copy equals the account's type.
    point_type = models.ForeignKey(
        PointType,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
        verbose_name=_("point type"),
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
    point_type = models.ForeignKey(
        PointType,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("point type"),
        null=True,
        blank=True,
        help_text=_("Empty: the default type."),
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

    # The overall board (0) is one per type; a rule's board has its rule's type. Derived data,
    # rebuilt from the ledger: no database foreign key (a check per upserted row).
    point_type = models.ForeignKey(
        PointType,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
        verbose_name=_("point type"),
    )
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
            models.UniqueConstraint(
                fields=["point_type", "board", "period", "period_start", "user"], name="leaderboardtotal_key"
            ),
        ]
        indexes = [
            # A page of a board is a range of this index in display order, and a user's rank is a
            # count of the range above their total: both read the index alone on PostgreSQL.
            models.Index(
                fields=["point_type", "board", "period", "period_start", "-points", "reached_at", "user"],
                name="leaderboardtotal_rank",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.board}/{self.period}/{local_text(self.period_start, '%Y-%m-%d')} {self.user_id}: {self.points}"


class PointLot(models.Model):
    """Points credited together, spent and expired oldest first (SPEC §11).

    Every credit (award, credit adjustment) is a lot with the expiry its type's policy gives it;
    every debit takes from the account's live lots, soonest to expire first (a reversal takes its
    own award's lot first), and records what it took (`LotTake`) so that a refund gives the same
    lots back. `remaining` changes only under the user's account lock. While the balance is not
    below zero the remainders sum to it (invariant 6); below zero every remainder is 0.
    """

    # Indexed by pointlot_live (account first) for the live lots, all that is ever looked up by account:
    # a lot's update (a debit, an expiry) then writes one index entry less (SPEC P9).
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots", db_index=False, verbose_name=_("account"))
    entry = models.ForeignKey(
        ScoreRecord,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("credited by"),
    )
    earned_at = models.DateTimeField(_("earned at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, help_text=_("Empty: never."))
    amount = models.BigIntegerField(_("amount"))
    remaining = models.BigIntegerField(_("remaining"))

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("amount")), name="pointlot_remaining_in_range"
            ),
        ]
        indexes = [
            # A debit's oldest-first walk over one account's live lots.
            models.Index(fields=["account", "expires_at", "earned_at", "id"], condition=Q(remaining__gt=0), name="pointlot_live"),
            # The expiry job: live lots that reached their end, by time.
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0, expires_at__isnull=False), name="pointlot_due"),
            # A reversal's own award's lot, while it has points left.
            models.Index(fields=["entry"], condition=Q(remaining__gt=0), name="pointlot_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.amount} until {self.expires_at or 'never'}"


class LotTake(models.Model):
    """What one debit took from one lot: a refund of that debit gives it back to the same lot.

    Every debit records its takes except an expiry, which is never given back.
    """

    entry = models.ForeignKey(ScoreRecord, on_delete=models.PROTECT, related_name="+", verbose_name=_("debit"))
    lot = models.ForeignKey(PointLot, on_delete=models.PROTECT, related_name="takes", db_index=False, verbose_name=_("lot"))
    amount = models.BigIntegerField(_("amount"))

    class Meta:
        verbose_name = _("lot take")
        verbose_name_plural = _("lot takes")
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="lottake_amount_positive")]

    def __str__(self) -> str:
        return f"{self.amount} from lot {self.lot_id}"

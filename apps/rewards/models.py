"""What points buy (SPEC §11): the catalogue (`RewardItem`), redemptions, and holds placed by other systems."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator
from django.db import connection, models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.lifecycle import frozen_field_errors, status_change_error
from apps.core.points import POINTS_POSITIVE, WholeNumberField, points_at_most_max
from apps.core.review import ReviewableModel
from apps.core.soft_delete import SoftDeleteModel
from apps.ledger.point_types import default_point_type_id

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp"]


class RewardItem(ReviewableModel, SoftDeleteModel):
    """One thing in the shop: what it costs, how many there are, who may have it and when.

    Authored like a rule: a draft, reviewed, activated by an approver, retired; cost, point type
    and minimum level freeze once active (a new price is a new item: copy as draft). `redeemed_count`
    belongs to the workers: it moves only by conditional UPDATE under the row lock, never by an
    operator's save, so the stock holds with any number of users racing (G12, G13).
    """

    class Status(models.TextChoices):
        EDITING = "editing", _("editing")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    class Period(models.TextChoices):
        DAY = "day", _("day")
        WEEK = "week", _("week")
        MONTH = "month", _("month")
        YEAR = "year", _("year")
        NONE = "none", _("none (lifetime)")

    FROZEN_FIELDS = ("cost", "point_type", "min_level")
    STATUS_ORDER = (Status.EDITING, Status.ACTIVE, Status.RETIRED)
    STATUS_PERMISSIONS = {Status.ACTIVE: "rewards.activate_rewarditem", Status.RETIRED: "rewards.retire_rewarditem"}

    code = models.SlugField(_("item code"), max_length=64)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), max_length=2000, blank=True)
    image = models.FileField(
        _("image"),
        upload_to="rewards/",
        blank=True,
        validators=[FileExtensionValidator(IMAGE_EXTENSIONS)],
        help_text=_("PNG, JPEG, GIF or WebP, shown in the shop."),
    )
    cost = WholeNumberField(_("cost"), least=1, message=POINTS_POSITIVE, validators=[points_at_most_max])
    point_type = models.ForeignKey(
        "ledger.PointType",
        on_delete=models.PROTECT,
        related_name="+",
        default=default_point_type_id,
        verbose_name=_("point type"),
        help_text=_("Which points pay for it; the type must be spendable."),
    )
    stock = models.PositiveIntegerField(
        _("stock"),
        null=True,
        blank=True,
        help_text=_("How many there are in all, those already redeemed included: raise it to restock. Empty: unlimited."),
    )
    per_user_limit = WholeNumberField(
        _("limit per user"),
        least=1,
        message=_("A limit per user must be at least 1; leave it empty for no limit."),
        null=True,
        blank=True,
        help_text=_("Redemptions per user in each period. Empty: no limit."),
    )
    limit_period = models.CharField(_("limit period"), max_length=8, choices=Period.choices, default=Period.NONE)
    start_time = models.DateTimeField(_("available from"), null=True, blank=True)
    end_time = models.DateTimeField(_("available until"), null=True, blank=True)
    min_level = models.ForeignKey(
        "ledger.Level",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("minimum level"),
        help_text=_("Empty: anyone may redeem it."),
    )
    position = models.PositiveIntegerField(_("position"), default=0, help_text=_("Shop order: lowest first."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.EDITING)
    # Taken stock: redemptions not cancelled. Workers' field (see the class docstring).
    redeemed_count = models.PositiveIntegerField(_("redeemed"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["redeemed_count"])

    class Meta(SoftDeleteModel.Meta):
        verbose_name = _("reward item")
        verbose_name_plural = _("reward items")
        ordering = ["position", "id"]
        permissions = [
            ("activate_rewarditem", _("Can activate reward items")),
            ("retire_rewarditem", _("Can retire reward items")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(deleted_at__isnull=True), name="rewarditem_code_unique_live"),
            models.CheckConstraint(condition=Q(cost__gt=0), name="rewarditem_cost_positive"),
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(redeemed_count__lte=F("stock")), name="rewarditem_no_oversell"
            ),
            models.CheckConstraint(
                condition=Q(start_time__isnull=True) | Q(end_time__isnull=True) | Q(end_time__gt=F("start_time")),
                name="rewarditem_window_ordered",
            ),
        ]
        indexes = [models.Index(fields=["status", "position"], name="rewarditem_shop")]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        """Every rule of an item that a form or a sheet can break, each with a message naming its field.

        The stock is checked against the stored `redeemed_count`, read under the row lock when the
        save is in a transaction (the admin's change form, a sheet, the services): a redemption
        then waits for the operator's save, so lowering the stock can never undercut what was
        taken meanwhile (the database's check would refuse it with no message).
        """
        from apps.ledger.models import Level, PointType

        errors: dict[str, str] = {}
        if self.code and type(self).objects.filter(code=self.code).exclude(pk=self.pk).exists():
            # Said here, on the code: the database's constraint would say only its own name.
            errors["code"] = _("An item with the code %(code)s exists already: choose another code.") % {"code": self.code}
        limit = self._meta.get_field("description").max_length
        if len(self.description or "") > limit:
            # A TextField's max_length binds only its form field: a sheet's cell is checked here.
            errors["description"] = _("Ensure this value has at most %(limit)d characters (it has %(length)d).") % {
                "limit": limit,
                "length": len(self.description),
            }
        point_type = PointType.objects.filter(pk=self.point_type_id).first() if self.point_type_id else None
        if point_type is not None and not point_type.spendable:
            errors["point_type"] = _("%(type)s cannot be spent: choose a spendable point type.") % {"type": point_type}
        if self.min_level_id is not None and not Level.objects.filter(pk=self.min_level_id).exists():
            errors["min_level"] = _("That level no longer exists: choose another, or none.")
        if self.per_user_limit is None and self.limit_period != self.Period.NONE:
            errors["limit_period"] = _(
                "A limit period needs a limit per user: enter the limit, or set the period back to none (lifetime)."
            )
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = _("The end of the window must be after its start.")
        if self.stock is not None and self.pk is not None:
            stored = type(self).all_objects.filter(pk=self.pk)
            if connection.in_atomic_block:
                stored = stored.select_for_update()
            redeemed = stored.values_list("redeemed_count", flat=True).first() or 0
            if self.stock < redeemed:
                errors["stock"] = _(
                    "%(count)s have been redeemed already: the stock cannot be less (it counts what was taken too)."
                ) % {"count": redeemed}
        errors.update(frozen_field_errors(self, frozen=self.FROZEN_FIELDS, draft_status=self.Status.EDITING))
        status_error = status_change_error(self, order=self.STATUS_ORDER)
        if status_error:
            errors["status"] = status_error
        if errors:
            raise ValidationError(errors)


class Redemption(models.Model):
    """A user's redemption of an item: the points are spent at once; an operator fulfils or cancels (refund)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        FULFILLED = "fulfilled", _("fulfilled")
        CANCELLED = "cancelled", _("cancelled")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("user")
    )
    item = models.ForeignKey(RewardItem, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("item"))
    point_type = models.ForeignKey("ledger.PointType", on_delete=models.PROTECT, related_name="+", verbose_name=_("point type"))
    cost = models.BigIntegerField(_("cost"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    # The client's key: the same key again returns this redemption and posts nothing.
    client_key = models.CharField(_("client key"), max_length=128)
    spend_entry = models.OneToOneField(
        "ledger.ScoreRecord", on_delete=models.PROTECT, related_name="+", verbose_name=_("spend entry")
    )
    refund_entry = models.OneToOneField(
        "ledger.ScoreRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("refund entry")
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("decided by")
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("redeemed at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at", "-id"]
        permissions = [("fulfil_redemption", _("Can fulfil or cancel redemptions"))]
        constraints = [
            models.UniqueConstraint(fields=["user", "client_key"], name="redemption_client_key_unique"),
            models.CheckConstraint(condition=Q(cost__gt=0), name="redemption_cost_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="redemption_queue"),
            models.Index(fields=["user", "item", "-created_at"], name="redemption_user_item"),
        ]

    def __str__(self) -> str:
        return f"{self.item} for {self.user} ({self.status})"


class Hold(models.Model):
    """Points another system holds on a user's account (a checkout paying with points, SPEC §11).

    Placing it posts a `spend` at once; capturing keeps it; releasing, or reaching `expires_at`
    neither captured nor released, posts a `refund` that gives the same lots back.
    """

    class Status(models.TextChoices):
        HELD = "held", _("held")
        CAPTURED = "captured", _("captured")
        RELEASED = "released", _("released")
        EXPIRED = "expired", _("released at expiry")

    service_key = models.ForeignKey(
        "tracking.ServiceKey", on_delete=models.PROTECT, related_name="holds", verbose_name=_("service key")
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="holds", verbose_name=_("user"))
    point_type = models.ForeignKey("ledger.PointType", on_delete=models.PROTECT, related_name="+", verbose_name=_("point type"))
    amount = models.BigIntegerField(_("amount"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.HELD)
    # The calling system's key: the same key from the same service key returns this hold and posts nothing.
    client_key = models.CharField(_("client key"), max_length=128)
    expires_at = models.DateTimeField(_("expires at"))
    spend_entry = models.OneToOneField(
        "ledger.ScoreRecord", on_delete=models.PROTECT, related_name="+", verbose_name=_("spend entry")
    )
    refund_entry = models.OneToOneField(
        "ledger.ScoreRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("refund entry")
    )
    created_at = models.DateTimeField(_("placed at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("captured or released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("hold")
        verbose_name_plural = _("holds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["service_key", "client_key"], name="hold_client_key_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="held"), name="hold_due"),
            # The admin's list, newest first, and its status filter: a page without sorting the table.
            models.Index(fields=["-created_at", "-id"], name="hold_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="hold_status_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} of {self.user} ({self.status})"

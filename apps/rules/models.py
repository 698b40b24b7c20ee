"""What a task is worth (ScoreRule), per-object amounts, and per-user progress."""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.clock import period_start_text
from apps.core.lifecycle import frozen_field_errors, status_change_error
from apps.core.points import POINTS_MAX, POINTS_POSITIVE, WholeNumberField, points_at_most_max
from apps.core.review import ReviewableModel
from apps.core.soft_delete import SoftDeleteModel
from apps.ledger.point_types import default_point_type_id
from apps.tasks.models import TaskConfig

BADGE_IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp"]

POINTS_POSITIVE_OR_BADGE = _("Points must be a positive whole number (0 only for a rule that grants a badge).")

# A cooldown below a second is no protection; one above a year is almost surely a typo (days for seconds).
MIN_COOLDOWN = timedelta(seconds=1)
MAX_COOLDOWN = timedelta(days=366)


class ScoreRule(ReviewableModel, SoftDeleteModel):
    """积分规则表: how completions of one task type turn into points."""

    class Status(models.TextChoices):
        EDITING = "editing", _("editing")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")

    class Kind(models.TextChoices):
        COUNT = "count", _("count")
        STREAK = "streak", _("streak")

    class Period(models.TextChoices):
        DAY = "day", _("day")
        WEEK = "week", _("week")
        MONTH = "month", _("month")
        YEAR = "year", _("year")
        NONE = "none", _("none (lifetime)")

    class CooldownScope(models.TextChoices):
        USER = "user", _("per user")
        OBJECT = "object", _("per user and business object")

    # The fields that decide awards; once a rule is active they cannot change (SPEC §4).
    FROZEN_FIELDS = (
        "task_type",
        "kind",
        "statistical_period",
        "required_number_of_times",
        "points",
        "award_limit_per_period",
        "number_limit_all",
        "start_time",
        "can_repeat",
        "cooldown",
        "cooldown_scope",
        "point_type",
        "badge",
    )
    STATUS_ORDER = (Status.EDITING, Status.ACTIVE, Status.RETIRED)
    # Who may give a rule each status past the draft (SPEC §7 roles); checked by every path that sets one.
    STATUS_PERMISSIONS = {Status.ACTIVE: "rules.activate_scorerule", Status.RETIRED: "rules.retire_scorerule"}

    task_type = models.SlugField(_("task type"), max_length=64, db_index=True)
    score_type = models.SlugField(_("rule code"), max_length=64)
    score_desc = models.CharField(_("description"), max_length=255, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.COUNT)
    # At least 1, or 0 for a rule that only grants its badge (checked in clean() and by a constraint).
    points = WholeNumberField(
        _("points"),
        message=POINTS_POSITIVE_OR_BADGE,
        validators=[points_at_most_max],
        help_text=_("0 only for a rule that grants a badge and no points."),
    )
    point_type = models.ForeignKey(
        "ledger.PointType",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("point type"),
        default=default_point_type_id,
        help_text=_("Which points the rule awards."),
    )
    badge = models.ForeignKey(
        "rules.Badge",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name=_("badge"),
        help_text=_("Granted with the rule's award, once per user; taken back with the award. Empty: none."),
    )
    statistical_period = models.CharField(_("period"), max_length=8, choices=Period.choices, default=Period.DAY)
    required_number_of_times = WholeNumberField(
        _("required number of times (N)"), least=1, message=_("The required number of times (N) must be at least 1."), default=1
    )
    award_limit_per_period = WholeNumberField(
        _("award limit per period"),
        message=_("An award limit must be a whole number of 0 or more; leave it empty for no limit."),
        null=True,
        blank=True,
        help_text=_("Empty: no limit."),
    )
    number_limit_all = WholeNumberField(
        _("recipient cap"),
        message=_("A recipient cap must be a whole number of 0 or more; leave it empty for no cap."),
        null=True,
        blank=True,
        help_text=_("Most distinct users who may ever get this award. Empty: no cap."),
    )
    start_time = models.DateTimeField(_("start time"), null=True, blank=True)
    end_time = models.DateTimeField(_("end time"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.EDITING)
    can_repeat = models.BooleanField(
        _("can repeat"), default=True, help_text=_("Off: the same business object counts once per user and period.")
    )
    cooldown = models.DurationField(
        _("cooldown"),
        null=True,
        blank=True,
        help_text=_(
            "Least time between two counted completions of one user, by when they happened, e.g. 00:10:00 "
            "for ten minutes or 1 00:00:00 for a day. Empty: none."
        ),
    )
    cooldown_scope = models.CharField(
        _("cooldown scope"), max_length=8, choices=CooldownScope.choices, default=CooldownScope.USER
    )
    # Kept by a conditional UPDATE under the row lock, so the cap holds with any number of workers.
    recipients_count = models.PositiveIntegerField(_("recipients"), default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta(SoftDeleteModel.Meta):
        verbose_name = _("score rule")
        verbose_name_plural = _("score rules")
        ordering = ["id"]
        # The workflow's steps are roles of their own (rule approvers), apart from editing a draft.
        permissions = [
            ("activate_scorerule", _("Can activate score rules")),
            ("retire_scorerule", _("Can retire score rules")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["score_type"], condition=Q(deleted_at__isnull=True), name="scorerule_code_unique_live"
            ),
            models.CheckConstraint(condition=Q(points__gt=0) | Q(badge__isnull=False), name="scorerule_points_positive_or_badge"),
            models.CheckConstraint(condition=Q(points__lte=POINTS_MAX), name="scorerule_points_bounded"),
            models.CheckConstraint(condition=Q(required_number_of_times__gte=1), name="scorerule_n_at_least_one"),
            models.CheckConstraint(condition=~Q(kind="streak", statistical_period="none"), name="scorerule_streak_needs_period"),
            models.CheckConstraint(
                condition=Q(start_time__isnull=True) | Q(end_time__isnull=True) | Q(end_time__gt=F("start_time")),
                name="scorerule_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(number_limit_all__isnull=True) | Q(recipients_count__lte=F("number_limit_all")),
                name="scorerule_cap_respected",
            ),
            models.CheckConstraint(
                condition=Q(cooldown__isnull=True) | Q(cooldown__gte=MIN_COOLDOWN, cooldown__lte=MAX_COOLDOWN),
                name="scorerule_cooldown_sane",
            ),
        ]
        indexes = [models.Index(fields=["task_type", "status"], name="scorerule_task_status")]

    def __str__(self) -> str:
        return self.score_type

    def clean(self) -> None:
        errors: dict[str, str] = {}
        # N below its least is refused by its field (WholeNumberField), with the same message in
        # the admin form and the sheets; points may be 0 only with a badge.
        if self.points == 0 and self.badge_id is None:
            errors["points"] = POINTS_POSITIVE_OR_BADGE
        if self.kind == self.Kind.STREAK and self.statistical_period == self.Period.NONE:
            errors["statistical_period"] = _("A streak needs a period (day, week, month or year).")
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = _("The end time must be after the start time.")
        if self.cooldown is not None and not MIN_COOLDOWN <= self.cooldown <= MAX_COOLDOWN:
            errors["cooldown"] = _("A cooldown must be at least one second and at most 366 days; leave it empty for none.")
        if self.task_type and not TaskConfig.objects.filter(task_type=self.task_type).exists():
            errors["task_type"] = _("No task config has the task type %(type)s.") % {"type": self.task_type}
        errors.update(frozen_field_errors(self, frozen=self.FROZEN_FIELDS, draft_status=self.Status.EDITING))
        status_error = status_change_error(self, order=self.STATUS_ORDER)
        if status_error:
            errors["status"] = status_error
        if errors:
            raise ValidationError(errors)


def _badge_image_path(instance, filename: str) -> str:
    return f"badges/{filename}"


class Badge(models.Model):
    """A mark of achievement a rule grants (SPEC §12): earned once per user, taken back with the award that granted it."""

    code = models.SlugField(_("badge code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), max_length=1000, blank=True)
    image = models.FileField(
        _("image"),
        upload_to=_badge_image_path,
        blank=True,
        validators=[FileExtensionValidator(BADGE_IMAGE_EXTENSIONS)],
        help_text=_("PNG, JPEG, GIF or WebP, shown square (128 × 128 pixels or more)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("badge")
        verbose_name_plural = _("badges")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class BadgeAward(models.Model):
    """One award of a badge-granting rule: the user holds the badge while one of these is live.

    One row per awarded completion, like the ledger's award entries: a reversal or a re-score
    (SPEC §6) that takes an award back revokes its row, and the user keeps the badge only if another
    live row remains. So the badge follows the replay of the live completions, whatever the order
    in which they arrived. Written by scoring and the re-score under the user's account lock.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user"))
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="awards", verbose_name=_("badge"))
    rule = models.ForeignKey("rules.ScoreRule", on_delete=models.PROTECT, related_name="+", verbose_name=_("rule"))
    completion = models.ForeignKey(
        "tasks.UserTaskRecord", on_delete=models.PROTECT, related_name="+", db_constraint=False, verbose_name=_("completion")
    )
    earned_at = models.DateTimeField(_("earned at"), help_text=_("When the completion that earned it happened."))
    created_at = models.DateTimeField(_("created at"))
    revoked_at = models.DateTimeField(_("taken back at"), null=True, blank=True)

    class Meta:
        verbose_name = _("badge award")
        verbose_name_plural = _("badge awards")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "completion"], condition=Q(revoked_at__isnull=True), name="badgeaward_once_per_award"
            ),
        ]
        indexes = [models.Index(fields=["user", "badge"], condition=Q(revoked_at__isnull=True), name="badgeaward_held")]

    def __str__(self) -> str:
        return f"{self.badge_id} → {self.user_id}"


class ScoreRuleObjectPoints(models.Model):
    """A different amount for one business object (sharing this blog is worth more)."""

    rule = models.ForeignKey(ScoreRule, on_delete=models.CASCADE, related_name="object_points", verbose_name=_("rule"))
    business_id = models.CharField(_("business id"), max_length=255)
    points = WholeNumberField(_("points"), least=1, message=POINTS_POSITIVE, validators=[points_at_most_max])

    class Meta:
        verbose_name = _("per-object points")
        verbose_name_plural = _("per-object points")
        constraints = [
            models.UniqueConstraint(fields=["rule", "business_id"], name="objectpoints_unique"),
            models.CheckConstraint(condition=Q(points__gt=0), name="objectpoints_points_positive"),
            models.CheckConstraint(condition=Q(points__lte=POINTS_MAX), name="objectpoints_points_bounded"),
        ]

    def __str__(self) -> str:
        return f"{self.rule.score_type}[{self.business_id}] = {self.points}"

    def clean(self) -> None:
        # Per-object amounts decide awards like `points` does, so they freeze with the rule.
        rule = ScoreRule.all_objects.filter(pk=self.rule_id).first()
        if rule is not None and rule.status != ScoreRule.Status.EDITING:
            raise ValidationError(
                _("Per-object amounts of %(rule)s cannot change while it is %(status)s: copy it as a draft instead.")
                % {"rule": rule.score_type, "status": rule.get_status_display()}
            )


class UserScoreInfo(SoftDeleteModel):
    """用户积分信息表: one user's progress on one rule in one period."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="score_infos", verbose_name=_("user")
    )
    achievement_type = models.ForeignKey(ScoreRule, on_delete=models.PROTECT, related_name="progress", verbose_name=_("rule"))
    period_start = models.DateTimeField(_("period start"))
    deadline = models.DateTimeField(
        _("deadline"), null=True, blank=True, help_text=_("End of the period; empty for lifetime rules.")
    )
    required_number = models.PositiveIntegerField(_("required number"))
    achievement_amount_now = models.PositiveIntegerField(_("progress"), default=0)
    achieved = models.BooleanField(_("achieved"), default=False)
    awards_in_period = models.PositiveIntegerField(_("awards in period"), default=0)
    streak_length = models.PositiveIntegerField(_("streak"), default=0)
    # When the latest completion counted in this period occurred: a completion that sorts before it
    # is late and re-scores the rule for its user (SPEC §6) instead of taking the fast path.
    last_counted_at = models.DateTimeField(_("last counted completion"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta(SoftDeleteModel.Meta):
        verbose_name = _("progress")
        verbose_name_plural = _("progress")
        ordering = ["-period_start", "achievement_type_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "achievement_type", "period_start"], name="scoreinfo_one_per_period"),
        ]

    def __str__(self) -> str:
        progress = f"{self.achievement_amount_now}/{self.required_number}"
        return f"{self.user_id}/{self.achievement_type_id}@{period_start_text(self.period_start, '%Y-%m-%d')}: {progress}"


class CountedCompletion(models.Model):
    """A completion that a rule counted, in the period row it counted in.

    The unique constraints are what make counting exactly-once: a completion is counted at most
    once per rule, and under `can_repeat = false` a business id at most once per user, rule and
    period (`dedupe_key` is the business id then, NULL otherwise). A reversal frees both.
    """

    rule = models.ForeignKey(ScoreRule, on_delete=models.PROTECT, related_name="+")
    score_info = models.ForeignKey(UserScoreInfo, on_delete=models.PROTECT, related_name="counted")
    completion = models.ForeignKey("tasks.UserTaskRecord", on_delete=models.PROTECT, related_name="counted")
    dedupe_key = models.CharField(max_length=255, null=True, blank=True)
    reversed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Copied from the completion for rules with a cooldown only (NULL otherwise), so that the
    # counted completions near a new one are one index range away; rules without a cooldown
    # neither write nor index them.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="+"
    )
    occurred_at = models.DateTimeField(null=True, blank=True)
    business_id = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "completion"], name="counted_once_per_rule"),
            models.UniqueConstraint(
                fields=["score_info", "dedupe_key"],
                condition=Q(reversed_at__isnull=True, dedupe_key__isnull=False),
                name="counted_object_once_per_period",
            ),
        ]
        indexes = [
            models.Index(
                fields=["rule", "user", "occurred_at"],
                condition=Q(occurred_at__isnull=False, reversed_at__isnull=True),
                name="counted_cooldown_lookup",
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: completion {self.completion_id}"


class RuleRecipient(models.Model):
    """A user who has received a capped rule's award; the place is kept once won."""

    rule = models.ForeignKey(ScoreRule, on_delete=models.PROTECT, related_name="recipients")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "user"], name="recipient_once_per_rule")]

    def __str__(self) -> str:
        return f"{self.rule_id}: user {self.user_id}"


class BackfillRun(models.Model):
    """One backfill of a rule: awarding what the completions it never decided earned (see apps/rules/services/backfill.py).

    At most one run per rule may be queued, running or done (a partial unique constraint): a
    second request, or two at once, finds the first and awards nothing. A failed run frees the
    rule for another, which resumes after the last completion the failed one wrote
    (`last_occurred_at`, `last_completion_id`, committed with each batch).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    # While a rule's run is queued or running, workers leave the rule alone (apps.rules.selectors.ActiveRules).
    OPEN = (Status.QUEUED, Status.RUNNING)

    rule = models.ForeignKey(ScoreRule, on_delete=models.PROTECT, related_name="backfills", verbose_name=_("rule"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    window_start = models.DateTimeField(_("completions from"), null=True, blank=True)
    activated_at = models.DateTimeField(_("rule activated at"), null=True, blank=True)
    completions = models.PositiveIntegerField(_("completions read"), default=0)
    counted = models.PositiveIntegerField(_("counted"), default=0)
    awards = models.PositiveIntegerField(_("awards"), default=0)
    points = models.BigIntegerField(_("points"), default=0)
    recipients = models.PositiveIntegerField(_("recipients"), default=0)
    reasons = models.JSONField(_("reasons"), default=dict, blank=True)
    last_occurred_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_completion_id = models.BigIntegerField(null=True, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("backfill run")
        verbose_name_plural = _("backfill runs")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=Q(status__in=["queued", "running", "done"]), name="backfill_once_per_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: backfill {self.pk} ({self.status})"

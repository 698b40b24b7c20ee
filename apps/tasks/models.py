"""What counts as completing a task (TaskConfig) and each completion (UserTaskRecord)."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.clock import local_text
from apps.core.lifecycle import frozen_field_errors, status_change_error
from apps.core.review import ReviewableModel
from apps.core.soft_delete import SoftDeleteModel


class TaskConfig(ReviewableModel, SoftDeleteModel):
    """任务配置表: a request (method + path regex) that counts as completing a task."""

    class Status(models.TextChoices):
        EDITING = "editing", _("editing")
        IN_USE = "in_use", _("in use")
        DEPRECATED = "deprecated", _("deprecated")

    class Method(models.TextChoices):
        GET = "GET", "GET"
        POST = "POST", "POST"
        PUT = "PUT", "PUT"
        PATCH = "PATCH", "PATCH"
        DELETE = "DELETE", "DELETE"

    # What decides routing; fixed once the config is in use (only the description may change).
    FROZEN_FIELDS = (
        "task_type",
        "method",
        "interface_name",
        "id_group_name",
        "priority",
        "success_status_min",
        "success_status_max",
        "success_json_field",
        "success_json_value",
        "reverses",
    )
    STATUS_ORDER = (Status.EDITING, Status.IN_USE, Status.DEPRECATED)
    # Who may give a config each status past the draft (SPEC §7 roles); checked by every path that sets one.
    STATUS_PERMISSIONS = {Status.IN_USE: "tasks.put_in_use_taskconfig", Status.DEPRECATED: "tasks.deprecate_taskconfig"}

    task_type = models.SlugField(_("task type"), max_length=64)
    task_desc = models.CharField(_("description"), max_length=255, blank=True)
    method = models.CharField(_("method"), max_length=8, choices=Method.choices)
    interface_name = models.CharField(
        _("path regex"), max_length=500, help_text=_("Must match the whole request path, e.g. ^/posts/(?P<post_id>\\d+)/share/$")
    )
    id_group_name = models.CharField(
        _("business id group"),
        max_length=64,
        blank=True,
        help_text=_("Named group of the regex that holds the business object's id."),
    )
    priority = models.IntegerField(_("priority"), default=0, help_text=_("When several configs match, the highest wins."))
    success_status_min = models.PositiveSmallIntegerField(_("lowest success status"), default=200)
    success_status_max = models.PositiveSmallIntegerField(_("highest success status"), default=299)
    success_json_field = models.CharField(
        _("success JSON field"),
        max_length=64,
        blank=True,
        help_text=_("Optional: a top-level field of a JSON response, e.g. code."),
    )
    success_json_value = models.CharField(
        _("success JSON value"), max_length=255, blank=True, help_text=_("The value that field must have, e.g. 0.")
    )
    reverses = models.SlugField(
        _("reverses task type"),
        max_length=64,
        blank=True,
        help_text=_("The task type this task undoes (e.g. deleting a post undoes post)."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.EDITING)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta(SoftDeleteModel.Meta):
        verbose_name = _("task config")
        verbose_name_plural = _("task configs")
        ordering = ["-priority", "id"]
        # The workflow's steps are roles of their own (rule approvers), apart from editing a draft.
        permissions = [
            ("put_in_use_taskconfig", _("Can put task configs in use")),
            ("deprecate_taskconfig", _("Can deprecate task configs")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task_type"], condition=Q(deleted_at__isnull=True), name="taskconfig_task_type_unique_live"
            ),
            models.CheckConstraint(
                condition=Q(success_status_min__lte=F("success_status_max")), name="taskconfig_success_range_ordered"
            ),
            models.CheckConstraint(condition=~Q(reverses=F("task_type")), name="taskconfig_not_reversing_itself"),
        ]
        indexes = [models.Index(fields=["status", "method"], name="taskconfig_status_method")]

    def __str__(self) -> str:
        return self.task_type

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.method = (self.method or "").upper()
        try:
            pattern = re.compile(self.interface_name)
        except (re.error, TypeError) as exc:
            errors["interface_name"] = _("Not a valid regular expression: %(error)s") % {"error": exc}
        else:
            if self.id_group_name and self.id_group_name not in pattern.groupindex:
                errors["id_group_name"] = _("The regex has no named group %(name)s.") % {"name": self.id_group_name}
        if self.reverses and self.reverses == self.task_type:
            errors["reverses"] = _("A task cannot reverse itself.")
        low, high = self.success_status_min, self.success_status_max
        if low is not None and high is not None and low > high:
            errors["success_status_max"] = _("Must not be lower than the lowest success status.")
        if bool(self.success_json_field) != bool(self.success_json_value):
            errors["success_json_value"] = _("Give both the JSON field and its value, or neither.")
        errors.update(frozen_field_errors(self, frozen=self.FROZEN_FIELDS, draft_status=self.Status.EDITING))
        status_error = status_change_error(self, order=self.STATUS_ORDER)
        if status_error:
            errors["status"] = status_error
        if errors:
            raise ValidationError(errors)


class UserTaskRecord(SoftDeleteModel):
    """用户任务记录表: one completion of a task by a user (one per event)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="task_records", verbose_name=_("user")
    )
    task = models.ForeignKey(TaskConfig, on_delete=models.PROTECT, related_name="records", verbose_name=_("task"))
    business_id = models.CharField(_("business id"), max_length=255, blank=True)
    event_id = models.UUIDField(_("event id"), unique=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    method = models.CharField(_("method"), max_length=8, blank=True)
    path = models.CharField(_("path"), max_length=2048, blank=True)
    status_code = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    location = models.CharField(_("client address"), max_length=64, blank=True)
    country = models.CharField(_("country"), max_length=8, blank=True)
    lang_type = models.CharField(_("language"), max_length=35, blank=True)
    # What the rule engine decided for each applicable rule, kept so an operator can see why a
    # completion earned nothing: [{"rule": "sign-in", "counted": true, "reason": "awarded", ...}].
    decisions = models.JSONField(_("rule decisions"), default=list, blank=True)
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    reversed_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("reversed by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta(SoftDeleteModel.Meta):
        verbose_name = _("task completion")
        verbose_name_plural = _("task completions")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["user", "task", "business_id", "occurred_at"], name="taskrecord_reversal_lookup"),
            models.Index(fields=["occurred_at"], name="taskrecord_occurred"),
        ]

    def __str__(self) -> str:
        return _("%(task)s by %(user)s at %(time)s") % {
            "task": self.task.task_type,
            "user": self.user_id,
            "time": local_text(self.occurred_at),
        }

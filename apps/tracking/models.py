"""The outbox: events that could not reach the broker wait here, durable, until it is back."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from apps.core.clock import local_text


class OutboxEvent(models.Model):
    event_id = models.UUIDField(_("event id"), unique=True)
    payload = models.JSONField(_("payload"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return str(self.event_id)


class FailedEvent(models.Model):
    """An event that failed every try (or could not be read): parked for an operator, never blocking the rest."""

    class Status(models.TextChoices):
        FAILED = "failed", _("failed")
        RETRIED = "retried", _("sent again")

    event_id = models.UUIDField(_("event id"), null=True, blank=True, unique=True)
    payload = models.JSONField(_("payload"))
    error = models.TextField(_("error"))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.FAILED)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("failed event")
        verbose_name_plural = _("failed events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        name = self.event_id or _("unreadable event")
        return f"{name}: {self.error[:60]}"


class Heartbeat(models.Model):
    """When a worker last ran the periodic heartbeat task (shown by /healthz)."""

    name = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} {local_text(self.seen_at, '%Y-%m-%d %H:%M:%S')}"


class ServiceKey(models.Model):
    """Another business system's key for `POST /api/events` (and the holds API if `may_hold`).

    The system signs each request with `secret` (HMAC-SHA256).

    The secret is shown once, when the key is created, and never again: not in the admin, not in
    history. Revoking is immediate in every process, since each request reads its key from here.
    """

    name = models.CharField(_("name"), max_length=100, help_text=_("Which system uses this key, e.g. “shop”."))
    key_id = models.CharField(_("key id"), max_length=40, unique=True, editable=False)
    secret = models.CharField(max_length=128, editable=False)
    task_types = models.CharField(
        _("allowed task types"),
        max_length=1000,
        blank=True,
        help_text=_("Comma-separated task types this key may post; empty means any."),
    )
    may_hold = models.BooleanField(
        _("may hold points"),
        default=False,
        help_text=_(
            "Whether the system may place, capture and release holds on users' points (a checkout paying with points, "
            "POST /api/holds). Fixed when the key is created."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    # The secret never enters history; last use changes too often to be worth a history row.
    history = HistoricalRecords(excluded_fields=["secret", "last_used_at"])

    class Meta:
        verbose_name = _("service key")
        verbose_name_plural = _("service keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def allowed_task_types(self) -> frozenset[str]:
        """The task types this key may post; empty means any."""
        return frozenset(item.strip() for item in self.task_types.split(",") if item.strip())


class SeenSignature(models.Model):
    """A signature `POST /api/events` accepted, kept while its timestamp is fresh so that a replay is refused.

    The unique constraint is the guard: of two concurrent requests with one signature, on any
    number of web processes, one insert fails. Rows past `expires_at` are pruned; a replay of one
    of those is refused as stale anyway.
    """

    signature = models.CharField(max_length=64, unique=True)
    key = models.ForeignKey(ServiceKey, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("seen signature")
        verbose_name_plural = _("seen signatures")

    def __str__(self) -> str:
        return self.signature[:12]

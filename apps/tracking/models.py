"""The outbox: events that could not reach the broker wait here, durable, until it is back."""

from django.db import models
from django.utils.translation import gettext_lazy as _


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
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"

"""The outbox: events that could not reach the broker wait here, durable, until it is back."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxEvent(models.Model):
    event_id = models.UUIDField(unique=True)
    payload = models.JSONField()
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

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

    event_id = models.UUIDField(null=True, blank=True, unique=True)
    payload = models.JSONField()
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FAILED)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("failed event")
        verbose_name_plural = _("failed events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_id or 'unreadable event'}: {self.error[:60]}"


class Heartbeat(models.Model):
    """When a worker last ran the periodic heartbeat task (shown by /healthz)."""

    name = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"

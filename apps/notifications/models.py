"""In-site notifications and outgoing webhooks (SPEC §12).

Both are written by `apps.notifications.services.announce.announce`, in the transaction of what
they announce; nothing here is sent on a request. A webhook delivery is an outbox row: Celery
sends it (`apps.notifications.services.deliveries`) and keeps every attempt.
"""

import secrets
from base64 import b64encode

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.clock import local_text
from apps.notifications.events import EVENT_TYPES

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks secrets carry, not a secret


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + b64encode(secrets.token_bytes(32)).decode()


class Notification(models.Model):
    """One thing that happened to a user's points, for the user to read on the site.

    `kind` is an event type (apps.notifications.events) and `data` what the text is made of
    (amounts, codes, ids): the text itself is rendered when shown, in the reader's language.
    """

    # Written with every batch of awards and every expiry chunk: no database foreign key (a check
    # and a KEY SHARE lock on the user's row per notification; the ORM still cascades a user's
    # deletion) and no index of its own (`notification_user_recent` leads with the user).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=list(EVENT_TYPES.items()))
    data = models.JSONField(_("data"), default=dict)
    # Set only for announcements that must happen once whatever runs them (an expiry notice):
    # the partial unique index refuses a second one.
    key = models.CharField(_("key"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["user", "-id"], name="notification_user_recent"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]
        constraints = [models.UniqueConstraint(fields=["key"], condition=~Q(key=""), name="notification_key_once")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.user_id}"


class WebhookEndpoint(models.Model):
    """Where another system wants to hear of events: a URL, the types it wants, and the secret deliveries are signed with."""

    name = models.CharField(_("name"), max_length=120)
    url = models.URLField(_("URL"), max_length=500, help_text=_("http:// or https://; deliveries are POSTed here."))
    # The signing key (Standard Webhooks: `whsec_` + base64). Shown once, when the endpoint is
    # created or its secret rotated; never again.
    secret = models.CharField(_("secret"), max_length=100, default=new_secret, editable=False)
    event_types = models.JSONField(_("event types"), default=list, help_text=_("The events this endpoint receives."))
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Off: no new deliveries are written, and waiting ones are not sent.")
    )
    # Since when every attempt has failed (cleared by a success); a day of it disables the endpoint.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True, editable=False)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(_("why disabled"), max_length=255, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one endpoint: the exact body signed and sent, and how sending it went.

    `message_id` (the `webhook-id` header) is derived from the announcement, so it is the same on
    every attempt and receivers can drop a repeat.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed (gave up)")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint"))
    message_id = models.CharField(_("message id"), max_length=64)
    event_type = models.CharField(_("event type"), max_length=32)
    payload = models.TextField(_("body"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status_code = models.PositiveIntegerField(_("last status code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["endpoint", "message_id"], name="delivery_once_per_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
            models.Index(fields=["endpoint", "-id"], name="delivery_endpoint_recent"),
            # The admin's and the dashboard's counts of given-up deliveries, without reading the delivered ones.
            models.Index(fields=["endpoint"], condition=Q(status="failed"), name="delivery_failed"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: when, what came back (or what went wrong), how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField(_("at"))
    status_code = models.PositiveIntegerField(_("status code"), null=True, blank=True)
    response = models.TextField(_("response (start)"), blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    manual = models.BooleanField(_("sent again by an operator"), default=False)

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["delivery_id", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {local_text(self.at)}"

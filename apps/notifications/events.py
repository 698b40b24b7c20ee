"""What Jifen announces (SPEC §12): the event types, as in-site notifications and webhook deliveries.

The same names serve both: a notification's `kind` and a delivery's `type` are one of them, and an
endpoint subscribes to a list of them. Names are part of the webhook contract: never rename one.
"""

from django.utils.translation import gettext_lazy as _

POINTS_AWARDED = "points.awarded"
POINTS_REVERSED = "points.reversed"
POINTS_ADJUSTED = "points.adjusted"
POINTS_EXPIRING = "points.expiring"
POINTS_EXPIRED = "points.expired"
LEVEL_REACHED = "level.reached"
BADGE_EARNED = "badge.earned"
BADGE_REVOKED = "badge.revoked"
REDEMPTION_CREATED = "redemption.created"
REDEMPTION_FULFILLED = "redemption.fulfilled"
REDEMPTION_CANCELLED = "redemption.cancelled"
HOLD_CREATED = "hold.created"
HOLD_CAPTURED = "hold.captured"
HOLD_RELEASED = "hold.released"
HOLD_EXPIRED = "hold.expired"
# Sent only by "send a test event" in the admin: never announced, never a notification.
ENDPOINT_TEST = "webhook.test"

EVENT_TYPES = {
    POINTS_AWARDED: _("points awarded"),
    POINTS_REVERSED: _("points taken back (a reversal or a re-score)"),
    POINTS_ADJUSTED: _("points adjusted by an operator"),
    POINTS_EXPIRING: _("points expiring soon"),
    POINTS_EXPIRED: _("points expired"),
    LEVEL_REACHED: _("level reached"),
    BADGE_EARNED: _("badge earned"),
    BADGE_REVOKED: _("badge taken back"),
    REDEMPTION_CREATED: _("redemption made"),
    REDEMPTION_FULFILLED: _("redemption fulfilled"),
    REDEMPTION_CANCELLED: _("redemption cancelled (points refunded)"),
    HOLD_CREATED: _("hold placed"),
    HOLD_CAPTURED: _("hold captured"),
    HOLD_RELEASED: _("hold released"),
    HOLD_EXPIRED: _("hold expired (released at its end)"),
}

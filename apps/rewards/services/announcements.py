"""What redemptions and holds announce (SPEC §12), in the transaction of the change they announce.

Each status a redemption or hold reaches is announced once: the key names the object and the
event, and the services call these only when the status actually changed (a repeated request
answers what exists and announces nothing).
"""

from apps.ledger.models import PointType, ScoreRecord
from apps.notifications import events
from apps.notifications.services.announce import Announcement, announce
from apps.rewards.models import Hold, Redemption

_REDEMPTION_EVENTS = {
    Redemption.Status.PENDING: events.REDEMPTION_CREATED,
    Redemption.Status.FULFILLED: events.REDEMPTION_FULFILLED,
    Redemption.Status.CANCELLED: events.REDEMPTION_CANCELLED,
}
_HOLD_EVENTS = {
    Hold.Status.HELD: events.HOLD_CREATED,
    Hold.Status.CAPTURED: events.HOLD_CAPTURED,
    Hold.Status.RELEASED: events.HOLD_RELEASED,
    Hold.Status.EXPIRED: events.HOLD_EXPIRED,
}


def _code(point_type_id: int) -> str:
    return PointType.objects.filter(pk=point_type_id).values_list("code", flat=True).first() or ""


def redemption_announce(*, redemption: Redemption) -> None:
    """Announce the status `redemption` has just reached."""
    event = _REDEMPTION_EVENTS[redemption.status]
    data = {
        "redemption_id": redemption.pk,
        "user_id": redemption.user_id,
        "item": redemption.item.code,
        "item_name": redemption.item.name,
        "point_type": _code(redemption.point_type_id),
        "cost": redemption.cost,
        "status": redemption.status,
        "note": redemption.note,
    }
    announce([Announcement(event, redemption.user_id, f"{event}:{redemption.pk}", data)])


def hold_announce(*, hold: Hold) -> None:
    """Announce the status `hold` has just reached."""
    event = _HOLD_EVENTS[hold.status]
    data = {
        "hold_id": hold.pk,
        "user_id": hold.user_id,
        "point_type": _code(hold.point_type_id),
        "amount": hold.amount,
        "service": hold.service_key.name,
        # What the service said the points are for ("shop: order 123"), as the user's ledger shows it.
        "description": ScoreRecord.objects.filter(pk=hold.spend_entry_id).values_list("business_type", flat=True).first() or "",
        "status": hold.status,
    }
    announce([Announcement(event, hold.user_id, f"{event}:{hold.pk}", data)])

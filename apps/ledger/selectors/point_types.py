"""Point types as operators and users read them: the expiry policy in words, and what uses a type."""

from django.apps import apps
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.ledger.models import Account, LeaderboardTotal, PointType, ScoreRecord

# Rows that exist only where an account of the type exists: when no account does, none of them
# can, so they are not looked for (their tables are the big ones, and point_type is not indexed there).
_IMPLIED_BY_ACCOUNTS = (ScoreRecord, LeaderboardTotal)


def expiry_text(point_type: PointType) -> str:
    """The type's expiry policy as people say it: "never", "12 months after earning", …"""
    if point_type.expiry == PointType.Expiry.ROLLING and point_type.expiry_months:
        months = point_type.expiry_months
        return ngettext("%(n)s month after earning", "%(n)s months after earning", months) % {"n": months}
    if point_type.expiry == PointType.Expiry.YEAR_END:
        return _("at the end of the year after earning")
    return _("never")


def _protecting_fields() -> list[tuple[type[models.Model], list[str]]]:
    """(model, its PROTECT foreign keys to PointType) for each model whose rows keep a type from being deleted; accounts first."""
    found: dict[type[models.Model], list[str]] = {}
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            remote = getattr(field, "remote_field", None)
            if isinstance(field, models.ForeignKey) and remote.model is PointType and remote.on_delete is models.PROTECT:
                found.setdefault(model, []).append(field.name)
    return sorted(found.items(), key=lambda item: item[0] is not Account)


def point_type_users(point_type: PointType) -> list[str]:
    """What uses the type, as the plural names of the models that do ("accounts", "score rules"); [] if nothing.

    One EXISTS per model; the ledger's big tables are not read when no account holds the type.
    """
    used = []
    has_accounts = False
    for model, names in _protecting_fields():
        if model in _IMPLIED_BY_ACCOUNTS and not has_accounts:
            continue
        manager = getattr(model, "all_objects", model._default_manager)  # soft-deleted rows protect it too
        query = models.Q()
        for name in names:
            query |= models.Q(**{name: point_type})
        if manager.filter(query).exists():
            used.append(str(model._meta.verbose_name_plural))
            has_accounts = has_accounts or model is Account
    return used


def point_type_delete_blockers(point_type: PointType) -> list[str]:
    """Why the type cannot be deleted, one sentence each; [] when it can (nothing but its levels refer to it)."""
    reasons = []
    if point_type.is_default:
        reasons.append(_("It is the default type: rules, sheet rows and adjustments that name no type use it."))
    users = point_type_users(point_type)
    if users:
        reasons.append(_("It is in use by %(what)s.") % {"what": ", ".join(users)})
    return reasons

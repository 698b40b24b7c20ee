"""The authoring workflow shared by TaskConfig and ScoreRule (SPEC §4).

Both go from a draft (`editing`) to live (`in_use` / `active`) to retired (`deprecated` /
`retired`), never back; while live or retired, the fields that decide behaviour are frozen.
Every save records its author for django-simple-history.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# This module is imported by models modules; importing auth's models here at run time would tie
# app loading to auth's being loaded first, so the alias is for type checkers only.
Actor: TypeAlias = "AbstractBaseUser | None"


def frozen_field_errors(instance: models.Model, *, frozen: Sequence[str], draft_status: str) -> dict[str, str]:
    """{field: message} for each frozen field that differs from the stored row, once past draft."""
    if instance.pk is None:
        return {}
    columns = {name: instance._meta.get_field(name).attname for name in frozen}  # a foreign key by its id
    stored = type(instance).all_objects.filter(pk=instance.pk).values("status", *columns.values()).first()
    if stored is None or stored["status"] == draft_status:
        return {}
    status_label = type(instance).Status(stored["status"]).label
    return {
        name: _(
            "%(name)s cannot change while %(object)s is %(status)s: retire it and activate a new one "
            "(copy as draft) to change it."
        )
        % {"name": instance._meta.get_field(name).verbose_name, "object": instance, "status": status_label}
        for name, column in columns.items()
        if getattr(instance, column) != stored[column]
    }


def status_change_error(instance: models.Model, *, order: Sequence[str]) -> str | None:
    """A message if the status moves anywhere but one step forward along `order`."""
    if instance.pk is None:
        return None
    stored = type(instance).all_objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    if stored is None or stored == instance.status:
        return None
    if order.index(instance.status) != order.index(stored) + 1:
        labels = type(instance).Status
        return _("Status cannot go from %(old)s to %(new)s.") % {
            "old": labels(stored).label,
            "new": labels(instance.status).label,
        }
    return None


def operator_fields(instance: models.Model) -> list[str] | None:
    """The columns an operator's save of an existing row writes (G12); None for a new row (all of them).

    The editable fields and the `auto_now` stamp: never a non-editable field, which workers own
    (a rule's `recipients_count`) or which is written once. Writing the whole row would put back
    the values read when the operator's request began, undoing what a worker did meanwhile.
    """
    if instance._state.adding:
        return None
    return [
        field.name
        for field in instance._meta.concrete_fields
        if not field.primary_key and (field.editable or getattr(field, "auto_now", False))
    ]


class WorkflowForbidden(PermissionDenied):
    """The operator's role may not give the object that status (SPEC §7); nothing was saved."""


def status_permission_error(model: type[models.Model], *, old: str | None, new: str, actor: Actor) -> str | None:
    """A message if `actor` may not move an object of `model` from status `old` (None: a new one) to `new`.

    Staying a draft, or keeping the status, needs nothing; any other status needs the model's
    STATUS_PERMISSIONS entry for it. An `actor` of None (nobody named) is refused: callers acting
    for the system do not ask.
    """
    old = old or model.STATUS_ORDER[0]
    if new == old:
        return None
    permission = model.STATUS_PERMISSIONS.get(new)
    if permission is not None and actor is not None and actor.has_perm(permission):
        return None
    return _("You may not change the status from %(old)s to %(new)s; someone allowed to activate and retire must.") % {
        "old": old,
        "new": new,
    }


def _stored_status(instance: models.Model) -> str | None:
    if instance.pk is None:
        return None
    return type(instance).all_objects.filter(pk=instance.pk).values_list("status", flat=True).first()


def save_with_history(instance: models.Model, *, actor: Actor, reason: str) -> models.Model:
    """Validate fully (frozen fields included) and save, recording author and reason in history.

    An operator (`actor` not None) who gives the object a status their role may not give raises
    WorkflowForbidden, whichever path called: admin form, workflow step, service. `actor=None`
    is the system (workers, migrations, shell commands that name no operator).
    """
    if actor is not None:
        error = status_permission_error(type(instance), old=_stored_status(instance), new=instance.status, actor=actor)
        if error:
            raise WorkflowForbidden(error)
    instance.full_clean()
    instance._history_user = actor
    instance._change_reason = reason
    instance.save(update_fields=operator_fields(instance))
    return instance


def update_fields(instance: models.Model, *, changes: dict[str, Any], actor: Actor) -> models.Model:
    """Apply `changes` and save; if any is refused, raise and leave row and instance as they were.

    ValidationError for a bad value; WorkflowForbidden for a status the actor may not give.
    """
    names = {field.name for field in instance._meta.fields if field.editable}
    unknown = set(changes) - names
    if unknown:
        raise ValidationError(_("Unknown or read-only fields: %(names)s") % {"names": ", ".join(sorted(unknown))})
    before = {name: getattr(instance, name) for name in changes}
    for name, value in changes.items():
        setattr(instance, name, value)
    try:
        return save_with_history(instance, actor=actor, reason="changed")
    except (ValidationError, PermissionDenied):
        for name, value in before.items():
            setattr(instance, name, value)
        raise


def transition(instance: models.Model, *, source: str, target: str, actor: Actor) -> models.Model:
    """Move `instance` from status `source` to `target` under a row lock.

    ValidationError if it is not in `source`; WorkflowForbidden if `actor` may not give it `target`.
    """
    model = type(instance)
    error = actor is not None and status_permission_error(model, old=source, new=target, actor=actor)
    if error:
        raise WorkflowForbidden(error)
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=instance.pk)
        if locked.status != source:
            raise ValidationError(
                _("%(object)s is %(status)s; only one that is %(source)s can become %(target)s.")
                % {
                    "object": locked,
                    "status": locked.get_status_display(),
                    "source": model.Status(source).label,
                    "target": model.Status(target).label,
                }
            )
        locked.status = target
        save_with_history(locked, actor=actor, reason=f"{source} → {target}")
    instance.refresh_from_db()
    return instance


def free_copy_code(model: type[models.Model], field: str, base: str) -> str:
    """`base-copy`, or `base-copy-2`, … : the first code no live row of `model` uses."""
    taken = set(model.objects.filter(**{f"{field}__startswith": base}).values_list(field, flat=True))
    for n in range(1, 1000):
        code = (f"{base}-copy" if n == 1 else f"{base}-copy-{n}")[:64]
        if code not in taken:
            return code
    raise ValidationError(_("Too many copies of %(code)s.") % {"code": base})


def copy_fields(instance: models.Model, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in names}

"""Admin actions shared by the TaskConfig and ScoreRule admins: each calls a workflow service."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def workflow_action(service: Callable, *, keyword: str, name: str, description: str, permission: str = "change"):
    """An admin action that runs `service(<keyword>=obj, actor=user)` on each selected row."""

    @admin.action(description=description, permissions=[permission])
    def action(modeladmin, request, queryset):
        done, refused = 0, []
        for obj in queryset.order_by("pk"):
            try:
                service(**{keyword: obj, "actor": request.user})
                done += 1
            except ValidationError as exc:
                refused.append(f"{obj}: {' '.join(exc.messages)}")
        if done:
            modeladmin.message_user(request, _("%(count)d done.") % {"count": done}, messages.SUCCESS)
        for message in refused:
            modeladmin.message_user(request, message, messages.ERROR)

    action.__name__ = name
    return action


class FrozenFieldsMixin:
    """Past the draft status, the fields that decide behaviour are shown read-only."""

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != obj.Status.EDITING:
            readonly += [name for name in obj.FROZEN_FIELDS if name not in readonly]
        return readonly

"""Soft delete for the seed's tables that have `deleted_at`."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class LiveManager(models.Manager):
    """Rows that have not been soft-deleted."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SoftDeleteModel(models.Model):
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, editable=False)

    objects = LiveManager()
    all_objects = models.Manager()  # noqa: DJ012

    class Meta:
        abstract = True
        # Related lookups and the admin's history must still reach soft-deleted rows.
        base_manager_name = "all_objects"

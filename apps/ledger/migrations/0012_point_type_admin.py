"""Point types managed in the admin (SPEC §11; docs/operators.md, Point types and levels, and Roles).

- A type may set its own adjustment approval threshold (empty: JIFEN_ADJUSTMENT_APPROVAL_ABOVE).
- A type's levels are part of it: a type that nothing uses may be deleted, its levels with it.
- Adjustments from before point types name the default type explicitly (null meant it).
- Roles: a type's expiry policy and whether it can be spent decide what users' points are worth,
  so the rule approvers (who already decide what goes live and what rules award) add, change and
  delete point types and levels; rule editors and ledger operators see them (a rule and an
  adjustment name a type); auditors get every view permission of Jifen's and Celery's apps again,
  as in apps/ledger/migrations/0007_leaderboard_roles.py, now with point types, levels and lots.
  Permissions are created first (post_migrate would create them only after the whole migrate
  run); the groups are found or created by name and only ever given permissions.
"""

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

AUDITED_APPS = ("tasks", "rules", "ledger", "tracking", "community", "django_celery_results", "django_celery_beat")
MANAGE = ("add", "change", "delete", "view")
GRANTS = {
    "rule approvers": [f"{action}_{model}" for model in ("pointtype", "level") for action in MANAGE],
    "rule editors": ["view_pointtype", "view_level"],
    "ledger operators": ["view_pointtype", "view_level"],
}


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    for app_config in apps.get_app_configs():
        # create_permissions skips app configs without a models module; historical ones have none.
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ledger = Permission.objects.using(using).filter(content_type__app_label="ledger")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(*ledger.filter(codename__in=codenames))
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    auditors.permissions.add(
        *Permission.objects.using(using).filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    using = schema_editor.connection.alias
    ledger = Permission.objects.using(using).filter(content_type__app_label="ledger")
    for name, codenames in GRANTS.items():
        for group in Group.objects.using(using).filter(name=name):
            group.permissions.remove(*ledger.filter(codename__in=codenames))


def adjustments_name_their_type(apps, schema_editor):
    PointType = apps.get_model("ledger", "PointType")
    Adjustment = apps.get_model("ledger", "Adjustment")
    default = PointType.objects.filter(is_default=True).values_list("pk", flat=True).first()
    if default is not None:
        Adjustment.objects.filter(point_type__isnull=True).update(point_type_id=default)


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0011_denormalized_types'),
        ('ledger', '0007_leaderboard_roles'),
        ('tracking', '0003_roles'),
    ]

    operations = [
        migrations.AddField(
            model_name='historicalpointtype',
            name='adjustment_approval_above',
            field=models.PositiveIntegerField(blank=True, help_text="An operator's adjustments of this type to one user are posted at once while they add up to at most this many points within 24 hours; beyond, a second operator must approve. Empty: the site's setting (JIFEN_ADJUSTMENT_APPROVAL_ABOVE).", null=True, verbose_name='adjustments approved above'),
        ),
        migrations.AddField(
            model_name='pointtype',
            name='adjustment_approval_above',
            field=models.PositiveIntegerField(blank=True, help_text="An operator's adjustments of this type to one user are posted at once while they add up to at most this many points within 24 hours; beyond, a second operator must approve. Empty: the site's setting (JIFEN_ADJUSTMENT_APPROVAL_ABOVE).", null=True, verbose_name='adjustments approved above'),
        ),
        migrations.AlterField(
            model_name='level',
            name='point_type',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='levels', to='ledger.pointtype', verbose_name='point type'),
        ),
        migrations.RunPython(adjustments_name_their_type, migrations.RunPython.noop),
        migrations.RunPython(grant, revoke),
    ]

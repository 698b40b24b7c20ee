"""Backfill runs are seen by auditors (as every model) and by rule approvers, whose activation starts them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {"auditors": ["view_backfillrun"], "rule approvers": ["view_backfillrun"]}


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("rules")
    app_config.models_module = True  # historical app configs have none; create_permissions skips those
    create_permissions(app_config, verbosity=0, using=using, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        group.permissions.add(*Permission.objects.using(using).filter(content_type__app_label="rules", codename__in=codenames))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    found = Permission.objects.using(schema_editor.connection.alias).filter(
        content_type__app_label="rules", codename="view_backfillrun"
    )
    for group in Group.objects.using(schema_editor.connection.alias).filter(name__in=GRANTS):
        group.permissions.remove(*found)


class Migration(migrations.Migration):
    dependencies = [("rules", "0005_backfill_runs"), ("tracking", "0003_roles")]

    operations = [migrations.RunPython(grant, revoke)]

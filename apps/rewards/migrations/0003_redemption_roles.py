"""Ledger operators work the redemption queue (view, fulfil, cancel); auditors see redemptions.

Permissions are created first (post_migrate would create them only after the whole migrate run).
Auditors get every view permission of the rewards app, as they have of Jifen's others. The groups
are found or created by name and only ever given permissions.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPERATOR_PERMISSIONS = ("view_redemption", "fulfil_redemption")


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("rewards")
    # create_permissions skips app configs without a models module; historical ones have none.
    app_config.models_module = True
    create_permissions(app_config, verbosity=0, using=using, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    rewards = Permission.objects.using(using).filter(content_type__app_label="rewards")
    operators, _ = Group.objects.using(using).get_or_create(name="ledger operators")
    operators.permissions.add(*rewards.filter(codename__in=OPERATOR_PERMISSIONS))
    auditors, _ = Group.objects.using(using).get_or_create(name="auditors")
    auditors.permissions.add(*rewards.filter(codename__startswith="view_"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    rewards = Permission.objects.using(using).filter(content_type__app_label="rewards")
    for group in Group.objects.using(using).filter(name="ledger operators"):
        group.permissions.remove(*rewards.filter(codename__in=OPERATOR_PERMISSIONS))
    for group in Group.objects.using(using).filter(name="auditors"):
        group.permissions.remove(*rewards.filter(codename__startswith="view_"))


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0002_item_authoring_roles"),
        ("ledger", "0007_leaderboard_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]

"""Reward items are authored like rules (SPEC §11 "Spending"), by the same roles (SPEC §7):

- rule editors add and change items (drafts: the workflow refuses their frozen fields once live,
  and activating is not theirs), copy them and submit them for review;
- rule approvers see them, activate and retire them, and send a draft in review back.

Auditors see them already (apps/ledger/migrations/0010_economy_roles.py). Permissions are created
first (post_migrate would create them only after the whole migrate run).
The groups are found or created by name and only ever given permissions. Also: the stock's help
text says that it counts what was redeemed too.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GRANTS = {
    "rule editors": ["add_rewarditem", "change_rewarditem", "view_rewarditem"],
    "rule approvers": ["view_rewarditem", "activate_rewarditem", "retire_rewarditem"],
}


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("rewards")
    app_config.models_module = True  # historical app configs have none; create_permissions skips those
    create_permissions(app_config, verbosity=0, using=using, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    rewards = Permission.objects.using(using).filter(content_type__app_label="rewards")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        found = list(rewards.filter(codename__in=codenames))
        missing = set(codenames) - {permission.codename for permission in found}
        if missing:
            raise RuntimeError(f"role {name!r}: permissions {sorted(missing)} of rewards do not exist")
        group.permissions.add(*found)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for name, codenames in GRANTS.items():
        found = Permission.objects.using(using).filter(content_type__app_label="rewards", codename__in=codenames)
        for group in Group.objects.using(using).filter(name=name):
            group.permissions.remove(*found)


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0001_initial"),
        ("tracking", "0003_roles"),  # the groups; 0001 comes after the ledger's point types and lots
    ]

    operations = [
        migrations.AlterField(
            model_name="historicalrewarditem",
            name="stock",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="How many there are in all, those already redeemed included: raise it to restock. Empty: unlimited.",
                null=True,
                verbose_name="stock",
            ),
        ),
        migrations.AlterField(
            model_name="rewarditem",
            name="stock",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="How many there are in all, those already redeemed included: raise it to restock. Empty: unlimited.",
                null=True,
                verbose_name="stock",
            ),
        ),
        migrations.RunPython(grant, revoke),
    ]

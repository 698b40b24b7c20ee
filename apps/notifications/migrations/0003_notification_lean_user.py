"""Notifications name their user without a database foreign key or an index of their own.

One notification is written per completion with awards and per expired account: the foreign key
cost a check and a KEY SHARE lock on the user's row for each, and the index on the user alone
repeated `notification_user_recent`'s first column. P9 with notices: docs/performance.md.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0002_webhook_roles_and_failed_index'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='notification',
            name='user',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user'),
        ),
    ]

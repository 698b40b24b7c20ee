"""Progress rows remember when their latest counted completion occurred, so a late one is seen at once (SPEC §6).

Existing rows are filled from their counted completions that were not reversed.
"""

from django.db import migrations, models

FILL = """
UPDATE rules_userscoreinfo SET last_counted_at = (
    SELECT MAX(t.occurred_at)
    FROM rules_countedcompletion c JOIN tasks_usertaskrecord t ON t.id = c.completion_id
    WHERE c.score_info_id = rules_userscoreinfo.id AND c.reversed_at IS NULL AND t.reversed_at IS NULL
)
"""


class Migration(migrations.Migration):
    dependencies = [("rules", "0006_backfill_run_roles"), ("tasks", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="userscoreinfo",
            name="last_counted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name="last counted completion"),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
    ]

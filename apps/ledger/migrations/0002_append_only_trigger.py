"""On PostgreSQL, refuse UPDATE and DELETE on the ledger in the database itself (SPEC §5, G6).

The ORM already refuses both; the trigger also stops raw SQL and any other client. SQLite, the
embedded default, has only the ORM's guard. TRUNCATE is left to the database's privileges (the
test runner empties tables with it); production's application role should not hold it.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION ledger_scorerecord_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_scorerecord is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_scorerecord_append_only
    BEFORE UPDATE OR DELETE ON ledger_scorerecord
    FOR EACH ROW EXECUTE FUNCTION ledger_scorerecord_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS ledger_scorerecord_append_only ON ledger_scorerecord;
DROP FUNCTION IF EXISTS ledger_scorerecord_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]

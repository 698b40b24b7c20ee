"""Bulk inserts for generated data: PostgreSQL's COPY, or multi-row INSERTs on SQLite.

Rows are written as given, keys included (see `ids_reserve`), and every column the caller does
not give gets the model field's default, so a field added later with a default needs no change
here. Nothing of the ORM runs per row: no save(), no signals, no history.
"""

import json
from datetime import datetime

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin


class BulkTable:
    """Rows for one model's table: the given columns plus every other column at its default."""

    def __init__(self, model: type[models.Model], columns: list[str]):
        self.model = model
        self.columns = columns
        fields = {f.attname: f for f in model._meta.concrete_fields}
        self.fields = [fields[name] for name in columns]
        # An auto-increment key left out is the database's to give (a history table's history_id).
        generated = {name for name, f in fields.items() if f.primary_key and isinstance(f, AutoFieldMixin)}
        self.filled = [f for name, f in fields.items() if name not in columns and name not in generated]
        for f in self.filled:
            # A text column without a default gets "", as Django itself gives it.
            known = f.has_default() or f.null or f.empty_strings_allowed
            if not (known or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)):
                raise ValueError(f"{model._meta.label}.{f.name} has no default: give it a value")

    @property
    def all_columns(self) -> list[str]:
        return self.columns + [f.column for f in self.filled]

    def defaults(self, now: datetime) -> list:
        values = []
        for f in self.filled:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                values.append(now)
            else:
                values.append(f.get_default())
        return values

    def write(self, rows: list[tuple], *, now: datetime) -> None:
        if not rows:
            return
        quote = connection.ops.quote_name
        table, columns = quote(self.model._meta.db_table), ", ".join(quote(c) for c in self.all_columns)
        fields = self.fields + self.filled
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # JSON goes as its text; everything else psycopg writes natively.
                json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - quoted names
                    for row in rows:
                        values = [*row, *self.defaults(now)]
                        for i in json_at:
                            values[i] = json.dumps(values[i])
                        copy.write_row(values)
            else:
                placeholders = ", ".join(["%s"] * len(fields))
                prepared = [
                    [f.get_db_prep_save(value, connection) for f, value in zip(fields, [*row, *self.defaults(now)], strict=True)]
                    for row in rows
                ]
                for start in range(0, len(prepared), 500):
                    cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", prepared[start : start + 500])  # noqa: S608


def ids_reserve(model: type[models.Model], count: int) -> int:
    """The first of `count` consecutive ids nobody else will use; the table stays locked until commit."""
    quote = connection.ops.quote_name
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Readers go on; a concurrent writer waits for this chunk's commit and then takes ids
            # after the block, since the sequence has moved past it.
            cursor.execute(f"LOCK TABLE {quote(table)} IN EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {quote(table)}), last_value) FROM {sequence}")  # noqa: S608
            first = cursor.fetchone()[0] + 1
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quote(table)}")  # noqa: S608
            first = cursor.fetchone()[0] + 1
    return first

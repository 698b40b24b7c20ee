"""Multi-row INSERT and UPDATE, and reads by many keys: one statement, one round trip, for many rows.

The worker writes a whole batch of events with one statement per table. Django's `bulk_create`
and `bulk_update` send the same kind of statement, but build a model instance per row and run
every field's preparation on every value, which costs more Python time per row than PostgreSQL
spends writing the row; here the rows are plain tuples and only the columns whose Python value
differs from the database's (times, UUIDs, JSON) are converted.

No model `save()`, signals or history: callers are services that own these tables' writes.

The worker's reads by a batch's keys are plain SQL too (`int_list`, `uuid_list`, `fetch`):
building an ORM query costs a millisecond or two of Python, several times the database's time
for the same read.
"""

# ruff: noqa: S608 - the statements are built from the model's own table and column names; every value is a parameter

import json
import operator
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection, models
from django.utils.dateparse import parse_datetime

Row = Sequence[Any]

# Rows per statement where the database does not limit the parameters (PostgreSQL, one parameter
# per column): large enough for any batch, small enough to keep one statement's text reasonable.
_ROWS_PER_STATEMENT = 1000


def _fields(model: type[models.Model], columns: Sequence[str]) -> list[models.Field]:
    by_column = {field.column: field for field in model._meta.concrete_fields}
    return [by_column[column] for column in columns]


def _prepared(fields: list[models.Field], rows: Sequence[Row]) -> Sequence[Row]:
    """Rows with the values Django would send for times, UUIDs and JSON (SQLite stores them as text)."""
    converters = [
        i for i, field in enumerate(fields) if isinstance(field, models.DateTimeField | models.UUIDField | models.JSONField)
    ]
    if not converters:
        return rows
    prepared = []
    for row in rows:
        values = list(row)
        for i in converters:
            if values[i] is not None:
                values[i] = fields[i].get_db_prep_value(values[i], connection, prepared=False)
        prepared.append(values)
    return prepared


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _time_format() -> Callable[[datetime], str]:
    """Times, each written once per column: a batch's rows mostly share one `now`."""
    written: dict[datetime, str] = {}

    def element(value: datetime) -> str:
        text = written.get(value)
        if text is None:
            text = written[value] = '"' + value.isoformat() + '"'
        return text

    return element


def _element_format(field: models.Field) -> Callable[[Any], str]:
    """How one value of `field` is written inside a PostgreSQL array literal."""
    if isinstance(field, models.JSONField):
        return lambda value: _quoted(json.dumps(value, cls=field.encoder))
    if isinstance(field, models.BooleanField):
        return lambda value: "t" if value else "f"
    if isinstance(field, models.DateTimeField):
        return _time_format()
    target = field.target_field if field.is_relation else field
    if isinstance(target, models.IntegerField | models.AutoField | models.UUIDField):
        return str
    return lambda value: _quoted(str(value))


def _array_literal(values: Sequence[Any], element: Callable[[Any], str]) -> str:
    return "{" + ",".join("NULL" if value is None else element(value) for value in values) + "}"


def _arrays(fields: list[models.Field], rows: Sequence[Row]) -> tuple[str, list[str]]:
    """PostgreSQL: `UNNEST(…)` of one array parameter per column, and those parameters.

    One parameter per column rather than per value, each an array literal written here: with
    Django's client-side binding, psycopg renders every parameter into the statement's text, and
    its rendering of a thousand values, one by one or as lists, costs milliseconds per statement.
    Types lose their length (`varchar[]`, not `varchar(40)[]`), so nothing is truncated.
    """
    types = [field.cast_db_type(connection).split("(")[0] for field in fields]
    columns = [
        _array_literal(column, _element_format(field)) for field, column in zip(fields, zip(*rows, strict=True), strict=True)
    ]
    return "UNNEST(" + ", ".join(f"(%s)::{db_type}[]" for db_type in types) + ")", columns


def _chunks(rows: Sequence[Row], columns: int) -> Iterator[Sequence[Row]]:
    limit = connection.features.max_query_params
    size = max(1, limit // columns) if limit else _ROWS_PER_STATEMENT
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_head(model: type[models.Model], columns: Sequence[str], returning: Sequence[str]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)}) "
    return head, f" RETURNING {', '.join(quote(column) for column in returning)}" if returning else ""


def unnest_insert_sql(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Row], *, returning: Sequence[str] = ()
) -> tuple[str, list[str]]:
    """PostgreSQL: the `INSERT … SELECT * FROM UNNEST(…)` that `rows_insert` sends, and its parameters."""
    head, tail = _insert_head(model, columns, returning)
    source, params = _arrays(_fields(model, columns), rows)
    return f"{head}SELECT * FROM {source}{tail}", params


def unnest_update_sql(model: type[models.Model], columns: Sequence[str], rows: Sequence[Row]) -> tuple[str, list[str]]:
    """PostgreSQL: the `UPDATE … FROM UNNEST(…)` that `rows_update` sends, and its parameters."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    pk = model._meta.pk
    names = [f"c{i}" for i in range(len(columns) + 1)]
    sets = ", ".join(f"{quote(column)} = v.{name}" for column, name in zip(columns, names[1:], strict=True))
    source, params = _arrays(_fields(model, [pk.column, *columns]), rows)
    return f"UPDATE {table} SET {sets} FROM {source} AS v ({', '.join(names)}) WHERE {table}.{quote(pk.column)} = v.c0", params


def rows_insert(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[Row], *, returning: Sequence[str] = ()
) -> list[tuple]:
    """INSERT `rows` (tuples in `columns` order) into `model`'s table; return the `returning` columns per row.

    Returned rows come back in the order of `rows`, as Django's own bulk_create assumes on
    PostgreSQL and SQLite; callers that depend on it return a key column to check it. Constraint
    violations raise IntegrityError, aborting the caller's transaction.
    """
    if not rows:
        return []
    result: list[tuple] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for chunk in _chunks(rows, len(columns)):
                cursor.execute(*unnest_insert_sql(model, columns, chunk, returning=returning))
                if returning:
                    result.extend(cursor.fetchall())
            return result
        head, tail = _insert_head(model, columns, returning)
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for chunk in _chunks(_prepared(_fields(model, columns), rows), len(columns)):
            params = [value for row in chunk for value in row]
            cursor.execute(f"{head}VALUES {', '.join([one] * len(chunk))}{tail}", params)
            if returning:
                result.extend(cursor.fetchall())
    return result


def rows_update(model: type[models.Model], columns: Sequence[str], rows: Sequence[Row]) -> None:
    """UPDATE rows of `model`'s table by primary key: each row is (pk, *values in `columns` order).

    On PostgreSQL one `UPDATE … FROM UNNEST(…)` for all rows; elsewhere (SQLite, in-process, where
    a statement costs no round trip) one prepared UPDATE run for each row.
    """
    if not rows:
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for chunk in _chunks(rows, len(columns) + 1):
                cursor.execute(*unnest_update_sql(model, columns, chunk))
            return
        quote = connection.ops.quote_name
        pk = model._meta.pk
        sets = ", ".join(f"{quote(column)} = %s" for column in columns)
        cursor.executemany(
            f"UPDATE {quote(model._meta.db_table)} SET {sets} WHERE {quote(pk.column)} = %s",
            [[*row[1:], row[0]] for row in _prepared(_fields(model, [pk.column, *columns]), rows)],
        )


def int_list(values: Iterable[int]) -> str:
    """`1, 2, 3` for an SQL `IN (…)`: integers are written in (each checked to be one), not bound one by one."""
    return ", ".join(str(operator.index(value)) for value in values)


def uuid_list(values: Iterable[uuid.UUID]) -> str:
    """UUIDs for an SQL `IN (…)`, written in as each database stores them (only UUID objects have `.hex`)."""
    cast = "::uuid" if connection.vendor == "postgresql" else ""
    return ", ".join(f"'{value.hex}'{cast}" for value in values)


def db_time(value: datetime) -> Any:
    """A time as a parameter for a hand-written statement, stored the way Django stores it."""
    return connection.ops.adapt_datetimefield_value(value)


def read_time(value: Any) -> datetime | None:
    """A time read by a hand-written statement, aware (SQLite hands back naive UTC times)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def read_uuid(value: Any) -> uuid.UUID:
    """A UUID read by a hand-written statement (SQLite hands back its hex text)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def unnest_accumulate_sql(
    model: type[models.Model], keys: Sequence[str], sums: Sequence[str], latest: Sequence[str], rows: Sequence[Row]
) -> tuple[str, list[str]]:
    """PostgreSQL: the `INSERT … SELECT FROM UNNEST(…) ON CONFLICT … DO UPDATE` that `rows_accumulate` sends."""
    columns = (*keys, *sums, *latest)
    head, _ = _insert_head(model, columns, ())
    source, params = _arrays(_fields(model, columns), rows)
    return f"{head}SELECT * FROM {source}{_accumulate_tail(model, keys, sums, latest, 'GREATEST')}", params


def _accumulate_tail(
    model: type[models.Model], keys: Sequence[str], sums: Sequence[str], latest: Sequence[str], larger: str
) -> str:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    sets = [f"{quote(c)} = {table}.{quote(c)} + EXCLUDED.{quote(c)}" for c in sums]
    sets += [f"{quote(c)} = {larger}({table}.{quote(c)}, EXCLUDED.{quote(c)})" for c in latest]
    return f" ON CONFLICT ({', '.join(quote(c) for c in keys)}) DO UPDATE SET {', '.join(sets)}"


def rows_accumulate(
    model: type[models.Model], keys: Sequence[str], sums: Sequence[str], latest: Sequence[str], rows: Sequence[Row]
) -> None:
    """Add rows into `model`'s table by a unique key: one `INSERT … ON CONFLICT (keys) DO UPDATE` per chunk.

    Each row is (*keys, *sums, *latest) values: a new key is inserted as given; an existing one
    gets the `sums` columns added to its own and keeps the later of each `latest` column's two
    values. Atomic per row, so concurrent callers never lose an addition. A key must appear at
    most once in `rows` (PostgreSQL refuses to update one row twice in a statement): callers
    add up their rows per key first, and sort them by key, so that two callers lock the rows
    they share in the same order.
    """
    if not rows:
        return
    columns = (*keys, *sums, *latest)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for chunk in _chunks(rows, len(columns)):
                cursor.execute(*unnest_accumulate_sql(model, keys, sums, latest, chunk))
            return
        head, _ = _insert_head(model, columns, ())
        # SQLite's two-argument MAX is the larger of its arguments; times are ISO text, which sorts as time.
        tail = _accumulate_tail(model, keys, sums, latest, "MAX")
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for chunk in _chunks(_prepared(_fields(model, columns), rows), len(columns)):
            params = [value for row in chunk for value in row]
            cursor.execute(f"{head}VALUES {', '.join([one] * len(chunk))}{tail}", params)

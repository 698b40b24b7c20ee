"""The dry run over a million completions, side by side with the bare read of the same rows.

    .venv/bin/python bench/simulate.py [--users 100000] [--completions 1000000] [--days 90]
                                       [--database jifen_bench_simulate] [--keep] [--rounds 3]

Seeds (PostgreSQL COPY, as `seed_demo_data` does) `--completions` completions of one task by
`--users` users over the last `--days` days, stored in occurred_at order as a live table nearly is
(CLUSTER), and two draft rules of that task. Then times, in alternating rounds: (a) the bare read,
the dry run's own read (`rule_completions`: its SELECT through a raw server-side psycopg cursor)
with nothing done per row; (b) the dry run of each rule (the same read, replayed through the
engine); (c) the same SELECT by a plain psycopg connection, no Django at all; (d) the same SELECT
through Django's server-side cursor, as `.iterator()` reads (what the dry run read before).
Prints the medians, the ratios and the completions/s. `--keep` keeps the
database, and reuses it on the next run if it holds the same numbers of users and completions.
"""

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import database_drop, prepare  # noqa: E402

TASK = "bench-share"


def _seeded(users: int, completions: int) -> bool:
    from django.contrib.auth import get_user_model

    from apps.tasks.models import UserTaskRecord

    return (
        get_user_model().objects.filter(username__startswith="sim").count() == users
        and UserTaskRecord.objects.count() == completions
    )


def seed(users: int, completions: int, days: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from apps.community.bulk_write import BulkTable
    from apps.tasks.models import TaskConfig, UserTaskRecord

    now = timezone.now()
    user_model = get_user_model()
    started = time.perf_counter()
    with transaction.atomic():
        BulkTable(user_model, ["username", "password", "date_joined", "is_active"]).write(
            [(f"sim{i:06d}", "!", now, True) for i in range(users)], now=now
        )
    ids = list(user_model.objects.filter(username__startswith="sim").values_list("id", flat=True))
    config = TaskConfig.objects.create(task_type=TASK, method="POST", interface_name=r"^/share/(?P<blog>\d+)/$", status="in_use")
    table = BulkTable(UserTaskRecord, ["user_id", "task_id", "business_id", "event_id", "occurred_at", "decisions"])
    rng = random.Random(10)
    span_s = days * 86400
    for chunk in range(0, completions, 100_000):
        rows = [
            (
                rng.choice(ids),
                config.pk,
                str(rng.randrange(200)),
                uuid.uuid4(),
                now - timedelta(seconds=rng.randrange(span_s)),
                [],
            )
            for _ in range(min(100_000, completions - chunk))
        ]
        with transaction.atomic():
            table.write(rows, now=now)
    from django.db import connection

    from bench.harness import vacuum_analyze

    # Completions are recorded as events arrive, so a real table is stored nearly in occurred_at
    # order; rows generated in random order would make the read a random walk of the heap.
    with connection.cursor() as cursor:
        cursor.execute(f"CLUSTER {UserTaskRecord._meta.db_table} USING taskrecord_occurred")
    vacuum_analyze()
    print(f"seeded {users} users and {completions} completions in {time.perf_counter() - started:.1f} s")


def rules() -> list:
    from django.utils import timezone

    from apps.rules.models import ScoreRule, ScoreRuleObjectPoints

    ScoreRule.objects.filter(task_type=TASK).delete()
    start = timezone.now() - timedelta(days=400)
    count = ScoreRule.objects.create(
        task_type=TASK,
        score_type="sim-share",
        kind="count",
        statistical_period="day",
        required_number_of_times=2,
        points=5,
        award_limit_per_period=2,
        number_limit_all=50_000,
        can_repeat=False,
        start_time=start,
        status="editing",
    )
    ScoreRuleObjectPoints.objects.create(rule=count, business_id="7", points=50)
    streak = ScoreRule.objects.create(
        task_type=TASK,
        score_type="sim-streak",
        kind="streak",
        statistical_period="day",
        required_number_of_times=3,
        points=20,
        start_time=start,
        status="editing",
    )
    return [count, streak]


def bare_read(rule) -> tuple[float, int]:
    """The dry run's own read (`rule_completions`, its raw server-side cursor), nothing done per row."""
    from django.db import transaction

    from apps.rules.selectors.dry_run import Window, rule_completions, stream_whole_result

    started = time.perf_counter()
    rows = 0
    with transaction.atomic():
        stream_whole_result()
        for _row in rule_completions(task_type=rule.task_type, window=Window.of(rule, since=None)):
            rows += 1
    return time.perf_counter() - started, rows


def orm_read(rule) -> float:
    """The same SELECT through Django's server-side cursor (`chunked_cursor`, as `.iterator()` reads), nothing done per row."""
    from django.db import connection, transaction

    from apps.rules.selectors.dry_run import STREAM_CHUNK, Window, completions_query, stream_whole_result

    sql, params = completions_query(task_type=rule.task_type, window=Window.of(rule, since=None)).query.sql_with_params()
    started = time.perf_counter()
    # In a transaction, so the server-side cursor streams (no WITH HOLD).
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        stream_whole_result()
        cursor.execute(sql, params)
        while cursor.fetchmany(STREAM_CHUNK):
            pass
    return time.perf_counter() - started


def raw_read(rule) -> float:
    """The same SELECT through a plain psycopg connection: no Django, so no Django loader per timestamp."""
    import psycopg
    from django.db import connection

    from apps.rules.selectors.dry_run import STREAM_CHUNK, Window, completions_query

    sql, params = completions_query(task_type=rule.task_type, window=Window.of(rule, since=None)).query.sql_with_params()
    settings = connection.settings_dict
    started = time.perf_counter()
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname=settings["NAME"]) as conn:
        conn.execute("SET cursor_tuple_fraction = 1.0")
        with conn.cursor(name="raw") as cursor:
            cursor.execute(sql, params)
            while cursor.fetchmany(STREAM_CHUNK):
                pass
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--completions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--database", default="jifen_bench_simulate")
    parser.add_argument("--keep", action="store_true", help="keep the database; reuse it if it holds the same data")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    reuse = args.keep and _reuse(args)
    if not reuse:
        prepare(args.database)
        seed(args.users, args.completions, args.days)
    from apps.rules.selectors.dry_run import rule_dry_run

    for rule in rules():
        bare, dry, raw, orm = [], [], [], []
        for _ in range(args.rounds):
            raw.append(raw_read(rule))
            orm.append(orm_read(rule))
            seconds, rows = bare_read(rule)
            bare.append(seconds)
            result = rule_dry_run(rule=rule, since=None)
            dry.append(result.tally.seconds)
            assert result.tally.completions == rows, (result.tally.completions, rows)
        b, d, r, o = (statistics.median(times) for times in (bare, dry, raw, orm))
        t = result.tally
        print(f"{rule.score_type} ({rule.kind}): {rows} completions, {t.recipients} recipients, {t.awards} awards")
        print(f"  bare read {b:.2f} s ({rows / b:,.0f} rows/s)   dry run {d:.2f} s ({rows / d:,.0f} completions/s)")
        print(f"  dry run / bare read = {d / b:.1f}x   replay alone ~{d - b:.2f} s ({rows / (d - b):,.0f} completions/s)")
        print(f"  the same read by plain psycopg (no Django) {r:.2f} s: bare read / that = {b / r:.2f}x")
        print(f"  the same read through Django's cursor (.iterator()) {o:.2f} s: that / bare read = {o / b:.1f}x")
        print(f"  (medians of {args.rounds} alternating rounds)")
    if not args.keep:
        from django.db import connections

        connections.close_all()
        database_drop(args.database)
    return 0


def _reuse(args) -> bool:
    """Set Django up on the existing database if it holds the same data; False if it must be built again."""
    import os

    import psycopg

    from bench.harness import PG_HOST, PG_PORT, PG_USER, bench_env

    try:
        psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=args.database).close()
    except psycopg.OperationalError:
        return False
    os.environ.update(bench_env(args.database, f"jifen-bench-{os.getpid()}"))
    import django

    django.setup()
    if _seeded(args.users, args.completions):
        print(f"reusing {args.database}")
        return True
    from django.db import connections

    connections.close_all()
    return False


if __name__ == "__main__":
    sys.exit(main())

"""P9: the expiry job over 1,000,000 due lots of 100,000 accounts, against one INSERT … SELECT of the same entries.

    .venv/bin/python bench/p9_expiry.py [--accounts 100000] [--lots-per-account 10] [--rounds 3]

Target (SPEC §10, P9): `points_expire` (apps.ledger.services.expiry: chunks of accounts, each one
transaction that locks its users and writes entries, accounts, lots and lot takes in one
statement) takes at most 3 × the time of the single `INSERT … SELECT` that writes the same expiry
entries (same serial numbers, sequence numbers, balances and keys) from the same data, without
locks, lots or accounts: the least any expiry job must write.

1. Database `jifen_bench_p9_base` (dropped, created, migrated): a year-end point type `coins`,
   `--accounts` users, each with a main account and a `coins` account, and `--lots-per-account`
   awards per coins account (one ledger entry and one lot each, 10 points, earned in 2023, so due
   by 2025-01-01 in the site's zone), written with INSERT … SELECT generate_series; then VACUUM
   ANALYZE. `verify_ledger`'s lot check (invariant 6) holds on it.
2. Each round copies it twice (CREATE DATABASE … TEMPLATE, a file copy), then times, in an order
   that alternates between rounds: the INSERT … SELECT on one copy (psycopg, one statement, its
   COMMIT included), and `points_expire(at=now)` in this process on the other (Django connected
   to it). The job's result is checked: every due lot empty, one entry per account, the lots
   agreeing with the balances, and the same entries as the INSERT … SELECT's.
3. The medians and their ratio; PASS when job / INSERT … SELECT ≤ 3.

The machine's load is printed beside the figures: two cores shared with other jobs move both sides.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import harness

BASE, ONE, OTHER = "jifen_bench_p9_base", "jifen_bench_p9_one", "jifen_bench_p9_other"
TARGET = 3.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--lots-per-account", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=None, help="accounts per transaction (JIFEN_EXPIRY_CHUNK)")
    parser.add_argument("--keep-database", action="store_true", help="leave the base database for another run")
    parser.add_argument("--reuse-database", action="store_true", help="keep a base database seeded with these sizes")
    return parser.parse_args()


def psql(database: str, sql: str, *, autocommit: bool = False) -> None:
    import psycopg

    with psycopg.connect(
        host=harness.PG_HOST, port=harness.PG_PORT, user=harness.PG_USER, dbname=database, autocommit=autocommit
    ) as conn:
        conn.execute(sql)


def seed(accounts: int, per_account: int) -> float:
    """Fill the base database; return the seconds it took."""
    started = time.perf_counter()
    sql = f"""
    INSERT INTO ledger_pointtype (code, name, spendable, expiry, expiry_months, is_default, position, created_at)
        VALUES ('coins', 'Coins', true, 'year_end', NULL, false, 1, now());
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
        SELECT '!', false, 'p9u' || lpad(g::text, 7, '0'), '', '', '', false, true, now() FROM generate_series(1, {accounts}) g;
    INSERT INTO ledger_account (user_id, point_type_id, earned_total, balance, last_seq, last_activity_at, created_at, updated_at)
        SELECT u.id, t.id, 0, 0, 0, NULL, now(), now() FROM auth_user u, ledger_pointtype t
        WHERE t.is_default AND u.username LIKE 'p9u%';
    INSERT INTO ledger_account (user_id, point_type_id, earned_total, balance, last_seq, last_activity_at, created_at, updated_at)
        SELECT u.id, t.id, 10 * {per_account}, 10 * {per_account}, {per_account}, now(), now(), now()
        FROM auth_user u, ledger_pointtype t WHERE t.code = 'coins' AND u.username LIKE 'p9u%';
    INSERT INTO ledger_scorerecord (account_id, user_id, point_type_id, serial_number, seq, trade_amount, amount_before_trade,
            amount_after_trade, business_type, kind, location, country, lang_type, idempotency_key, created_at)
        SELECT a.id, a.user_id, a.point_type_id, 'P9-' || a.id || '-' || k, k, 10, 10 * (k - 1), 10 * k, 'p9', 'award',
            '', '', '', 'p9:' || a.id || ':' || k, now()
        FROM ledger_account a JOIN ledger_pointtype t ON t.id = a.point_type_id, generate_series(1, {per_account}) k
        WHERE t.code = 'coins';
    INSERT INTO ledger_pointlot (account_id, entry_id, earned_at, expires_at, amount, remaining)
        SELECT e.account_id, e.id, TIMESTAMPTZ '2023-01-01 12:00+08' + (e.seq || ' days')::interval,
            TIMESTAMPTZ '2025-01-01 00:00+08', 10, 10
        FROM ledger_scorerecord e WHERE e.business_type = 'p9';
    """  # noqa: S608 - integers only
    psql(BASE, sql)
    psql(BASE, "VACUUM ANALYZE", autocommit=True)
    return time.perf_counter() - started


def backend_cpu_s(pid: int) -> float | None:
    """CPU seconds the PostgreSQL backend `pid` has used (user + system), if the server runs on this machine."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115, PTH123
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_used(pid: int, before: float | None) -> float | None:
    after = backend_cpu_s(pid)
    return None if before is None or after is None else after - before


def seeded_with(accounts: int, lots: int) -> bool:
    """Whether the base database exists with exactly this data (from an earlier --keep-database run)."""
    import psycopg

    try:
        with psycopg.connect(host=harness.PG_HOST, port=harness.PG_PORT, user=harness.PG_USER, dbname=BASE) as conn:
            found = conn.execute(
                "SELECT (SELECT count(*) FROM ledger_pointlot WHERE remaining > 0), "
                "(SELECT count(*) FROM ledger_account a JOIN ledger_pointtype t ON t.id = a.point_type_id WHERE t.code = 'coins')"
            ).fetchone()
    except psycopg.Error:
        return False
    return found == (lots, accounts)


def copy_of_base(name: str) -> None:
    import psycopg

    with psycopg.connect(
        host=harness.PG_HOST, port=harness.PG_PORT, user=harness.PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{BASE}" STRATEGY FILE_COPY')


def baseline_sql(at, now) -> tuple[str, list]:
    """The one statement: the same entries the job writes (serials, seq, balances, keys), nothing else."""
    from apps.core.clock import serial_stamp
    from apps.ledger.services.expiry import key_prefix

    sql = """
    INSERT INTO ledger_scorerecord (account_id, user_id, point_type_id, serial_number, seq, trade_amount, amount_before_trade,
        amount_after_trade, business_type, kind, location, country, lang_type, idempotency_key, created_at)
    SELECT a.id, a.user_id, a.point_type_id, %s::text || '-' || a.id || '-' || (a.last_seq + 1), a.last_seq + 1, -s.total,
        a.balance, a.balance - s.total, 'expiry', 'expiry', '', '', '', %s::text || a.id, %s
    FROM ledger_account a JOIN (
        SELECT account_id, SUM(remaining)::bigint AS total FROM ledger_pointlot
        WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= %s GROUP BY account_id
    ) s ON s.account_id = a.id
    WHERE a.balance >= s.total
    """
    return sql, [serial_stamp(now), key_prefix(at), now, at]


def time_baseline(database: str, at, now) -> tuple[float, float | None, int]:
    """Wall seconds, the backend's CPU seconds, and the entries written."""
    import psycopg

    sql, params = baseline_sql(at, now)
    with psycopg.connect(host=harness.PG_HOST, port=harness.PG_PORT, user=harness.PG_USER, dbname=database) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # connected before the clock starts
        cpu = backend_cpu_s(pid)
        started = time.perf_counter()
        written = conn.execute(sql, params).rowcount
        conn.commit()
        return time.perf_counter() - started, cpu_used(pid, cpu), written


def entries_of(database: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(host=harness.PG_HOST, port=harness.PG_PORT, user=harness.PG_USER, dbname=database) as conn:
        return conn.execute(
            "SELECT account_id, seq, trade_amount, amount_before_trade, amount_after_trade, idempotency_key "
            "FROM ledger_scorerecord WHERE kind = 'expiry' ORDER BY account_id"
        ).fetchall()


def time_job(at, chunk_size) -> tuple[float, float | None, object]:
    """Wall seconds, the backend's CPU seconds, and the job's report."""
    from django.db import connection

    from apps.ledger.services.expiry import points_expire

    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    cpu = backend_cpu_s(pid)
    started = time.perf_counter()
    report = points_expire(at=at, chunk_size=chunk_size)
    elapsed = time.perf_counter() - started
    return elapsed, cpu_used(pid, cpu), report


def check_job(accounts: int, lots: int) -> None:
    from django.db import connection

    from apps.ledger.services.lots import lots_check

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ledger_pointlot WHERE remaining > 0")
        live = cursor.fetchone()[0]
        cursor.execute("SELECT count(*), count(DISTINCT account_id) FROM ledger_scorerecord WHERE kind = 'expiry'")
        entries, distinct = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM ledger_lottake")  # an expiry records none: nothing gives it back
        takes = cursor.fetchone()[0]
    bad = lots_check()
    if live or entries != accounts or distinct != accounts or takes or bad:
        sys.exit(
            f"the job left {live} live lots, {entries} entries of {distinct} accounts, {takes} takes, {len(bad)} bad accounts"
        )


def main() -> None:
    args = parse_args()
    lots = args.accounts * args.lots_per_account
    env = harness.bench_env(OTHER, f"jifen-bench-{os.getpid()}")
    env["JIFEN_VAR_DIR"] = str(harness.ROOT / "var" / "bench-p9")
    print(f"P9: expiry of {lots:,} lots of {args.accounts:,} accounts ({args.lots_per_account} lots each), {args.rounds} rounds")
    if args.reuse_database and seeded_with(args.accounts, lots):
        print(f"reusing {BASE}")
    else:
        harness.database_recreate(BASE)
        base_env = {**os.environ, **env, "DATABASE_URL": env["DATABASE_URL"].replace(OTHER, BASE)}
        migrate = [harness.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=harness.ROOT, env=base_env, check=True)
        print(f"seeded in {seed(args.accounts, args.lots_per_account):.1f} s")

    copy_of_base(OTHER)
    os.environ.update(env)
    if str(harness.ROOT) not in sys.path:
        sys.path.insert(0, str(harness.ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    chunk = args.chunk_size or settings.JIFEN_EXPIRY_CHUNK
    baseline_times, job_times, baseline_cpu, job_cpu = [], [], [], []
    for round_number in range(args.rounds):
        at = now = timezone.now()
        connection.close()
        copy_of_base(ONE)
        copy_of_base(OTHER)
        load = os.getloadavg()[0]
        sides = ["baseline", "job"] if round_number % 2 == 0 else ["job", "baseline"]
        for side in sides:
            if side == "baseline":
                seconds, cpu, written = time_baseline(ONE, at, now)
                if written != args.accounts:
                    sys.exit(f"the INSERT … SELECT wrote {written} entries, not {args.accounts}")
                baseline_times.append(seconds)
                baseline_cpu.append(cpu)
            else:
                seconds, cpu, report = time_job(at, chunk)
                if (report.accounts, report.lots) != (args.accounts, lots):
                    sys.exit(f"the job expired {report.lots} lots of {report.accounts} accounts")
                job_times.append(seconds)
                job_cpu.append(cpu)
        check_job(args.accounts, lots)
        connection.close()
        same = [row[:5] for row in entries_of(ONE)] == [row[:5] for row in entries_of(OTHER)]
        if not same:
            sys.exit("the job's entries differ from the INSERT … SELECT's")
        cpu_text = ""
        if baseline_cpu[-1] and job_cpu[-1] is not None:
            cpu_text = f"; PostgreSQL CPU {baseline_cpu[-1]:.2f} s vs {job_cpu[-1]:.2f} s ({job_cpu[-1] / baseline_cpu[-1]:.2f}×)"
        print(
            f"round {round_number + 1}: INSERT … SELECT {baseline_times[-1]:.2f} s, job {job_times[-1]:.2f} s "
            f"({job_times[-1] / baseline_times[-1]:.2f}×){cpu_text}, load average {load:.1f}"
        )

    baseline, job = statistics.median(baseline_times), statistics.median(job_times)
    ratio = job / baseline
    print(f"INSERT … SELECT of {args.accounts:,} expiry entries: median {baseline:.2f} s")
    print(f"points_expire, chunks of {chunk:,} accounts:      median {job:.2f} s ({lots / job:,.0f} lots/s)")
    if all(baseline_cpu) and None not in job_cpu:
        cpu_ratio = statistics.median(job_cpu) / statistics.median(baseline_cpu)
        print(
            f"PostgreSQL backend CPU: median {statistics.median(baseline_cpu):.2f} s vs {statistics.median(job_cpu):.2f} s "
            f"({cpu_ratio:.2f}×; what the database did, whatever else the machine ran)"
        )
    print(f"ratio {ratio:.2f} (target ≤ {TARGET:g}): {'PASS' if ratio <= TARGET else 'MISS'}")
    connection.close()
    if not args.keep_database:
        for name in (ONE, OTHER, BASE):
            harness.database_drop(name)


if __name__ == "__main__":
    main()

"""P3: events/s from Redis through Celery workers into PostgreSQL, against pgbench running the same SQL.

    .venv/bin/python bench/p3_throughput.py [--users 2000] [--events 5000] [--pgbench-seconds 20]

Target (SPEC §10 P3): ours ≥ 50 % of pgbench running the same SQL per event in batches of 50, on the
same database and the same 2 cores. Both sides are measured in this one run:

* ours: `--events` post events (random users) are pushed into the Redis inbox with the real push
  (`worker_inbox().push_many`) before the worker starts; then one `celery worker --concurrency 2`
  drains them. The rate is events / (last completion's updated_at − first completion's created_at),
  both written by the worker, so the worker's start-up is not counted.
* pgbench: a script generated below that sends, for 50 events inside one BEGIN…COMMIT, the
  statements the pipeline sends for them, one round trip each (`-M simple`, like Django's
  client-side binding), run with `pgbench -n -c 2 -j 2 -T 20`; events/s = tps × 50.

State: every user has posted once before (warm-up in this process), so both sides run the steady
state: the day's and the lifetime progress rows exist, accounts exist, the `first-post` cap (100
places) is taken, and `post-each` (5 points, 10 a day) awards each event.

The pgbench script must send the same statements in kind and number as the pipeline. The benchmark
captures what `events_process_batch` sends for 50 events of distinct users (CaptureQueriesContext,
with the rules cache fresh, as in a worker started after the warm-up), classifies both sides by
statement kind, and refuses to report a ratio if they differ. Per event, in this steady state
(see `_event_block`):

    lock pass, per distinct user:  SELECT ledger_account FOR UPDATE
    _UserRuleState:                SELECT rules_userscoreinfo (the user's rows of both rules);
                                   SELECT rules_rulerecipient (capped rules)
    completion_create:             INSERT tasks_usertaskrecord (with the engine's decisions)
    save:                          UPDATE rules_userscoreinfo × 2 (executemany: one pipelined round trip;
                                   pgbench: two statements in one `\\;` compound query)
                                   INSERT rules_countedcompletion (2 rows, INSERT … SELECT FROM UNNEST)
    ledger_post_entries:           INSERT ledger_scorerecord; UPDATE ledger_account
    = 8 round trips, 9 statements per event, the account lock counted per event
    per batch: SELECT tasks_taskconfig, SELECT auth_user (IN …) outside the transaction; BEGIN;
    SELECT tasks_usertaskrecord (the batch's event ids already recorded); COMMIT.

pgbench writes the same rows and columns, with valid keys (new event ids from gen_random_uuid(),
each account's next seq and balance read under its lock), but does not evaluate rules: the progress
counters it writes are not recomputed. Not compared: the active-rules cache's change-stamp query
(`SELECT MAX(updated_at), MAX(id) FROM rules_scorerule`), at most once per JIFEN_RULES_REFRESH_S per
process, not per event.
"""

# ruff: noqa: S608 - the SQL built here is a pgbench script from the benchmark's own ids, not a query with outside input

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import harness

DATABASE = "jifen_bench_p3"
PGBENCH_BATCH = 50
TARGET_RATIO = 0.5
POLL_S = 0.2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--events", type=int, default=5000, help="events pushed for our side")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, and pgbench clients")
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")
    parser.add_argument("--timeout-s", type=float, default=900, help="give up if our side has not finished by then")
    parser.add_argument(
        "--wake-each-process",
        action="store_true",
        help="diagnostic: after the pushes, add one wake-up per worker process (what a steady stream of pushes "
        "produces), so that every process drains; the default measures what the real pushes leave behind",
    )
    return parser.parse_args()


# --- What the pipeline sends ------------------------------------------------------------------


def _single_kind(text: str) -> str | None:
    verb = text.split(" ", 1)[0].upper()
    if verb in ("BEGIN", "COMMIT", "SAVEPOINT"):
        return verb
    if verb == "RELEASE":
        return "RELEASE SAVEPOINT"
    if "MAX(" in text.upper():
        return None  # the rules cache's change stamp: time-based, not per event
    table = re.search(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', text, re.IGNORECASE).group(1)
    return f"{verb} {table}" + (" FOR UPDATE" if text.upper().endswith("FOR UPDATE") else "")


def statement_kind(sql: str) -> str | None:
    """A round trip's kind: verb, table, FOR UPDATE, and ×N for N statements in one round trip.

    None for what is left out of the comparison. Understands Django's record of an executemany
    ("2 times: UPDATE …") and pgbench's compound commands ("UPDATE … \\; UPDATE …").
    """
    text = re.sub(r"\s*\\gset\b.*$", "", " ".join(sql.split()).rstrip(";"))
    times = re.match(r"(\d+) times: (.*)", text)
    parts = [times.group(2)] * int(times.group(1)) if times else [p.strip().rstrip(";") for p in text.split("\\;")]
    kinds = {_single_kind(p) for p in parts}
    if len(kinds) != 1:
        raise ValueError(f"mixed statements in one round trip: {text[:200]}")
    kind = kinds.pop()
    return f"{kind} ×{len(parts)}" if kind and len(parts) > 1 else kind


def warm_up(user_ids: list[int]) -> None:
    """One post per user, in this process, in user order: afterwards every user is in the steady state."""
    from apps.tracking.services import events_process_batch

    started = time.monotonic()
    for i in range(0, len(user_ids), 100):
        counts = events_process_batch(payloads=[harness.post_event(uid) for uid in user_ids[i : i + 100]])
        if counts.get("processed", 0) != len(user_ids[i : i + 100]):
            raise RuntimeError(f"warm-up batch not processed: {dict(counts)}")
    print(f"warm-up: {len(user_ids)} events (one per user) processed in this process in {time.monotonic() - started:.1f} s")


def capture_batch(user_ids: list[int]) -> tuple[Counter, list[str], dict]:
    """Process 50 events of distinct users here; return round-trip kinds, the SQL, and one completion's decisions."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.rules.selectors import active_rules_clear, active_rules_for
    from apps.tasks.models import UserTaskRecord
    from apps.tracking.services import events_process_batch

    # A worker started now loads the rules with the cap already full; this process loaded them
    # before the warm-up filled it, so it would still try to take a place. Reload them, outside
    # the capture: the cache's load is once per process, not per event.
    active_rules_clear()
    active_rules_for(task_type="post")
    payloads = [harness.post_event(uid) for uid in random.sample(user_ids, PGBENCH_BATCH)]
    with CaptureQueriesContext(connection) as ctx:
        counts = events_process_batch(payloads=payloads)
    if counts.get("processed", 0) != PGBENCH_BATCH:
        raise RuntimeError(f"captured batch not processed: {dict(counts)}")
    statements = [q["sql"] for q in ctx.captured_queries]
    kinds = Counter(k for k in map(statement_kind, statements) if k)
    decisions = UserTaskRecord.objects.get(event_id=payloads[0]["event_id"]).decisions
    return kinds, statements, decisions


# --- The pgbench script -----------------------------------------------------------------------


def _select(model, where: str, tail: str = "") -> str:
    """Django's SELECT of every concrete column of `model`."""
    table = model._meta.db_table
    cols = ", ".join(f'"{table}"."{field.column}"' for field in model._meta.concrete_fields)
    return f'SELECT {cols} FROM "{table}" WHERE {where}{tail}'


class ScriptContext:
    """The ids and constants the script needs, read from the benchmark's database after the warm-up."""

    def __init__(self, decisions: list[dict], user_ids: list[int]):
        from django.utils import timezone

        from apps.rules.models import ScoreRule, UserScoreInfo
        from apps.rules.periods import period_bounds
        from apps.rules.services.scoring import site_timezone
        from apps.tasks.models import TaskConfig

        self.task_id = TaskConfig.objects.get(task_type="post").pk
        self.each = ScoreRule.objects.get(score_type="post-each")
        self.first = ScoreRule.objects.get(score_type="first-post")
        now, tz = timezone.now(), site_timezone()
        day_start, _ = period_bounds(self.each.statistical_period, now, tz)
        self.lifetime_start = period_bounds(self.first.statistical_period, now, tz)[0]
        self.earliest = min(day_start, self.lifetime_start).isoformat()
        self.decisions_json = json.dumps(decisions).replace("'", "''")
        self.first_user_id = user_ids[0]
        # The warm-up created each user's two progress rows together, in user order and rule order,
        # so a user's row ids follow from the user id. Checked here, not assumed.
        first_info = UserScoreInfo.objects.filter(user_id=user_ids[0], achievement_type=self.each).get().pk
        self.info_base = first_info
        for rule, offset in ((self.each, 0), (self.first, 1)):
            rows = dict(UserScoreInfo.objects.filter(achievement_type=rule).values_list("user_id", "id"))
            wrong = [u for u in user_ids if rows.get(u) != first_info + 2 * (u - user_ids[0]) + offset]
            if wrong:
                raise RuntimeError(f"progress rows of {rule} not laid out as the script assumes (user {wrong[0]})")

    def info_ids(self, u: str) -> tuple[str, str]:
        """pgbench expressions for user :u's post-each and first-post progress row ids."""
        each = f"({self.info_base} + 2 * (:{u} - {self.first_user_id}))"
        return each, f"({each} + 1)"


def _account_reads(u: str, prefix: str) -> list[str]:
    """account_lock: the locking read of an existing account (kept for the event: balance, seq)."""
    from apps.ledger.models import Account

    where = f'"ledger_account"."user_id" = :{u}'
    return [_select(Account, where, f' ORDER BY "ledger_account"."id" ASC LIMIT 1 FOR UPDATE \\gset {prefix}')]


def _event_block(ctx: ScriptContext, u: str, a: str) -> list[str]:
    """The statements `_event_apply` sends for one post event in the steady state; `a` prefixes the account's values."""
    from apps.rules.models import UserScoreInfo

    each, first = ctx.each, ctx.first
    each_info, first_info = ctx.info_ids(u)
    t = '"rules_userscoreinfo"'
    info_update = (
        "UPDATE rules_userscoreinfo SET achievement_amount_now = {count}, achieved = true, awards_in_period = {awards}, "
        "streak_length = 0, updated_at = clock_timestamp() WHERE id = {id}"
    )
    points = each.points
    return [
        _select(
            UserScoreInfo,
            f'({t}."deleted_at" IS NULL AND {t}."achievement_type_id" IN ({each.pk}, {first.pk}) '
            f'AND {t}."period_start" >= \'{ctx.earliest}\'::timestamptz AND {t}."user_id" = :{u})',
            f' ORDER BY {t}."period_start" DESC, {t}."achievement_type_id" ASC;',
        ),
        'SELECT "rules_rulerecipient"."rule_id" AS "rule_id" FROM "rules_rulerecipient" '
        f'WHERE ("rules_rulerecipient"."rule_id" IN ({first.pk}) AND "rules_rulerecipient"."user_id" = :{u});',
        'INSERT INTO "tasks_usertaskrecord" ("deleted_at", "user_id", "task_id", "business_id", "event_id", "occurred_at", '
        '"method", "path", "status_code", "location", "country", "lang_type", "decisions", "reversed_at", '
        '"reversed_by_id", "created_at", "updated_at") VALUES (NULL, '
        f":{u}, {ctx.task_id}, '', gen_random_uuid(), clock_timestamp(), 'POST', '/posts/', 302, '127.0.0.1', 'CN', "
        f"'zh-hans', '{ctx.decisions_json}'::jsonb, NULL, NULL, clock_timestamp(), clock_timestamp()) "
        'RETURNING "tasks_usertaskrecord"."id", "tasks_usertaskrecord"."event_id" \\gset r_',
        # post-each counts and awards; first-post counts (cap reached). Counters: see the docstring.
        info_update.format(count=f"(:{a}last_seq + 1)", awards=f"(:{a}last_seq + 1)", id=each_info)
        + " \\; "
        + info_update.format(count=f"(:{a}last_seq + 1)", awards=0, id=first_info)
        + ";",
        'INSERT INTO "rules_countedcompletion" ("rule_id", "score_info_id", "completion_id", "dedupe_key", "reversed_at", '
        f"\"created_at\") SELECT * FROM UNNEST(('{{{each.pk},{first.pk}}}'::int2[])::bigint[], "
        f"(ARRAY[{each_info}, {first_info}])::bigint[], (ARRAY[:r_id, :r_id])::bigint[], "
        "('{NULL,NULL}')::varchar[], ('{NULL,NULL}')::timestamp with time zone[], "
        "(ARRAY[clock_timestamp(), clock_timestamp()])::timestamp with time zone[]) "
        'RETURNING "rules_countedcompletion"."id";',
        'INSERT INTO "ledger_scorerecord" ("account_id", "user_id", "serial_number", "seq", "trade_amount", '
        '"amount_before_trade", "amount_after_trade", "business_type", "kind", "score_info_id", "rule_id", '
        '"completion_id", "reverses_id", "location", "country", "lang_type", "idempotency_key", "created_at") VALUES ('
        f":{a}id, :{u}, to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS') || '-' || :{a}id || '-' || (:{a}last_seq + 1), "
        f"(:{a}last_seq + 1), {points}, :{a}balance, (:{a}balance + {points}), '{each.score_type}', 'award', "
        f"{each_info}, {each.pk}, :r_id, NULL, '127.0.0.1', 'CN', 'zh-hans', 'award:' || ':r_event_id' || ':{each.pk}', "
        'clock_timestamp()) RETURNING "ledger_scorerecord"."id";',
        f'UPDATE "ledger_account" SET "balance" = (:{a}balance + {points}), "last_seq" = (:{a}last_seq + 1), '
        f'"last_activity_at" = clock_timestamp(), "updated_at" = clock_timestamp() WHERE "ledger_account"."id" = :{a}id;',
    ]


def pgbench_script(ctx: ScriptContext, *, users: int) -> str:
    """50 events of 50 distinct random users (one from each 1/50 of the users, so ascending, as the lock pass sorts them)."""
    from apps.tasks.models import TaskConfig

    stride = users // PGBENCH_BATCH
    names = [f"u{i}" for i in range(PGBENCH_BATCH)]
    lines = [f"\\set {u} {ctx.first_user_id + i * stride} + random(0, {stride - 1})" for i, u in enumerate(names)]
    # _screen: outside the transaction, like Django's autocommit reads before transaction.atomic().
    lines.append(
        _select(
            TaskConfig,
            '("tasks_taskconfig"."deleted_at" IS NULL AND "tasks_taskconfig"."task_type" IN (\'post\'))',
            ' ORDER BY "tasks_taskconfig"."priority" DESC, "tasks_taskconfig"."id" ASC;',
        )
    )
    user_list = ", ".join(f":{u}" for u in names)
    lines.append(f'SELECT "auth_user"."id" AS "pk" FROM "auth_user" WHERE "auth_user"."id" IN ({user_list});')
    lines.append("BEGIN;")
    # The batch's look-up of already recorded event ids (all new here). Constant UUIDs, as the
    # pipeline sends literals: a volatile gen_random_uuid() here would defeat the index.
    lines += [f"\\set e{i} random(1, 2000000000)" for i in range(len(names))]
    new_ids = ", ".join(f"md5(:e{i}::text)::uuid" for i in range(len(names)))
    record = '"tasks_usertaskrecord"'
    lines.append(f'SELECT {record}."event_id" AS "event_id" FROM {record} WHERE {record}."event_id" IN ({new_ids});')
    for i, u in enumerate(names):  # each account locked at its user's first event, ascending user ids
        lines += _account_reads(u, f"a{i}_")
        lines += _event_block(ctx, u, f"a{i}_")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def script_kinds(script: str) -> Counter:
    return Counter(k for line in script.splitlines() if line and not line.startswith("\\") and (k := statement_kind(line)))


# --- Running both sides -----------------------------------------------------------------------


def run_ours(env: dict[str, str], user_ids: list[int], args: argparse.Namespace) -> tuple[float, dict]:
    from django.db.models import Max, Min

    from apps.tasks.models import UserTaskRecord
    from apps.tracking.handoff import worker_inbox

    payloads = [harness.post_event(random.choice(user_ids)) for _ in range(args.events)]
    first_new_id = (UserTaskRecord.all_objects.aggregate(m=Max("id"))["m"] or 0) + 1
    inbox = worker_inbox()
    started = time.monotonic()
    for i in range(0, len(payloads), 500):
        inbox.push_many(payloads[i : i + 500])
    print(f"ours: pushed {len(payloads)} events into the inbox in {time.monotonic() - started:.2f} s (backlog {inbox.backlog()})")
    if args.wake_each_process:
        for _ in range(args.concurrency - 1):
            inbox.wake()
        print(f"ours: DIAGNOSTIC: {args.concurrency - 1} extra wake-up(s) pushed, so every worker process drains")
    worker = harness.Worker(env, concurrency=args.concurrency, name="p3")
    try:
        rows = UserTaskRecord.all_objects.filter(id__gte=first_new_id)
        deadline = time.monotonic() + args.timeout_s
        done, busy = 0, []
        while done < len(payloads):
            if not worker.alive():
                raise RuntimeError("the worker exited:\n" + worker.log())
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {len(payloads)} events processed after {args.timeout_s} s")
            time.sleep(POLL_S)
            done = rows.count()
            if done:
                busy.append(_busy_sessions(args.database))
        wall_s = time.monotonic() - worker.started_at
    finally:
        worker.stop()
    span = rows.aggregate(first=Min("created_at"), last=Max("updated_at"))
    busy_s = (span["last"] - span["first"]).total_seconds()
    samples = max(1, len(busy))
    info = {
        "wall_s": wall_s,
        "busy_s": busy_s,
        "sessions": sum(b for b, _ in busy) / samples,
        "waiting": sum(w for _, w in busy) / samples,
    }
    return len(payloads) / busy_s, info


def _busy_sessions(database: str) -> tuple[int, int]:
    """Worker sessions now inside a statement or a transaction, and those of them waiting for a lock."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE wait_event_type = 'Lock') FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'",
            [database],
        )
        return cursor.fetchone()


def run_pgbench(script: str, args: argparse.Namespace) -> tuple[float, str]:
    """Return pgbench's tps (excluding connection time) and its output."""
    with tempfile.TemporaryDirectory(prefix="jifen-p3-") as tmp:
        path = Path(tmp) / "p3_batch50.sql"
        path.write_text(script)
        keep = harness.ROOT / "var" / "bench"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)
        command = [
            "pgbench", "-h", harness.PG_HOST, "-p", str(harness.PG_PORT), "-U", harness.PG_USER, "-n",
            "-c", str(args.concurrency), "-j", str(args.concurrency), "-T", str(args.pgbench_seconds),
            "-f", str(path), args.database,
        ]  # fmt: skip
        print("pgbench:", " ".join(command[:-3]), str(keep / path.name), args.database)
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if not match or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench output not understood or transactions failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1)), result.stdout


def _ledger_entries() -> int:
    from apps.ledger.models import ScoreRecord

    return ScoreRecord.objects.count()


def _ledger_problems() -> str:
    """'' when SPEC §5's ledger invariants hold over every entry both sides wrote, else what fails."""
    from apps.ledger.selectors import ledger_problems

    problems = ledger_problems()
    return f"{len(problems)} problem(s), first: {problems[0]}" if problems else ""


def compare_kinds(ours: Counter, theirs: Counter) -> bool:
    print(f"\nround trips for {PGBENCH_BATCH} events (pipeline, captured | pgbench script):")
    same = True
    for kind in sorted(set(ours) | set(theirs)):
        mark = "" if ours[kind] == theirs[kind] else "   <-- differs"
        same &= not mark
        print(f"  {ours[kind]:5d} | {theirs[kind]:5d}  {kind}{mark}")
    total_ours, total_theirs = sum(ours.values()), sum(theirs.values())
    print(f"  {total_ours:5d} | {total_theirs:5d}  total ({total_ours / PGBENCH_BATCH:.1f} round trips per event)")
    return same


def main() -> int:
    args = parse_args()
    env = harness.prepare(args.database)
    from django.conf import settings

    print(
        f"P3 inputs: {args.users} users, rules for `post`: post-each (count/day/N=1/limit 10, 5 points) and "
        f"first-post (count/lifetime/N=1/limit 1/cap 100, 10 points); {args.events} events for ours; "
        f"worker --concurrency {args.concurrency}, JIFEN_BATCH_SIZE={settings.JIFEN_BATCH_SIZE}; "
        f"pgbench -c {args.concurrency} -j {args.concurrency} -T {args.pgbench_seconds}, {PGBENCH_BATCH} events per transaction; "
        f"database {args.database}, queue {env['JIFEN_QUEUE']}"
    )
    try:
        user_ids = harness.demo_rules_and_users(args.users)
        if user_ids[-1] - user_ids[0] + 1 != len(user_ids) or args.users % PGBENCH_BATCH:
            raise RuntimeError("the script draws users from a contiguous id range of a multiple of 50 users")
        warm_up(user_ids)
        captured, _statements, decisions = capture_batch(user_ids)
        ctx = ScriptContext(decisions, user_ids)
        script = pgbench_script(ctx, users=len(user_ids))
        if not compare_kinds(captured, script_kinds(script)):
            print("\nERROR: the pgbench script no longer sends what the pipeline sends; update bench/p3_throughput.py.")
            return 2

        harness.vacuum_analyze()
        ours, info = run_ours(env, user_ids, args)
        harness.vacuum_analyze()
        entries_before = _ledger_entries()
        tps, _output = run_pgbench(script, args)
        written = _ledger_entries() - entries_before
        problems = _ledger_problems()
        print(f"pgbench wrote {written} ledger entries; ledger invariants after both runs: {problems or 'OK'}")
        if problems:
            print("ERROR: the pgbench script wrote rows the pipeline would not have written")
            return 1
    finally:
        harness.redis_keys_delete(env["JIFEN_QUEUE"])
        if not args.keep_database:
            from django.db import connections

            connections.close_all()
            harness.database_drop(args.database)

    theirs = tps * PGBENCH_BATCH
    ratio = ours / theirs
    print(
        f"\nours:    {ours:8.1f} events/s  ({args.events} events in {info['busy_s']:.2f} s from the first completion "
        f"to the last; {info['wall_s']:.1f} s wall from worker start; "
        f"on average {info['sessions']:.2f} worker DB sessions busy of {args.concurrency}, "
        f"{info['waiting']:.2f} of them waiting for a row lock)"
    )
    print(f"pgbench: {theirs:8.1f} events/s  ({tps:.2f} tps × {PGBENCH_BATCH} events)")
    print(f"ratio ours/pgbench = {ratio:.1%}   target ≥ {TARGET_RATIO:.0%}   {'PASS' if ratio >= TARGET_RATIO else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""P3: events/s from Redis through Celery workers into PostgreSQL, against pgbench running the same SQL.

    .venv/bin/python bench/p3_throughput.py [--users 2000] [--events 20000] [--pgbench-seconds 20]

Target (SPEC §10 P3): ours ≥ 50 % of pgbench running the same SQL per event in batches of 50, on the
same database and the same 2 cores. Both sides are measured in this one run:

* ours: `--events` post events (random users) are pushed into the Redis inbox with the real push
  (`worker_inbox().push_many`) before the worker starts; then one `celery worker --concurrency 2`
  drains them. The rate is events / (last completion's updated_at − first completion's created_at),
  both written by the worker, so the worker's start-up is not counted.
* pgbench: a script generated below that sends, for 50 events inside one BEGIN…COMMIT, the
  statements the pipeline sends for a batch of 50, one round trip each (`-M simple`, like
  Django's client-side binding), run with `pgbench -n -c 2 -j 2 -T 20`; events/s = tps × 50.

State: every user has posted once before (warm-up in this process), so both sides run the steady
state: the day's and the lifetime progress rows exist, accounts exist, the `first-post` cap (100
places) is taken, and `post-each` (5 points, 10 a day) awards each event.

The pgbench script must send the same statements in kind, number and rows as the pipeline. The
benchmark captures what `events_process_batch` sends for 50 events of distinct users
(CaptureQueriesContext, with the rules cache fresh, as in a worker started after the warm-up),
classifies both sides by statement kind (verb, table, FOR UPDATE, rows of a multi-row write), and
refuses to report a ratio if they differ. The pipeline's round trips for a batch, in this steady
state:

    _screen, outside the transaction:  SELECT tasks_taskconfig; SELECT auth_user ⟕ ledger_account
    BEGIN
    accounts_lock:                     SELECT ledger_account ⋈ ledger_pointtype … ORDER BY user_id
                                       FOR UPDATE OF a SKIP LOCKED
    _recorded:                         SELECT tasks_usertaskrecord (the batch's event ids already recorded)
    latest_reversals:                  SELECT tasks_usertaskrecord ⋈ tasks_taskconfig (the users' latest
                                       post-delete per business id: a post before one is undone at once)
    BatchState:                       SELECT rules_userscoreinfo (both rules' rows of every user);
                                       SELECT rules_rulerecipient (capped rules)
    completions_create:                INSERT tasks_usertaskrecord, 50 rows (with the engine's decisions)
    BatchState.save:                  UPDATE rules_userscoreinfo, 100 rows
    scoring_plan_write:                INSERT rules_countedcompletion, 100 rows
    ledger_post_batch:                 INSERT ledger_scorerecord, 50 rows (RETURNING id); UPDATE ledger_account,
                                       50 rows; INSERT ledger_pointlot, 50 rows (each award a lot, its expiry
                                       from the policy accounts_lock read with the account); INSERT
                                       ledger_leaderboardtotal … ON CONFLICT DO UPDATE, 500 rows
                                       (5 periods × overall and post-each × 50 users)
    entries_announce:                  SELECT ledger_pointtype ⟕ ledger_level (the types' codes and the
                                       levels earned points may cross); INSERT notifications_notification,
                                       50 rows (one per completion with awards)
    COMMIT
    = 17 round trips per batch; the writes are `… FROM UNNEST(<one array literal per column>)`

The script's reads are the captured statements themselves, with pgbench's users and event ids
written in; its writes come from the pipeline's own statement builders (apps/core/multirow.py),
fed with rows of pgbench variables. Two statements are wrapped in `WITH … SELECT` so that pgbench
can keep the values the pipeline reads from their rows (each account's id, balance and seq; the
new completions' ids) with `\\gset`. Each pgbench client draws its users from its own half of
every fiftieth of the users, so pgbench's transactions never wait for each other's locks, while
the pipeline's batches draw from all users and do meet (its lock statement skips accounts
another batch holds and a second transaction waits for them; the extra round trips count on our
side only).

pgbench writes the same rows and columns, with valid keys (new event ids, each account's next seq
and balance read under its lock; the ledger invariants are checked after both runs) but does not
evaluate rules: the progress counters it writes are not recomputed, and its times are one
constant. Not compared: the active-rules cache's change-stamp query (`SELECT MAX(updated_at),
MAX(id) FROM rules_scorerule`), at most once per JIFEN_RULES_REFRESH_S per process, not per batch.
"""

# ruff: noqa: S608 - the SQL built here is a pgbench script from the benchmark's own ids, not a query with outside input

import argparse
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
    parser.add_argument("--events", type=int, default=20000, help="events pushed for our side (about as long as pgbench runs)")
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
    if "notifications_webhookendpoint" in text:
        return None  # which endpoints want what: read at most once a second per process, not per batch
    inner = re.match(r"WITH \w+ AS \((.*)", text, re.IGNORECASE)
    if inner:  # pgbench's wrapper that turns a statement's rows into one row for \gset
        return _single_kind(inner.group(1))
    table = re.search(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', text, re.IGNORECASE).group(1)
    kind = f"{verb} {table}"
    upper = text.upper()
    if " FOR UPDATE" in upper:
        kind += " FOR UPDATE" + (" SKIP LOCKED" if "SKIP LOCKED" in upper else "")
    rows = re.search(r"UNNEST\(\('\{([^}]*)\}'\)", text)
    return kind + (f" ({rows.group(1).count(',') + 1} rows)" if rows else "")


def statement_kind(sql: str) -> str | None:
    """A round trip's kind: verb, table, FOR UPDATE, rows of a multi-row write, ×N for N statements in one round trip.

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
    from apps.tracking.services.pipeline import events_process_batch

    started = time.monotonic()
    for i in range(0, len(user_ids), 100):
        counts = events_process_batch(payloads=[harness.post_event(uid) for uid in user_ids[i : i + 100]])
        if counts.get("processed", 0) != len(user_ids[i : i + 100]):
            raise RuntimeError(f"warm-up batch not processed: {dict(counts)}")
    print(f"warm-up: {len(user_ids)} events (one per user) processed in this process in {time.monotonic() - started:.1f} s")


def capture_batch(user_ids: list[int]) -> tuple[Counter, list[str], list[dict], list[dict]]:
    """Process 50 events of distinct users here; return round-trip kinds, the SQL, the events, and one completion's decisions."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.rules.selectors.rules import active_rules_clear, active_rules_for
    from apps.tasks.models import UserTaskRecord
    from apps.tracking.services.pipeline import events_process_batch

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
    return kinds, statements, payloads, decisions


# --- The pgbench script -----------------------------------------------------------------------


class ScriptContext:
    """The ids and constants the script needs, read from the benchmark's database after the warm-up."""

    def __init__(self, decisions: list[dict], user_ids: list[int], concurrency: int):
        from django.utils import timezone

        from apps.rules.models import ScoreRule, UserScoreInfo
        from apps.tasks.models import TaskConfig

        self.task_id = TaskConfig.objects.get(task_type="post").pk
        self.each = ScoreRule.objects.get(score_type="post-each")
        self.point_type_id = self.each.point_type_id
        self.first = ScoreRule.objects.get(score_type="first-post")
        self.decisions = decisions
        self.now = timezone.now()
        self.first_user_id = user_ids[0]
        self.stride = len(user_ids) // PGBENCH_BATCH
        self.concurrency = concurrency
        if self.stride % concurrency:
            raise RuntimeError(f"the users per fiftieth ({self.stride}) must split evenly between {concurrency} pgbench clients")
        # The warm-up created each user's two progress rows together, in user order and rule order,
        # so a user's row ids follow from the user id. Checked here, not assumed.
        self.info_base = UserScoreInfo.objects.filter(user_id=user_ids[0], achievement_type=self.each).get().pk
        for rule, offset in ((self.each, 0), (self.first, 1)):
            rows = dict(UserScoreInfo.objects.filter(achievement_type=rule).values_list("user_id", "id"))
            wrong = [u for u in user_ids if rows.get(u) != self.info_base + 2 * (u - user_ids[0]) + offset]
            if wrong:
                raise RuntimeError(f"progress rows of {rule} not laid out as the script assumes (user {wrong[0]})")


def _event_uuid(i: int) -> str:
    """Event i's id as pgbench writes it: a valid UUID from two random numbers of fixed width."""
    return f":x{i}-0000-4000-8000-00:y{i}"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rendered(sql: str, params: list[str]) -> str:
    """A statement with its parameters written in, as Django's client-side binding sends it."""
    return sql % tuple(_sql_literal(param) for param in params)


def _from_capture(sql: str, users: list[int], event_hex: dict[str, int]) -> str:
    """One of the pipeline's captured reads, with its users and event ids replaced by pgbench's.

    `users` are the captured batch's users in ascending order (user i becomes :u<i>); every IN list
    of exactly those users becomes the list of pgbench's, in ascending order like the pipeline's.
    """
    wanted = sorted(users)

    def users_list(match: re.Match) -> str:
        listed = [int(x) for x in match.group(1).split(",")]
        if sorted(listed) != wanted:
            raise RuntimeError(f"unexpected IN list in a captured statement: {match.group(0)[:120]}")
        return "IN (" + ", ".join(f":u{i}" for i in range(len(wanted))) + ")"

    sql = re.sub(r"IN \(((?:\d+, )+\d+)\)", users_list, sql)
    return re.sub(r"'([0-9a-f]{32})'::uuid", lambda m: f"'{_event_uuid(event_hex[m.group(1)])}'::uuid", sql)


def _gset_row(statement: str, alias: str, columns: dict[str, str], n: int) -> str:
    """`statement` wrapped so that its rows, ordered by user, become one row of pgbench variables.

    pgbench's \\gset takes one row; the pipeline reads the rows themselves. `columns` maps an
    output column to the variable name prefix: column `balance` → :a0_balance, :a1_balance, …
    """
    aggregates = ", ".join(f"array_agg({column} ORDER BY user_id) AS {column}" for column in columns)
    picks = ", ".join(f"g.{column}[{i + 1}] AS {prefix.format(i=i)}" for i in range(n) for column, prefix in columns.items())
    return f"WITH {alias} AS ({statement}) SELECT {picks} FROM (SELECT {aggregates} FROM {alias}) AS g \\gset"


def pgbench_script(ctx: ScriptContext, *, captured: list[str], payloads: list[dict]) -> str:
    """50 events of 50 distinct random users, sending the statements the pipeline sent for its captured batch.

    The reads are the captured statements themselves, with pgbench's users and event ids; the
    writes are built by the pipeline's own statement builders (apps/core/multirow.py) from rows
    of pgbench variables. User i is drawn from the i-th fiftieth of the users, so they ascend as
    the pipeline's lock statement sorts them, and from the share of pgbench client :client_id, so
    two clients never want the same account (no lock waits on pgbench's side; the pipeline's
    batches do share users).
    """
    from apps.core.multirow import unnest_accumulate_sql, unnest_insert_sql, unnest_update_sql
    from apps.ledger.models import Account, LeaderboardTotal, PointLot, ScoreRecord
    from apps.ledger.services.entries import ENTRY_COLUMNS
    from apps.ledger.services.leaderboard import KEY_COLUMNS, OVERALL, period_starts
    from apps.notifications.models import Notification
    from apps.rules.models import CountedCompletion, UserScoreInfo
    from apps.rules.services.scoring import COUNTED_COLUMNS, PROGRESS_UPDATE_COLUMNS
    from apps.tasks.models import UserTaskRecord
    from apps.tasks.services import COMPLETION_COLUMNS

    n, c, each, first, now = PGBENCH_BATCH, ctx.concurrency, ctx.each, ctx.first, ctx.now
    users = sorted(p["user_id"] for p in payloads)
    by_user = {p["user_id"]: i for i, p in enumerate(sorted(payloads, key=lambda p: p["user_id"]))}
    event_hex = {p["event_id"].replace("-", ""): by_user[p["user_id"]] for p in payloads}
    lines = []
    for i in range(n):
        lines += [
            f"\\set u{i} {ctx.first_user_id + i * ctx.stride} + {c} * random(0, {ctx.stride // c - 1}) + :client_id",
            f"\\set x{i} random(10000000, 99999999)",
            f"\\set y{i} random(1000000000, 9999999999)",
            f"\\set e{i} {ctx.info_base} + 2 * (:u{i} - {ctx.first_user_id})",  # post-each progress row
            f"\\set f{i} :e{i} + 1",  # first-post progress row
        ]
    reads = [q for q in captured if statement_kind(q) and not statement_kind(q).startswith(("INSERT", "UPDATE"))]
    for sql in reads:
        sql = _from_capture(sql, users, event_hex)
        if " FOR UPDATE" in sql:  # the lock statement: the script needs each account's id, balance and seq
            columns = {"id": "a{i}_id", "balance": "a{i}_balance", "last_seq": "a{i}_seq", "earned_total": "a{i}_earned"}
            sql = _gset_row(sql, "locked", columns, n)
            lines.append(sql)
            for i in range(n):
                lines += [
                    f"\\set s{i} :a{i}_seq + 1",
                    f"\\set b{i} :a{i}_balance + {each.points}",
                    f"\\set t{i} :a{i}_earned + {each.points}",
                ]
            continue
        if sql.startswith("COMMIT"):
            break
        lines.append(sql.rstrip(";") + ";")

    completions = [
        (
            ctx.task_id,
            f":u{i}",
            _event_uuid(i),
            now,
            "",
            "POST",
            "/posts/",
            302,
            "127.0.0.1",
            "CN",
            "zh-hans",
            ctx.decisions,
            now,
            now,
        )
        for i in range(n)
    ]
    insert = _rendered(*unnest_insert_sql(UserTaskRecord, COMPLETION_COLUMNS, completions, returning=("id", "user_id")))
    lines.append(_gset_row(insert, "ins", {"id": "r{i}"}, n))
    # Progress: post-each counts and awards, first-post counts (its cap is taken). The counters
    # pgbench writes are not recomputed (see the module docstring).
    progress = [
        row
        for i in range(n)
        for row in ((f":e{i}", f":s{i}", True, f":s{i}", 0, now, now), (f":f{i}", f":s{i}", True, 0, 0, now, now))
    ]
    lines.append(_rendered(*unnest_update_sql(UserScoreInfo, PROGRESS_UPDATE_COLUMNS, progress)) + ";")
    counted = [
        row for i in range(n) for row in ((each.pk, f":e{i}", f":r{i}", None, now), (first.pk, f":f{i}", f":r{i}", None, now))
    ]
    lines.append(_rendered(*unnest_insert_sql(CountedCompletion, COUNTED_COLUMNS, counted)) + ";")
    stamp = f"{now:%Y%m%d%H%M%S}{now.microsecond:06d}"
    entries = [
        (
            f":a{i}_id",
            f":u{i}",
            ctx.point_type_id,
            f"{stamp}-:a{i}_id-:s{i}",
            f":s{i}",
            each.points,
            f":a{i}_balance",
            f":b{i}",
            each.score_type,
            "award",
            f":e{i}",
            each.pk,
            f":r{i}",
            None,
            "127.0.0.1",
            "CN",
            "zh-hans",
            f"award:{_event_uuid(i)}:{each.pk}",
            now,
        )
        for i in range(n)
    ]
    insert = _rendered(*unnest_insert_sql(ScoreRecord, ENTRY_COLUMNS, entries, returning=("id", "user_id")))
    lines.append(_gset_row(insert, "posted", {"id": "n{i}"}, n))
    moved = [(f":a{i}_id", f":b{i}", f":s{i}", f":t{i}", now, now) for i in range(n)]
    columns = ("balance", "last_seq", "earned_total", "last_activity_at", "updated_at")
    lines.append(_rendered(*unnest_update_sql(Account, columns, moved)) + ";")
    # Lots: each award is a lot of its amount (the benchmark's type never expires).
    lots = [(f":a{i}_id", f":n{i}", now, None, each.points, each.points) for i in range(n)]
    lot_columns = ("account_id", "entry_id", "earned_at", "expires_at", "amount", "remaining")
    lines.append(_rendered(*unnest_insert_sql(PointLot, lot_columns, lots)) + ";")
    # Leaderboards: each award adds to its user's totals on the overall board and the rule's, in
    # every period of the completion's time (now), keys sorted as the pipeline sorts them.
    totals = sorted(
        (board, period, start, i) for i in range(n) for period, start in period_starts(now) for board in (OVERALL, each.pk)
    )
    boards = [(ctx.point_type_id, board, period, start, f":u{i}", each.points, now) for board, period, start, i in totals]
    lines.append(_rendered(*unnest_accumulate_sql(LeaderboardTotal, KEY_COLUMNS, ("points",), ("reached_at",), boards)) + ";")
    # Notifications: one per completion with awards, as the posting announces them (no endpoint
    # is registered, so no webhook delivery is written).
    earned_at = now.isoformat()
    notices = [
        (
            f":u{i}",
            "points.awarded",
            {
                "completion_id": f":r{i}",
                "completions": 1,
                "earned_at": earned_at,
                "rules": [each.score_type],
                "amounts": [{"point_type": "points", "amount": each.points}],
            },
            "",
            now,
        )
        for i in range(n)
    ]
    lines.append(_rendered(*unnest_insert_sql(Notification, ("user_id", "kind", "data", "key", "created_at"), notices)) + ";")
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
    from apps.ledger.selectors.ledger import ledger_problems

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
        captured, statements, payloads, decisions = capture_batch(user_ids)
        ctx = ScriptContext(decisions, user_ids, args.concurrency)
        script = pgbench_script(ctx, captured=statements, payloads=payloads)
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

"""Leaderboards at 100,000 users: the maintained totals against aggregating the ledger, side by side in one run.

    .venv/bin/python bench/leaderboard.py [--users 100000] [--entries 1000000] [--reuse-database] [--rounds 7]

Target (issue 6 item 5): a leaderboard's top 50 and one user's rank are fast at 100,000 users, read
from a maintained per-period total by index scans. Measured here against the same answers computed
by aggregating the ledger (ScoreRecord ⋈ its award's completion, GROUP BY user), which is what a
site without the totals would run; both answers are compared, then timed in alternating rounds.

1. Database `jifen_bench_leaderboard` (dropped, created, migrated; `--reuse-database` keeps one
   with at least `--entries` entries): `manage.py seed_demo_data --users --entries` (60 days of
   activity; the seed ends with `leaderboards_rebuild`; a reused database gets a timed rebuild
   if it has no totals or with `--rebuild`),
   VACUUM ANALYZE; then `leaderboard_problems` (verify_ledger's check of the totals), timed.
2. For the overall board and the busiest rule's board, in the periods all, month, week and day
   (the ones containing the latest award): top 50 (`leaderboard_page`) and the rank of the user
   in the middle of the all-time list (`leaderboard_rank_of`), against the aggregation's top 50
   and rank. The answers must be equal (users, points and ranks), else exit 1.
3. Each query's median over `--rounds` rounds, and the ratio aggregation / totals. PASS when every
   totals query is at least 10 × faster than its aggregation, a top 50 under 20 ms and a rank
   under 50 ms (a rank counts the totals above the user's: it grows with the rank). EXPLAIN of the
   totals' page and rank queries shows they are scans of `leaderboardtotal_rank`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from functools import partial

import harness

DATABASE = "jifen_bench_leaderboard"
TARGET_SPEEDUP = 10.0
TARGET_MS = {"top 50": 20.0, "rank": 50.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.scale_arguments(parser, rounds=7, database=DATABASE)
    parser.add_argument("--rebuild", action="store_true", help="with --reuse-database: rebuild the totals, timed")
    parser.add_argument("--skip-check", action="store_true", help="do not time leaderboard_problems")
    return parser.parse_args()


def prepare(args: argparse.Namespace) -> bool:
    """Set up the database and Django; return whether an existing database was reused."""
    env = harness.bench_env(args.database, f"jifen-bench-{os.getpid()}")
    env["JIFEN_VAR_DIR"] = str(harness.ROOT / "var" / "bench-leaderboard")
    full_env = {**os.environ, **env}
    reuse = args.reuse_database and harness.database_has_entries(args.database, args.entries)
    if not reuse:
        harness.database_recreate(args.database)
    subprocess.run([harness.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=harness.ROOT, env=full_env, check=True)
    if not reuse:
        started = time.perf_counter()
        seed = [harness.PYTHON, "manage.py", "seed_demo_data", "--users", str(args.users), "--entries", str(args.entries)]
        subprocess.run(seed, cwd=harness.ROOT, env=full_env, check=True)
        print(f"seeded in {time.perf_counter() - started:.0f} s")
    os.environ.update(env)
    if str(harness.ROOT) not in sys.path:
        sys.path.insert(0, str(harness.ROOT))
    import django

    django.setup()
    return reuse


# --- The same answers, aggregated from the ledger -----------------------------------------------


def _aggregate_sql(*, rule_id: int | None, start, end) -> tuple[str, list]:
    """Per user: points (awards net of reversals earned in [start, end)) and reached_at, positive only."""
    from apps.ledger.models import ScoreRecord
    from apps.tasks.models import UserTaskRecord

    entries, completions = ScoreRecord._meta.db_table, UserTaskRecord._meta.db_table
    where, params = ["e.kind IN ('award', 'reversal')"], []
    if rule_id is not None:
        where.append("e.rule_id = %s")
        params.append(rule_id)
    if end is not None:
        where.append("COALESCE(c.occurred_at, s.created_at) >= %s AND COALESCE(c.occurred_at, s.created_at) < %s")
        params += [start, end]
    sql = (
        f"SELECT e.user_id, SUM(e.trade_amount) AS points, MAX(e.created_at) AS reached_at FROM {entries} e "  # noqa: S608
        f"JOIN {entries} s ON s.id = COALESCE(e.reverses_id, e.id) LEFT JOIN {completions} c ON c.id = s.completion_id "
        f"WHERE {' AND '.join(where)} GROUP BY e.user_id HAVING SUM(e.trade_amount) > 0"
    )
    return sql, params


def aggregate_top(*, rule_id, start, end, limit=50) -> list[tuple[int, int, int]]:
    """(rank, user id, points) of the top `limit`, ranked as the selectors rank (ties: reached_at, user id)."""
    from apps.core.multirow import fetch

    sql, params = _aggregate_sql(rule_id=rule_id, start=start, end=end)
    rows = fetch(
        f"SELECT user_id, points, RANK() OVER (ORDER BY points DESC) FROM ({sql}) t "  # noqa: S608
        f"ORDER BY points DESC, reached_at, user_id LIMIT {int(limit)}",
        params,
    )
    return [(rank, user_id, points) for user_id, points, rank in rows]


def aggregate_rank(*, rule_id, start, end, user_id) -> tuple[int, int] | None:
    """(rank, points) of `user_id`, from the aggregation: 1 + the users with more points."""
    from apps.core.multirow import fetch

    sql, params = _aggregate_sql(rule_id=rule_id, start=start, end=end)
    rows = fetch(
        f"WITH t AS ({sql}) SELECT (SELECT COUNT(*) FROM t WHERE t.points > m.points) + 1, m.points "  # noqa: S608
        "FROM t m WHERE m.user_id = %s",
        [*params, user_id],
    )
    return (rows[0][0], rows[0][1]) if rows else None


# --- Measuring ------------------------------------------------------------------------------------


def timed(fn, rounds: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


def explain(sql: str, params: list) -> list[str]:
    from apps.core.multirow import fetch

    return [row[0] for row in fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)]


def main() -> int:
    args = parse_args()
    reused = prepare(args)
    from django.db import connection
    from django.db.models import Count

    from apps.ledger.models import LeaderboardTotal, ScoreRecord
    from apps.ledger.selectors.leaderboard import leaderboard_page, leaderboard_problems, leaderboard_rank_of
    from apps.ledger.services.leaderboard import leaderboards_rebuild
    from apps.rules.models import ScoreRule

    harness.vacuum_analyze()
    if reused and (args.rebuild or not LeaderboardTotal.objects.exists()):  # the seed rebuilt them; time a rebuild
        started = time.perf_counter()
        written = leaderboards_rebuild()
        print(f"rebuild_leaderboards: {written} totals from the ledger in {time.perf_counter() - started:.1f} s")
    if not args.skip_check:
        started = time.perf_counter()
        problems = leaderboard_problems()
        print(f"leaderboard_problems (the check of the totals): {len(problems)} in {time.perf_counter() - started:.1f} s")
        if problems:
            print("ERROR: the maintained totals disagree with the ledger, first: " + str(problems[0]))
            return 1
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE ledger_leaderboardtotal")
    entries = ScoreRecord.objects.count()
    totals = LeaderboardTotal.objects.count()
    users = LeaderboardTotal.objects.filter(board=0, period="all").count()
    latest = ScoreRecord.objects.filter(kind="award").order_by("-id").values_list("completion__occurred_at", flat=True)[0]
    busiest = (
        ScoreRecord.objects.filter(kind="award")
        .values("rule_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("rule_id", flat=True)[0]
    )
    rule = ScoreRule.all_objects.get(pk=busiest)
    print(
        f"Leaderboard inputs: {entries} ledger entries, {users} users with points, {totals} maintained totals; "
        f"boards overall and rule {rule.score_type}; periods containing {latest:%Y-%m-%d %H:%M} (the latest award); "
        f"{args.rounds} rounds, median"
    )
    failures, lines = [], []
    for board_rule in (None, rule):
        for period in ("all", "month", "week", "day"):
            page = leaderboard_page(rule=board_rule, period=period, at=latest, count_ranked=True)
            start, end = page.period_start, page.period_end
            rule_id = board_rule.pk if board_rule else None
            label = f"{board_rule.score_type if board_rule else 'overall'}/{period}"
            ours_top_ms, ours = timed(partial(leaderboard_page, rule=board_rule, period=period, at=latest), args.rounds)
            theirs_top_ms, theirs = timed(partial(aggregate_top, rule_id=rule_id, start=start, end=end), args.rounds)
            if [(e.rank, e.user_id, e.points) for e in ours.entries] != theirs:
                failures.append(f"{label}: top 50 differs from the aggregation")
            middle = leaderboard_page(rule=board_rule, period=period, at=latest, offset=page.ranked // 2, limit=1).entries
            if not middle:
                continue
            user_id = middle[0].user_id
            ours_rank_ms, mine = timed(
                partial(leaderboard_rank_of, user_id=user_id, rule=board_rule, period=period, at=latest), args.rounds
            )
            theirs_rank_ms, their_rank = timed(
                partial(aggregate_rank, rule_id=rule_id, start=start, end=end, user_id=user_id), args.rounds
            )
            if (mine.rank, mine.points) != their_rank:
                failures.append(f"{label}: rank of user {user_id} differs ({mine.rank}, {mine.points}) vs {their_rank}")
            lines.append((label, page.ranked, "top 50", ours_top_ms, theirs_top_ms))
            lines.append((label, page.ranked, f"rank of #{mine.rank}", ours_rank_ms, theirs_rank_ms))

    print(f"\n{'board/period':28} {'ranked':>8} {'query':>14} {'totals ms':>10} {'ledger ms':>10} {'ratio':>8}")
    worst = float("inf")
    slowest = {"top 50": 0.0, "rank": 0.0}
    for label, ranked, what, ours_ms, theirs_ms in lines:
        ratio = theirs_ms / ours_ms
        kind = "top 50" if what == "top 50" else "rank"
        worst, slowest[kind] = min(worst, ratio), max(slowest[kind], ours_ms)
        print(f"{label:28} {ranked:8d} {what:>14} {ours_ms:10.2f} {theirs_ms:10.1f} {ratio:7.0f}×")

    # The plans of the totals' queries on the biggest board (overall, all time), as the selectors send them.
    from django.test.utils import CaptureQueriesContext

    middle_user = leaderboard_page(rule=None, period="all", offset=users // 2, limit=1).entries[0].user_id
    with CaptureQueriesContext(connection) as captured:
        leaderboard_page(rule=None, period="all", offset=0, limit=50, count_ranked=True)
        leaderboard_rank_of(user_id=middle_user, rule=None, period="all")
    for query in captured.captured_queries:
        print(f"\nEXPLAIN {query['sql'][:160]}")
        for line in explain(query["sql"], []):
            print("   ", line)

    if not args.keep_database and not args.reuse_database:
        from django.db import connections

        connections.close_all()
        harness.database_drop(args.database)
    if failures:
        print("\nERROR: the totals disagree with the ledger:\n  " + "\n  ".join(failures))
        return 1
    ok = worst >= TARGET_SPEEDUP and all(slowest[kind] <= TARGET_MS[kind] for kind in TARGET_MS)
    print(
        f"\nslowest top 50 {slowest['top 50']:.2f} ms (target ≤ {TARGET_MS['top 50']:.0f} ms), slowest rank "
        f"{slowest['rank']:.2f} ms (target ≤ {TARGET_MS['rank']:.0f} ms); smallest speed-up over aggregating the ledger "
        f"{worst:.0f}× (target ≥ {TARGET_SPEEDUP:.0f}×)   {'PASS' if ok else 'MISS'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""P8: 1,000 concurrent redemptions of one item of stock 100, against 1,000 of 1,000 different items.

    .venv/bin/python bench/p8_redemptions.py [--attempts 1000] [--clients 4] [--rounds 3]
        [--database jifen_bench_p8] [--keep-database]

Target (SPEC §10 P8): the time of the flash sale (every attempt on one item, stock 100: 100 win,
900 are refused out_of_stock) ≤ 3 × the time of the same number of attempts spread over as many
items (each succeeds, no two touch the same item row); the site's pages stay usable meanwhile.

Both sides run in this one run, alternately, `--rounds` times each, on a fresh PostgreSQL database:
`--attempts` users holding 1,000 coins each, redeeming through `redemption_create` (the service the
shop page and `POST /api/me/redemptions` call: the user's lock, the checks, the spend, the
conditional UPDATE of the stock, the redemption row) from `--clients` worker processes, each with
its own database connection, started together at a barrier, as web processes would be. A side's
time is from the barrier to the last answer. Also run, for scale, a third side the SPEC does not
ask for: one item with stock enough for everybody (every attempt wins, all queue on the one item
row), the worst case of contention.

Meanwhile a prober process, signed in as a user who is not racing, loads two of the site's pages
(`/` and `/me/points/`) through Django's handler in a loop; its latencies while a side runs are
compared with its latencies in the idle second before each round. On a small machine the racing
processes take the CPU from the prober, so the ratio says more about the cores than about locks:
redemptions take row locks only on the redeeming user's account and the item, which no page
reads with a lock.

After the rounds the benchmark checks the outcomes (exactly the stock won on the hot item, every
attempt on the spread items won) and runs the ledger's checks (`verify_ledger`'s invariants).
"""

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

import harness

DATABASE = "jifen_bench_p8"
TARGET = 3.0
COST = 1
SIDES = ("flash sale, one item", "spread over items", "one item, unlimited")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=1000, help="users racing, one attempt each per round")
    parser.add_argument("--stock", type=int, default=100, help="the hot item's stock")
    parser.add_argument("--clients", type=int, default=4, help="processes sending the attempts at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")
    return parser.parse_args()


def setup_data(attempts: int, rounds: int) -> tuple[list[int], int]:
    """Users with coins enough for every round; a prober user with some history. Returns (racers, prober)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from apps.ledger.models import PointType
    from apps.ledger.services.entries import EntrySpec, accounts_ensure, accounts_lock, ledger_post_batch

    coins = PointType.objects.create(code="coins", name="Coins", expiry=PointType.Expiry.YEAR_END)
    users = get_user_model().objects
    users.bulk_create([users.model(username=f"racer{i:05d}", password="!") for i in range(attempts)], batch_size=1000)  # noqa: S106
    racers = list(users.filter(username__startswith="racer").order_by("id").values_list("id", flat=True))
    prober = users.create_user("prober", password=None).pk
    accounts_ensure(user_ids=[*racers, prober])
    enough = COST * len(SIDES) * rounds + 10
    coins_for = [EntrySpec(amount=enough, kind="award", idempotency_key=f"seed:{u}", point_type_id=coins.pk) for u in racers]
    prober_points = EntrySpec(amount=50, kind="award", idempotency_key=f"seed:{prober}")
    with transaction.atomic():
        main = accounts_lock(user_ids=[*racers, prober])
        postings = [(main[u], [spec]) for u, spec in zip(racers, coins_for, strict=True)]
        ledger_post_batch(postings=[*postings, (main[prober], [prober_points])])
    harness.vacuum_analyze()
    return racers, prober


def make_items(side: int, round_number: int, attempts: int, stock: int) -> list[str]:
    """The side's item codes for this round: one per attempt (the code attempt i redeems)."""
    from apps.ledger.models import PointType
    from apps.rewards.models import RewardItem

    coins = PointType.objects.get(code="coins")
    active = RewardItem.Status.ACTIVE
    if side == 1:
        codes = [f"r{round_number}-spread-{i}" for i in range(attempts)]
        RewardItem.objects.bulk_create(
            [RewardItem(code=code, name=code, cost=COST, point_type=coins, stock=stock, status=active) for code in codes]
        )
        return codes
    code = f"r{round_number}-{'hot' if side == 0 else 'open'}"
    RewardItem.objects.create(
        code=code, name=code, cost=COST, point_type=coins, stock=stock if side == 0 else None, status=active
    )
    return [code] * attempts


def client_main(share, barrier, results) -> None:
    """A web process: wait for the others, then send its attempts one after the other."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.rewards.eligibility import RedemptionRefused
    from apps.rewards.services.redemptions import redemption_create

    user_model = get_user_model()
    connection.ensure_connection()
    outcomes: dict[str, int] = {}
    barrier.wait()
    for user_id, code, key in share:
        try:
            redemption_create(user=user_model(pk=user_id), item_code=code, client_key=key)
            outcome = "won"
        except RedemptionRefused as refused:
            outcome = refused.code
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    results.put((time.time(), outcomes))
    connection.close()


def prober_main(user_id: int, stop, samples, pid) -> None:
    """Load two site pages in turn until told to stop; report its backend's pid, then (time, page, seconds) of each."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="localhost")  # the benchmark's ALLOWED_HOSTS
    client.force_login(get_user_model().objects.get(pk=user_id))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid.value = cursor.fetchone()[0]
    pages = ("/", "/me/points/")
    found = []
    n = 0
    while not stop.is_set():
        page = pages[n % 2]
        started = time.perf_counter()
        response = client.get(page, secure=True)  # production settings redirect plain HTTP
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (page, response.status_code)
        found.append((time.time(), page, elapsed))
        n += 1
    samples.put(found)
    connection.close()


class LockWaits(threading.Thread):
    """Samples pg_stat_activity every 20 ms: how many sessions wait for a lock, and whether the prober's is one."""

    def __init__(self, prober_pid: int) -> None:
        super().__init__(daemon=True)
        self.prober_pid, self.done, self.samples = prober_pid, threading.Event(), []

    def run(self) -> None:
        import psycopg
        from django.conf import settings

        db = settings.DATABASES["default"]
        with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True) as conn:
            while not self.done.is_set():
                pids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ]
                self.samples.append((len(pids), self.prober_pid in pids))
                time.sleep(0.02)


def run_side(context, racers: list[int], codes: list[str], clients: int, label: str, prober_pid: int) -> tuple[float, dict]:
    """Every racer redeems its code once, from `clients` processes at once; return (seconds, outcome counts, lock waits)."""
    from django.db import connections

    attempts = [(user_id, code, f"{label}-{user_id}") for user_id, code in zip(racers, codes, strict=True)]
    shares = [attempts[i::clients] for i in range(clients)]
    barrier = context.Barrier(clients + 1)
    results = context.Queue()
    connections.close_all()  # the children must not share this process's connection
    processes = [context.Process(target=client_main, args=(share, barrier, results)) for share in shares]
    for process in processes:
        process.start()
    waits = LockWaits(prober_pid)
    waits.start()
    barrier.wait()
    started = time.time()
    answers = [results.get(timeout=600) for _ in processes]
    waits.done.set()
    waits.join()
    for process in processes:
        process.join()
    finished = max(at for at, _ in answers)
    outcomes: dict[str, int] = {}
    for _, counts in answers:
        for outcome, n in counts.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    return finished - started, {"started": started, "finished": finished, "waits": waits.samples, **outcomes}


def main() -> int:
    args = parse_args()
    scratch = tempfile.mkdtemp(prefix="jifen-bench-p8-")
    os.environ["JIFEN_VAR_DIR"] = scratch  # static files for the probed pages, outside the checkout
    harness.prepare(args.database)
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)  # the pages use the manifest storage
    context = multiprocessing.get_context("fork")
    try:
        racers, prober = setup_data(args.attempts, args.rounds)
        from django.db import connections

        connections.close_all()
        stop, samples, prober_pid = context.Event(), context.Queue(), context.Value("i", 0)
        probe = context.Process(target=prober_main, args=(prober, stop, samples, prober_pid))
        probe.start()
        while not prober_pid.value:
            time.sleep(0.05)
        times: dict[int, list[float]] = {side: [] for side in range(len(SIDES))}
        windows: list[tuple[str, float, float]] = []  # (idle or the side's label, start, end)
        outcomes: dict[int, list[dict]] = {side: [] for side in range(len(SIDES))}
        waits: dict[int, list[tuple[int, bool]]] = {side: [] for side in range(len(SIDES))}
        for round_number in range(args.rounds):
            for side in range(len(SIDES)):
                codes = make_items(side, round_number, args.attempts, args.stock if side == 0 else args.attempts)
                connections.close_all()
                idle_from = time.time()
                time.sleep(1.0)
                windows.append(("idle", idle_from, time.time()))
                seconds, result = run_side(context, racers, codes, args.clients, f"r{round_number}s{side}", prober_pid.value)
                windows.append((SIDES[side], result.pop("started"), result.pop("finished")))
                waits[side] += result.pop("waits")
                times[side].append(seconds)
                outcomes[side].append(result)
                print(f"  round {round_number + 1}, {SIDES[side]:<22} {seconds:6.2f} s  {result}", flush=True)
        stop.set()
        probed = samples.get(timeout=60)
        probe.join()
        return report(args, times, outcomes, windows, probed, waits)
    finally:
        if not args.keep_database:
            from django.db import connections

            connections.close_all()
            harness.database_drop(args.database)
        shutil.rmtree(scratch, ignore_errors=True)


def report(args, times, outcomes, windows, probed, waits) -> int:
    from apps.ledger.selectors.ledger import ledger_problems
    from apps.ledger.services.lots import lots_check

    median = {side: statistics.median(values) for side, values in times.items()}
    print(
        f"P8 inputs: {args.attempts} attempts per side, {args.clients} client processes, stock {args.stock}, {args.rounds} rounds"
    )
    for side, label in enumerate(SIDES):
        print(f"  {label:<22} median {median[side]:6.2f} s  ({args.attempts / median[side]:7.0f} attempts/s)")
    problems = []
    for result in outcomes[0]:
        if result.get("won") != args.stock or result.get("out_of_stock") != args.attempts - args.stock:
            problems.append(f"the hot item's round ended {result}, not {args.stock} won")
    for side in (1, 2):
        for result in outcomes[side]:
            if result.get("won") != args.attempts:
                problems.append(f"{SIDES[side]}: {result}")
    ledger = ledger_problems() + [f"lots: {p}" for p in lots_check()]

    def latencies(label: str, page: str) -> list[float]:
        spans = [(start, end) for name, start, end in windows if name == label]
        return [s for at, p, s in probed if p == page and any(start <= at <= end for start, end in spans)]

    for page in ("/", "/me/points/"):
        idle = latencies("idle", page)
        line = f"  page {page:<12} idle p50 {statistics.median(idle) * 1e3:6.1f} ms"
        for label in SIDES[:2]:
            busy = latencies(label, page)
            if busy and idle:
                during, ratio = statistics.median(busy), statistics.median(busy) / statistics.median(idle)
                line += f"; during '{label}' p50 {during * 1e3:6.1f} ms ({ratio:.2f}×)"
        print(line)
    for side, label in enumerate(SIDES):
        counts = [n for n, _ in waits[side]]
        prober_waited = sum(1 for _, mine in waits[side] if mine)
        print(
            f"  sessions waiting for a lock during '{label}': mean {statistics.mean(counts):.2f}, max {max(counts)} "
            f"({len(counts)} samples); the prober's session: {prober_waited}"
        )
    ratio = median[0] / median[1]
    print(f"  contention, for scale: one item with unlimited stock / spread = {median[2] / median[1]:.2f}")
    if problems or ledger:
        print("P8 outcome problems:", *problems, *map(str, ledger), sep="\n  ")
        return 1
    print("  outcomes: exactly the stock won on the hot item every round; every spread attempt won; the ledger checks clean")
    print(f"P8 ratio one item / spread = {ratio:.2f} (target <= {TARGET:g}): {'PASS' if ratio <= TARGET else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

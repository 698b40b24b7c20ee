"""What the benchmarks share: a fresh PostgreSQL database, the environment, data, Celery workers.

Each benchmark runs against its own database (dropped and created again at start) and its own
Celery queue name, so it never touches the demo's data or another run's Redis keys.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
# Another Redis database keeps a benchmark away from a busy one; the queue names are per run anyway.
REDIS_URL = os.environ.get("JIFEN_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def bench_env(database: str, queue: str) -> dict[str, str]:
    """The environment of the benchmark process and of every process it starts."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-not-secret-" + "x" * 40,
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}",
        "CELERY_BROKER_URL": REDIS_URL,
        "JIFEN_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
    }


def database_recreate(database: str) -> None:
    """Drop `database` if it exists and create it empty."""
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def database_drop(database: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def prepare(database: str) -> dict[str, str]:
    """Recreate and migrate `database`, set up Django in this process; return the environment."""
    env = bench_env(database, f"jifen-bench-{os.getpid()}")
    database_recreate(database)
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env={**os.environ, **env}, check=True)
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    return env


def demo_rules_and_users(users: int) -> list[int]:
    """Load the demo's task configs and rules, create `users` users with their accounts; return their ids.

    Accounts exist up front, as they do for any user who has earned points before, so the
    measurement is the steady state (a first event also inserts the account row).

    Only the demo's rules of the default point type are kept: the benches' workloads (and their
    pgbench scripts) are the rules they were written for, so figures compare across versions;
    the demo's `exp` rules would add a rule per task, and its badge rules (0 points) one more
    per task besides.
    """
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from apps.ledger.point_types import default_point_type_id
    from apps.ledger.services.entries import accounts_ensure
    from apps.rules.models import ScoreRule

    call_command("loaddata", str(ROOT / "fixtures" / "demo.json"), verbosity=0)
    ScoreRule.all_objects.exclude(point_type_id=default_point_type_id()).delete()
    ScoreRule.all_objects.filter(badge__isnull=False).delete()
    user_model = get_user_model()
    user_model.objects.bulk_create(
        [user_model(username=f"bench{i:06d}", password="!") for i in range(users)],  # noqa: S106 - unusable password
        batch_size=1000,
    )
    ids = list(user_model.objects.filter(username__startswith="bench").order_by("id").values_list("id", flat=True))
    accounts_ensure(user_ids=ids)  # their main accounts
    return ids


def post_event(user_id: int, *, occurred_at=None) -> dict:
    """A `post` event as the middleware would hand it over (POST /posts/, 302)."""
    from django.utils import timezone

    from apps.tracking.events import Event

    return Event(
        event_id=uuid.uuid4(),
        user_id=user_id,
        task_type="post",
        occurred_at=occurred_at or timezone.now(),
        method="POST",
        path="/posts/",
        status=302,
        location="127.0.0.1",
        country="CN",
        lang_type="zh-hans",
    ).to_payload()


def vacuum_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


class Worker:
    """`celery -A config worker` as a subprocess, against the benchmark's database and queue.

    At --loglevel WARNING the worker prints no "ready." line; callers know it is working when
    the rows of an event they pushed appear.
    """

    def __init__(self, env: dict[str, str], *, concurrency: int = 2, name: str = "bench"):
        self.output: list[str] = []
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}-{os.getpid()}@%h",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)

    def log(self) -> str:
        return "".join(self.output[-50:])

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 20) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_keys_delete(queue: str) -> None:
    """Remove the run's Redis keys (the queue name is unique to the run)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{queue}*", count=1000))
    keys += client.scan_iter(match=f"_kombu.binding*.{queue}", count=1000)  # the workers' queue bindings
    if keys:
        client.delete(*keys)


def percentile(values: list[float], pct: float) -> float:
    """The `pct`-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def scale_arguments(parser, *, rounds: int, database: str) -> None:
    """The options of the benchmarks on a seeded large database (100,000 users, 1,000,000 entries)."""
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--database", default=database)
    parser.add_argument("--reuse-database", action="store_true", help="keep a database that already holds the entries")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")


def database_has_entries(database: str, entries: int) -> bool:
    """Whether `database` exists and already holds at least `entries` ledger entries (a seed to reuse)."""
    import psycopg

    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=database) as conn:
            return conn.execute("SELECT count(*) FROM ledger_scorerecord").fetchone()[0] >= entries
    except psycopg.Error:
        return False

"""Start Django for an in-process benchmark: a throw-away SQLite database (or DATABASE_URL) and Redis."""

import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(*, broker: str = "redis://127.0.0.1:6379/0") -> Path:
    """Configure and migrate a fresh database; return the scratch folder. Call before importing models."""
    scratch = Path(tempfile.mkdtemp(prefix="jifen-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ["JIFEN_VAR_DIR"] = str(scratch)
    os.environ.setdefault("CELERY_BROKER_URL", broker)
    os.environ.setdefault("JIFEN_QUEUE", f"jifen-bench-{uuid.uuid4().hex[:8]}")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)  # pages use the manifest storage
    return scratch


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def twenty_post_rules() -> None:
    """The P4 benches' 20 active rules of the `post` task: count and streak, each period, some limits."""
    from django.utils import timezone

    from apps.rules.models import ScoreRule

    now = timezone.now()
    kinds = [("count", "day", 1, 10), ("count", "week", 3, None), ("count", "none", 1, 1), ("streak", "day", 2, None)]
    ScoreRule.objects.bulk_create(
        ScoreRule(
            task_type="post",
            score_type=f"post-{n}",
            kind=kinds[n % 4][0],
            statistical_period=kinds[n % 4][1],
            required_number_of_times=kinds[n % 4][2],
            award_limit_per_period=kinds[n % 4][3],
            points=1 + n % 5,
            status="active",
            created_at=now,
            updated_at=now,
        )
        for n in range(20)
    )

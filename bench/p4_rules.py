"""P4: cost per event with 10,000 rules in the system (20 on the event's task type), against 20 rules.

Target: rate with 10,000 rules >= 0.9 x the rate with 20. The same batches of events (fresh users
each round, so progress is comparable) are processed in-process by `events_process_batch`, with
the other 9,980 rules switched on and off between rounds (five rounds with 20 rules, four with
10,000, alternating), each side represented by its median round. Uses DATABASE_URL if set
(PostgreSQL), else a scratch SQLite database.

    .venv/bin/python bench/p4_rules.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jifen_bench_p4 .venv/bin/python bench/p4_rules.py
"""

import time
import uuid
from datetime import UTC, datetime

from setup_django import median, setup, twenty_post_rules

EVENTS_PER_ROUND = 600
BATCH = 50
OTHER_RULES = 9_980
ROUNDS = 9  # five with 20 rules, four with 10,000


def main() -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from apps.rules.models import ScoreRule
    from apps.tasks.models import TaskConfig
    from apps.tracking.events import Event
    from apps.tracking.services.pipeline import events_process_batch

    TaskConfig.objects.create(task_type="post", method="POST", interface_name=r"^/posts/$", status="in_use")
    TaskConfig.objects.bulk_create(
        TaskConfig(task_type=f"other-{n}", method="POST", interface_name=rf"^/other{n}/$", status="in_use") for n in range(100)
    )
    twenty_post_rules()
    now = timezone.now()
    users = get_user_model().objects

    def run_round(label: str) -> float:
        created = users.bulk_create([users.model(username=f"{label}-{n}") for n in range(EVENTS_PER_ROUND // 4)])
        ids = [user.pk for user in users.filter(username__startswith=f"{label}-").order_by("pk")]
        assert len(ids) == len(created)
        payloads = [
            Event(
                event_id=uuid.uuid4(),
                user_id=ids[n % len(ids)],
                task_type="post",
                occurred_at=datetime(2026, 11, 2, 8, tzinfo=UTC),
                business_id=str(n),
            ).to_payload()
            for n in range(EVENTS_PER_ROUND)
        ]
        started = time.perf_counter()
        for first in range(0, len(payloads), BATCH):
            counts = events_process_batch(payloads=payloads[first : first + BATCH])
            assert counts == {"processed": len(payloads[first : first + BATCH])}, counts
        return len(payloads) / (time.perf_counter() - started)

    run_round("warmup")
    ScoreRule.objects.bulk_create(
        ScoreRule(
            task_type=f"other-{n % 100}",
            score_type=f"other-rule-{n}",
            points=1,
            status="active",
            created_at=now,
            updated_at=now,
            deleted_at=now,  # switched on and off by the rounds below
        )
        for n in range(OTHER_RULES)
    )
    others = ScoreRule.all_objects.filter(score_type__startswith="other-rule-")

    # Rounds alternate, few / many / few / ..., so that the database growing round by round and
    # the machine's noise fall on both sides alike; each side is represented by its median round.
    rates: dict[str, list[float]] = {"few": [], "many": []}
    for n in range(ROUNDS):
        side = "many" if n % 2 else "few"
        others.update(deleted_at=None if side == "many" else timezone.now(), updated_at=timezone.now())
        if side == "many":
            total = ScoreRule.objects.count()
        rates[side].append(run_round(f"{side}-{n}"))
    few, many = median(rates["few"]), median(rates["many"])
    ratio = many / few
    print(f"P4 inputs: {connection.vendor}, {EVENTS_PER_ROUND} events per round in batches of {BATCH}, 20 rules on the task")
    for label, side, value in (("20", "few", few), (f"{total:,}", "many", many)):
        rounds = ", ".join(f"{rate:.0f}" for rate in rates[side])
        print(f"  {label:>6} rules in the system: median {value:8.1f} events/s  (rounds: {rounds})")
    print(f"P4 ratio = {ratio:.2f} (target >= 0.9): {'PASS' if ratio >= 0.9 else 'MISS'}")


if __name__ == "__main__":
    main()

"""What a cooldown costs: events/s with a cooldown on every one of the task's 20 rules, against none.

The same kind of batches as `p4_rules.py` (600 events in batches of 50, fresh users each round,
four events per user 15 minutes apart, so that a 10-minute cooldown refuses none of them and both
sides count and award the same), processed in-process by `events_process_batch`. Rounds alternate
between the rules without a cooldown and the same rules with one (switched by an UPDATE, which the
rule cache sees); each side is represented by its median round. Informational: no target in the
SPEC; a rule with a cooldown reads its neighbours (one query per batch) and writes three more
columns per counted completion, a rule without one should cost what it did before.

    .venv/bin/python bench/p4_cooldown.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jifen_bench_cooldown .venv/bin/python bench/p4_cooldown.py
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

from setup_django import median, setup, twenty_post_rules

EVENTS_PER_ROUND = 600
USERS_PER_ROUND = EVENTS_PER_ROUND // 4
BATCH = 50
ROUNDS = 9  # five without a cooldown, four with


def main() -> None:
    setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from apps.rules.models import ScoreRule
    from apps.tasks.models import TaskConfig, UserTaskRecord
    from apps.tracking.events import Event
    from apps.tracking.services.pipeline import events_process_batch

    TaskConfig.objects.create(task_type="post", method="POST", interface_name=r"^/posts/$", status="in_use")
    twenty_post_rules()
    rules = ScoreRule.objects.filter(task_type="post")
    users = get_user_model().objects
    start = datetime(2026, 11, 2, 1, tzinfo=UTC)

    def run_round(label: str) -> tuple[float, list[str]]:
        users.bulk_create([users.model(username=f"{label}-{n}") for n in range(USERS_PER_ROUND)])
        ids = [user.pk for user in users.filter(username__startswith=f"{label}-").order_by("pk")]
        payloads = [
            Event(
                event_id=uuid.uuid4(),
                user_id=ids[n % USERS_PER_ROUND],
                task_type="post",
                occurred_at=start + timedelta(minutes=15) * (n // USERS_PER_ROUND),
                business_id=str(n),
            ).to_payload()
            for n in range(EVENTS_PER_ROUND)
        ]
        started = time.perf_counter()
        for first in range(0, len(payloads), BATCH):
            counts = events_process_batch(payloads=payloads[first : first + BATCH])
            assert counts == {"processed": len(payloads[first : first + BATCH])}, counts
        rate = len(payloads) / (time.perf_counter() - started)
        reasons = UserTaskRecord.objects.filter(user_id__in=ids).values_list("decisions", flat=True)
        return rate, sorted(decision["reason"] for decisions in reasons for decision in decisions)

    run_round("warmup")
    rates: dict[str, list[float]] = {"none": [], "cooldown": []}
    outcomes: dict[str, list[str]] = {}
    for n in range(ROUNDS):
        side = "cooldown" if n % 2 else "none"
        rules.update(cooldown=timedelta(minutes=10) if side == "cooldown" else None, updated_at=timezone.now())
        rate, outcomes[side] = run_round(f"{side}-{n}")
        rates[side].append(rate)
    if outcomes["none"] != outcomes["cooldown"]:
        raise SystemExit("the two sides decided differently; the comparison would be meaningless")
    plain, cooled = median(rates["none"]), median(rates["cooldown"])
    print(f"P4-cooldown inputs: {connection.vendor}, {EVENTS_PER_ROUND} events per round in batches of {BATCH}, 20 rules")
    for label, side in (("no cooldown", "none"), ("10 min cooldown on all", "cooldown")):
        rounds = ", ".join(f"{rate:.0f}" for rate in rates[side])
        print(f"  {label:>22}: median {median(rates[side]):8.1f} events/s  (rounds: {rounds})")
    print(f"P4-cooldown ratio (cooldown / none) = {cooled / plain:.2f} (informational)")


if __name__ == "__main__":
    main()
